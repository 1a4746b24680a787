//! End to end: a tiny split folder in, the tokenize folder out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtl_core::artifact::{self, IGNORE_INDEX, NO_LABEL, col};
use mtl_core::{
    LabelSet, Manifest, ManifestBuilder, Outcome, PipelineConfig, Stage, StagingDir, TaskKind,
    TaskLabels,
};
use polars::prelude::*;

const CONFIG: &str = r#"
[pipeline]
name = "t"

[[datasets]]
name = "d"
format = "jsonl"
files = { all = "d.jsonl" }

[[tasks]]
name = "sentiment"
dataset = "d"
column = "label"
type = "classification"

[[tasks]]
name = "pos"
dataset = "d"
column = "tags"
type = "tagging"

[tokenize]
vocab_size = 80
min_frequency = 1
max_length = 16
"#;

const POS: [&str; 5] = ["DET", "NOUN", "VERB", "PUNCT", "ADV"];

struct Row {
    id: String,
    words: Vec<&'static str>,
    sentiment: Option<&'static str>,
    pos: Option<Vec<&'static str>>,
}

fn row(id: &str, text: &'static str, sentiment: Option<&'static str>, with_pos: bool) -> Row {
    let words: Vec<&str> = text.split(' ').collect();
    // A made-up but consistent tag per word.
    let tag = |w: &str| match w {
        "the" | "a" => "DET",
        "runs" | "barks" | "sleeps" => "VERB",
        "." | "!" | "," => "PUNCT",
        "quickly" | "unbelievably" => "ADV",
        _ => "NOUN",
    };
    Row {
        id: id.to_string(),
        pos: with_pos.then(|| words.iter().map(|w| tag(w)).collect()),
        words,
        sentiment,
    }
}

fn train_rows() -> Vec<Row> {
    vec![
        row("t0", "the dog runs quickly .", Some("pos"), true),
        row("t1", "the cat sleeps .", Some("neg"), false),
        row("t2", "a dog barks unbelievably loudly !", None, true),
        row(
            "t3",
            "the unbelievably quick dog runs , the cat sleeps .",
            Some("pos"),
            true,
        ),
        row(
            "t4",
            "the dog runs , the cat sleeps , the dog barks , the cat runs , the dog sleeps quickly .",
            Some("neg"),
            true,
        ),
        row("t5", "dogs and cats .", None, false),
    ]
}

fn write_table(path: &Path, rows: &[Row]) {
    let mut words = ListStringChunkedBuilder::new(col::WORDS.into(), rows.len(), 64);
    let mut pos = ListStringChunkedBuilder::new(col::label("pos").into(), rows.len(), 64);
    for r in rows {
        words.append_values_iter(r.words.iter().copied());
        match &r.pos {
            Some(p) => pos.append_values_iter(p.iter().copied()),
            None => pos.append_null(),
        }
    }
    let mut df = DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                col::ID.into(),
                rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ),
            Column::new(
                col::DATASET.into(),
                rows.iter().map(|_| "d").collect::<Vec<_>>(),
            ),
            Column::new(
                col::TEXT.into(),
                rows.iter().map(|r| r.words.join(" ")).collect::<Vec<_>>(),
            ),
            words.finish().into_column(),
            Column::new(
                col::N_WORDS.into(),
                rows.iter()
                    .map(|r| r.words.len() as u32)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                col::label("sentiment").into(),
                rows.iter().map(|r| r.sentiment).collect::<Vec<_>>(),
            ),
            pos.finish().into_column(),
        ],
    )
    .unwrap();
    artifact::write_parquet(&mut df, path).unwrap();
}

fn label_set() -> LabelSet {
    let mut tasks = BTreeMap::new();
    tasks.insert(
        "sentiment".to_string(),
        TaskLabels {
            kind: TaskKind::Classification,
            scheme: None,
            labels: vec!["neg".into(), "pos".into()],
            train_counts: vec![2, 2],
            class_weights: None,
            target: None,
        },
    );
    tasks.insert(
        "pos".to_string(),
        TaskLabels {
            kind: TaskKind::Tagging,
            scheme: None,
            labels: POS.iter().map(|s| s.to_string()).collect(),
            train_counts: vec![1; POS.len()],
            class_weights: None,
            target: None,
        },
    );
    LabelSet { tasks }
}

/// Writes a complete split folder the way the split stage does.
fn write_split(dir: &Path, train: &[Row], dev: &[Row], test: &[Row]) {
    let staging = StagingDir::begin(dir).unwrap();
    write_table(&staging.path("train.parquet"), train);
    write_table(&staging.path("dev.parquet"), dev);
    write_table(&staging.path("test.parquet"), test);
    mtl_core::fsio::write_json(&staging.path(LabelSet::FILE), &label_set()).unwrap();
    ManifestBuilder::new(Stage::Split, 1, "split-fp".into(), vec![])
        .finish(&staging, &BTreeMap::new())
        .unwrap();
    staging.commit().unwrap();
}

fn config(extra: &str) -> PipelineConfig {
    PipelineConfig::from_toml_str(&format!("{CONFIG}{extra}"), Path::new("t.toml")).unwrap()
}

fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let split = root.path().join("split");
    let dev = vec![
        row("d0", "the dog sleeps .", None, true),
        row("d1", "a cat runs quickly !", Some("pos"), false),
    ];
    write_split(&split, &train_rows(), &dev, &[]);
    let out = root.path().join("tokenize");
    (root, split, out)
}

fn i32_lists(df: &DataFrame, name: &str) -> Vec<Option<Vec<i32>>> {
    df.column(name)
        .unwrap()
        .list()
        .unwrap()
        .series_iter()
        .map(|s| s.map(|s| s.i32().unwrap().into_no_null_iter().collect()))
        .collect()
}

#[test]
fn run_writes_aligned_tables_and_is_cached_the_second_time() {
    let (_root, split, out) = setup();
    let cfg = config("");
    let outcome = mtl_tokenize::run(&cfg, &split, &out, false).unwrap();
    assert!(matches!(outcome, Outcome::Ran(_)), "{}", outcome.summary());

    // Schema, in order.
    let train = artifact::read_parquet(&out.join("train.parquet")).unwrap();
    let schema: Vec<(String, DataType)> = train
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.dtype().clone()))
        .collect();
    let list = |t: DataType| DataType::List(Box::new(t));
    assert_eq!(
        schema,
        vec![
            ("id".to_string(), DataType::String),
            ("input_ids".to_string(), list(DataType::UInt32)),
            ("word_ids".to_string(), list(DataType::Int32)),
            ("n_words".to_string(), DataType::UInt32),
            ("length".to_string(), DataType::UInt32),
            ("y_pos".to_string(), list(DataType::Int32)),
            ("y_sentiment".to_string(), DataType::Int32),
        ]
    );

    // Rows keep the input order.
    let ids: Vec<&str> = train
        .column("id")
        .unwrap()
        .str()
        .unwrap()
        .no_null_iter()
        .collect();
    assert_eq!(ids, ["t0", "t1", "t2", "t3", "t4", "t5"]);

    // Classification targets, NO_LABEL where the label is missing.
    let y_sent: Vec<i32> = train
        .column("y_sentiment")
        .unwrap()
        .i32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(y_sent, [1, 0, NO_LABEL, 1, 0, NO_LABEL]);

    // Token targets: on the first sub-token of each word, null without a label.
    let rows = train_rows();
    let word_ids = i32_lists(&train, "word_ids");
    let input_lens: Vec<usize> = train
        .column("input_ids")
        .unwrap()
        .list()
        .unwrap()
        .series_iter()
        .map(|s| s.unwrap().len())
        .collect();
    let y_pos = i32_lists(&train, "y_pos");
    let lengths: Vec<u32> = train
        .column("length")
        .unwrap()
        .u32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let mut truncated_rows = 0;
    let mut split_words = 0;
    for (i, r) in rows.iter().enumerate() {
        let wids = word_ids[i].as_ref().unwrap();
        assert_eq!(wids.len(), lengths[i] as usize);
        assert_eq!(input_lens[i], wids.len());
        assert!(wids.len() <= 16);
        assert_eq!((wids[0], *wids.last().unwrap()), (-1, -1));
        if wids.len() > r.words.len() + 2 {
            split_words += 1;
        }
        match (&r.pos, &y_pos[i]) {
            (None, None) => {}
            (Some(tags), Some(y)) => {
                assert_eq!(y.len(), wids.len());
                let want: Vec<i32> = tags
                    .iter()
                    .map(|t| POS.iter().position(|p| p == t).unwrap() as i32)
                    .collect();
                let back = mtl_tokenize::align::unalign(y, wids, r.words.len());
                let kept = back.iter().filter(|b| b.is_some()).count();
                if kept < r.words.len() {
                    truncated_rows += 1;
                }
                assert_eq!(
                    back[..kept],
                    want[..kept].iter().map(|&x| Some(x)).collect::<Vec<_>>()[..],
                    "row {}",
                    r.id
                );
                assert!(back[kept..].iter().all(Option::is_none));
                let scored = y.iter().filter(|&&v| v != IGNORE_INDEX).count();
                assert_eq!(
                    scored, kept,
                    "one scored position per kept word in row {}",
                    r.id
                );
                for (w, v) in wids.iter().zip(y) {
                    if *w < 0 {
                        assert_eq!(*v, IGNORE_INDEX);
                    }
                }
            }
            other => panic!("row {}: label presence differs: {other:?}", r.id),
        }
    }
    assert_eq!(
        truncated_rows, 1,
        "the long row t4 is truncated at 16 sub-tokens"
    );
    assert!(split_words > 0, "a vocabulary of 80 splits some words");

    // Dev is encoded with the train tokenizer; test has no rows but the schema.
    let dev = artifact::read_parquet(&out.join("dev.parquet")).unwrap();
    assert_eq!(dev.height(), 2);
    assert_eq!(i32_lists(&dev, "y_pos")[1], None);
    let test = artifact::read_parquet(&out.join("test.parquet")).unwrap();
    assert_eq!(test.height(), 0);
    assert_eq!(test.schema(), train.schema());

    // labels.json travels byte for byte; the tokenizer and report are there.
    assert_eq!(
        std::fs::read(out.join("labels.json")).unwrap(),
        std::fs::read(split.join("labels.json")).unwrap()
    );
    let tok = mtl_tokenize::load_pretrained(&out).unwrap();
    let report = mtl_tokenize::Report::read(&out).unwrap();
    assert_eq!(report.tokenizer.vocab_size, tok.get_vocab_size(true));
    assert_eq!(report.tokenizer.pad_id, Some(0));
    let tr = &report.splits["train"];
    assert_eq!((tr.rows, tr.truncated_examples), (6, 1));
    assert!(tr.truncated_words > 0);
    assert_eq!(tr.labelled_words_lost["pos"], tr.truncated_words);
    assert_eq!(tr.length.max, Some(16));
    assert!(tr.padding.bucketed.unwrap() <= tr.padding.global_max.unwrap());
    assert_eq!(report.splits["test"].rows, 0);
    assert_eq!(report.splits["test"].length.p50, None);

    let m = Manifest::read(&out).unwrap();
    assert_eq!(m.stage, Stage::Tokenize);
    assert_eq!(m.inputs.len(), 1);
    assert_eq!((m.rows["train"], m.rows["dev"], m.rows["test"]), (6, 2, 0));
    for f in [
        "train.parquet",
        "dev.parquet",
        "test.parquet",
        "tokenizer.json",
        "labels.json",
        "features.json",
        "report.json",
    ] {
        assert!(m.outputs.contains_key(f), "{f}");
    }
    // Split wrote no features.json: an empty one (no side inputs) travels on.
    assert_eq!(
        mtl_core::FeatureSet::read(&out.join("features.json")).unwrap(),
        mtl_core::FeatureSet::default()
    );

    // Unchanged inputs and config: cached. A config change re-runs.
    let again = mtl_tokenize::run(&cfg, &split, &out, false).unwrap();
    assert!(matches!(again, Outcome::Cached(_)), "{}", again.summary());
    let forced = mtl_tokenize::run(&cfg, &split, &out, true).unwrap();
    assert!(matches!(forced, Outcome::Ran(_)));
    assert_eq!(
        std::fs::read(out.join("tokenizer.json")).unwrap(),
        tok_bytes(&tok),
        "re-training gives the same tokenizer"
    );
    let other =
        mtl_tokenize::run(&config("label_all_subtokens = true\n"), &split, &out, false).unwrap();
    assert!(matches!(other, Outcome::Ran(_)));
}

fn tok_bytes(tok: &tokenizers::Tokenizer) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.json");
    tok.save(&p, false).unwrap();
    std::fs::read(p).unwrap()
}

#[test]
fn pretrained_tokenizer_is_an_input_with_its_hash() {
    let (root, split, out) = setup();
    mtl_tokenize::run(&config(""), &split, &out, false).unwrap();
    let tok_file = root.path().join("pretrained.json");
    std::fs::copy(out.join("tokenizer.json"), &tok_file).unwrap();

    let cfg = config(&format!(
        "kind = \"pretrained\"\npretrained = {:?}\n",
        tok_file.display().to_string()
    ));
    let out2 = root.path().join("tokenize2");
    let m = mtl_tokenize::run(&cfg, &split, &out2, false)
        .unwrap()
        .manifest()
        .clone();
    assert_eq!(m.inputs.len(), 2);
    assert_eq!(m.inputs[1].name, "pretrained_tokenizer");
    assert_eq!(
        m.inputs[1].fingerprint,
        mtl_core::hash::sha256_file(&tok_file).unwrap()
    );
    let a = artifact::read_parquet(&out.join("train.parquet")).unwrap();
    let b = artifact::read_parquet(&out2.join("train.parquet")).unwrap();
    assert!(a.equals_missing(&b), "same tokenizer, same encoding");

    // A different tokenizer file is a different input.
    let mut tok = mtl_tokenize::load_pretrained(&tok_file).unwrap();
    tok.add_tokens(&[tokenizers::AddedToken::from("dogs", false)]);
    tok.save(&tok_file, false).unwrap();
    assert!(matches!(
        mtl_tokenize::run(&cfg, &split, &out2, false).unwrap(),
        Outcome::Ran(_)
    ));
}

#[test]
fn a_label_outside_the_vocabulary_names_task_label_file_and_row() {
    let root = tempfile::tempdir().unwrap();
    let split = root.path().join("split");
    let mut dev = vec![row("d0", "the dog sleeps .", None, true)];
    dev[0].pos.as_mut().unwrap()[1] = "PROPN";
    write_split(&split, &train_rows(), &dev, &[]);
    let err = mtl_tokenize::run(&config(""), &split, &root.path().join("tok"), false)
        .unwrap_err()
        .to_string();
    for part in ["`pos`", "`PROPN`", "dev.parquet", "`d0`"] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }
    assert!(
        !root.path().join("tok").exists(),
        "nothing is written on failure"
    );
}

#[test]
fn missing_split_manifest_says_what_to_run() {
    let root = tempfile::tempdir().unwrap();
    let err = mtl_tokenize::run(&config(""), root.path(), &root.path().join("tok"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("mtl-split"), "{err}");
}

// ---- multilabel, regression and side-input features -------------------

struct NewRow {
    id: &'static str,
    text: &'static str,
    topics: Option<Vec<&'static str>>,
    score: Option<f64>,
    n_words: Option<f32>,
}

fn new_rows() -> Vec<NewRow> {
    let r = |id, text, topics: Option<Vec<&'static str>>, score, n_words| NewRow {
        id,
        text,
        topics,
        score,
        n_words,
    };
    vec![
        r(
            "n0",
            "the dog runs .",
            Some(vec!["pets", "sport", "pets"]),
            Some(2.5),
            Some(4.0),
        ),
        r("n1", "the cat sleeps .", Some(vec![]), None, Some(4.0)),
        r("n2", "a dog barks", None, Some(-1.0), Some(3.0)),
        r(
            "n3",
            "dogs and cats .",
            Some(vec!["sport"]),
            Some(0.0),
            Some(4.0),
        ),
    ]
}

fn write_new_table(path: &Path, rows: &[NewRow]) {
    let mut words = ListStringChunkedBuilder::new(col::WORDS.into(), rows.len(), 64);
    let mut topics = ListStringChunkedBuilder::new(col::label("topics").into(), rows.len(), 64);
    for r in rows {
        words.append_values_iter(r.text.split(' '));
        match &r.topics {
            Some(t) => topics.append_values_iter(t.iter().copied()),
            None => topics.append_null(),
        }
    }
    let mut df = DataFrame::new(
        rows.len(),
        vec![
            Column::new(
                col::ID.into(),
                rows.iter().map(|r| r.id).collect::<Vec<_>>(),
            ),
            Column::new(
                col::TEXT.into(),
                rows.iter().map(|r| r.text).collect::<Vec<_>>(),
            ),
            words.finish().into_column(),
            Column::new(
                col::feature("n_words").into(),
                rows.iter().map(|r| r.n_words).collect::<Vec<_>>(),
            ),
            Column::new(
                col::feature("upper_ratio").into(),
                rows.iter().map(|_| 0.25f32).collect::<Vec<_>>(),
            ),
            Column::new(
                col::feature("digit_ratio").into(),
                rows.iter().map(|_| 0f32).collect::<Vec<_>>(),
            ),
            topics.finish().into_column(),
            Column::new(
                col::label("score").into(),
                rows.iter().map(|r| r.score).collect::<Vec<_>>(),
            ),
        ],
    )
    .unwrap();
    artifact::write_parquet(&mut df, path).unwrap();
}

fn new_label_set() -> LabelSet {
    let mut tasks = BTreeMap::new();
    tasks.insert(
        "topics".to_string(),
        TaskLabels {
            kind: TaskKind::Multilabel,
            scheme: None,
            labels: vec!["pets".into(), "sport".into()],
            train_counts: vec![1, 2],
            class_weights: None,
            target: None,
        },
    );
    tasks.insert(
        "score".to_string(),
        TaskLabels {
            kind: TaskKind::Regression,
            scheme: None,
            labels: vec![],
            train_counts: vec![],
            class_weights: None,
            target: Some(mtl_core::task::TargetStats {
                count: 3,
                mean: 0.5,
                std: 1.5,
                min: -1.0,
                max: 2.5,
            }),
        },
    );
    LabelSet { tasks }
}

const FEATURES_JSON: &str = r#"{
  "stats": {"n_words": {"mean": 3.75, "std": 0.43}, "upper_ratio": {"mean": 0.25, "std": 1.0}},
  "tasks": {
    "score": {"ranking": [], "selected": ["upper_ratio", "n_words"]},
    "topics": {"ranking": [], "selected": []}
  }
}"#;

fn write_new_split(dir: &Path, train: &[NewRow], features: bool) {
    let staging = StagingDir::begin(dir).unwrap();
    write_new_table(&staging.path("train.parquet"), train);
    write_new_table(&staging.path("dev.parquet"), &train[..1]);
    write_new_table(&staging.path("test.parquet"), &[]);
    mtl_core::fsio::write_json(&staging.path(LabelSet::FILE), &new_label_set()).unwrap();
    if features {
        std::fs::write(staging.path("features.json"), FEATURES_JSON).unwrap();
    }
    ManifestBuilder::new(Stage::Split, 1, "split-fp".into(), vec![])
        .finish(&staging, &BTreeMap::new())
        .unwrap();
    staging.commit().unwrap();
}

#[test]
fn multilabel_regression_and_features_are_carried() {
    let root = tempfile::tempdir().unwrap();
    let split = root.path().join("split");
    let out = root.path().join("tokenize");
    write_new_split(&split, &new_rows(), true);
    mtl_tokenize::run(&config(""), &split, &out, false).unwrap();
    let train = artifact::read_parquet(&out.join("train.parquet")).unwrap();
    let schema: Vec<(String, DataType)> = train
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.dtype().clone()))
        .collect();
    let list = |t: DataType| DataType::List(Box::new(t));
    assert_eq!(
        schema[5..],
        [
            // Only the features some task selects, in FEATURES order.
            ("feat_n_words".to_string(), DataType::Float32),
            ("feat_upper_ratio".to_string(), DataType::Float32),
            ("y_score".to_string(), DataType::Float32),
            ("y_topics".to_string(), list(DataType::Int32)),
        ]
    );
    // Sorted distinct ids; an empty list is a labelled row; null is not.
    assert_eq!(
        i32_lists(&train, "y_topics"),
        [Some(vec![0, 1]), Some(vec![]), None, Some(vec![1])]
    );
    let score: Vec<Option<f32>> = train
        .column("y_score")
        .unwrap()
        .f32()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(score, [Some(2.5), None, Some(-1.0), Some(0.0)]);
    let n_words: Vec<f32> = train
        .column("feat_n_words")
        .unwrap()
        .f32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(n_words, [4.0, 4.0, 3.0, 4.0]);
    assert_eq!(
        std::fs::read_to_string(out.join("features.json")).unwrap(),
        FEATURES_JSON,
        "features.json travels byte for byte"
    );
    let test = artifact::read_parquet(&out.join("test.parquet")).unwrap();
    assert_eq!(test.schema(), train.schema());
}

#[test]
fn without_features_json_no_feature_column_is_carried() {
    let root = tempfile::tempdir().unwrap();
    let split = root.path().join("split");
    let out = root.path().join("tokenize");
    write_new_split(&split, &new_rows(), false);
    mtl_tokenize::run(&config(""), &split, &out, false).unwrap();
    let train = artifact::read_parquet(&out.join("train.parquet")).unwrap();
    assert!(
        train
            .get_column_names()
            .iter()
            .all(|c| !c.starts_with("feat_")),
        "{:?}",
        train.get_column_names()
    );
}

#[test]
fn bad_multilabel_labels_and_null_features_name_the_row() {
    let root = tempfile::tempdir().unwrap();
    let mut rows = new_rows();
    rows[3].topics = Some(vec!["cooking"]);
    write_new_split(&root.path().join("s1"), &rows, true);
    let err = mtl_tokenize::run(
        &config(""),
        &root.path().join("s1"),
        &root.path().join("t1"),
        false,
    )
    .unwrap_err()
    .to_string();
    for part in ["`topics`", "`cooking`", "train.parquet", "`n3`"] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }

    let mut rows = new_rows();
    rows[2].n_words = None;
    write_new_split(&root.path().join("s2"), &rows, true);
    let err = mtl_tokenize::run(
        &config(""),
        &root.path().join("s2"),
        &root.path().join("t2"),
        false,
    )
    .unwrap_err()
    .to_string();
    for part in ["`feat_n_words`", "null", "train.parquet", "`n2`"] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }
}

// ---- windows, character ids and pad_to --------------------------------

fn u32_col(df: &DataFrame, name: &str) -> Vec<u32> {
    df.column(name)
        .unwrap()
        .u32()
        .unwrap()
        .into_no_null_iter()
        .collect()
}

fn str_col(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap().to_string())
        .collect()
}

#[test]
fn long_examples_become_windows_that_score_every_word_once() {
    let (_root, split, out) = setup();
    let cfg = config(
        "truncation = \"window\"\nstride = 3\npad_to = 20\nchar_ids = true\nmax_word_chars = 5\n",
    );
    mtl_tokenize::run(&cfg, &split, &out, false).unwrap();
    let train = artifact::read_parquet(&out.join("train.parquet")).unwrap();
    let list = |t: DataType| DataType::List(Box::new(t));
    let schema: Vec<(String, DataType)> = train
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.dtype().clone()))
        .collect();
    assert_eq!(
        schema[4..8],
        [
            ("length".to_string(), DataType::UInt32),
            ("window".to_string(), DataType::UInt32),
            ("char_ids".to_string(), list(list(DataType::UInt32))),
            ("y_pos".to_string(), list(DataType::Int32)),
        ]
    );

    // Only t4 (22 words) exceeds 16 sub-tokens; its windows follow it.
    let ids = str_col(&train, "id");
    let windows = u32_col(&train, "window");
    let t4: Vec<usize> = (0..ids.len()).filter(|&i| ids[i] == "t4").collect();
    assert!(t4.len() >= 2, "{ids:?}");
    assert_eq!(ids.len(), 5 + t4.len());
    assert_eq!(
        t4.iter().map(|&i| windows[i]).collect::<Vec<_>>(),
        (0..t4.len() as u32).collect::<Vec<_>>()
    );
    assert!(
        (0..ids.len())
            .filter(|i| !t4.contains(i))
            .all(|i| windows[i] == 0)
    );
    assert_eq!(
        t4,
        (t4[0]..t4[0] + t4.len()).collect::<Vec<_>>(),
        "contiguous"
    );

    // The sentence label rides on window 0 only.
    let y_sent: Vec<i32> = train
        .column("y_sentiment")
        .unwrap()
        .i32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert_eq!(y_sent[t4[0]], 0);
    assert!(t4[1..].iter().all(|&i| y_sent[i] == NO_LABEL));

    // Every word of t4 is scored once and its labels merge back whole.
    let word_ids = i32_lists(&train, "word_ids");
    let y_pos = i32_lists(&train, "y_pos");
    let n_words = u32_col(&train, "n_words");
    let wids: Vec<Vec<i32>> = t4.iter().map(|&i| word_ids[i].clone().unwrap()).collect();
    let ys: Vec<Vec<i32>> = t4.iter().map(|&i| y_pos[i].clone().unwrap()).collect();
    let row = &train_rows()[4];
    assert!(t4.iter().all(|&i| n_words[i] as usize == row.words.len()));
    let want: Vec<Option<i32>> = row
        .pos
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| Some(POS.iter().position(|p| p == t).unwrap() as i32))
        .collect();
    assert_eq!(
        mtl_tokenize::align::unalign_windows(&ys, &wids, row.words.len()),
        want
    );
    let scored: usize = ys.iter().flatten().filter(|&&y| y != IGNORE_INDEX).count();
    assert_eq!(scored, row.words.len());
    for w in &wids {
        assert!(w.len() <= 16 && w[0] == -1 && *w.last().unwrap() == -1);
    }

    // Character ids: one list per word of the example, from chars.json.
    let chars = mtl_tokenize::CharVocab::read(&out.join("chars.json")).unwrap();
    assert!(chars.lowercase);
    assert_eq!(chars.max_word_chars, 5);
    let char_ids: Vec<Vec<Vec<u32>>> = train
        .column("char_ids")
        .unwrap()
        .list()
        .unwrap()
        .series_iter()
        .map(|words| {
            words
                .unwrap()
                .list()
                .unwrap()
                .series_iter()
                .map(|w| w.unwrap().u32().unwrap().into_no_null_iter().collect())
                .collect()
        })
        .collect();
    let t0: Vec<Vec<u32>> = train_rows()[0].words.iter().map(|w| chars.ids(w)).collect();
    assert_eq!(char_ids[0], t0);
    // "quickly" keeps its first five characters, all seen in train.
    assert_eq!(char_ids[0][3], chars.ids("quick"));
    assert!(char_ids[0][3].len() == 5 && char_ids[0][3].iter().all(|&c| c >= 2));
    assert!(t4.iter().all(|&i| char_ids[i].len() == row.words.len()));
    // Dev is encoded with the train vocabulary into the same column.
    let dev = artifact::read_parquet(&out.join("dev.parquet")).unwrap();
    assert!(dev.column("char_ids").is_ok());

    let report = mtl_tokenize::Report::read(&out).unwrap();
    let tr = &report.splits["train"];
    assert_eq!((tr.examples, tr.rows), (6, ids.len() as u64));
    assert_eq!((tr.windowed_examples, tr.windows), (1, t4.len() as u64));
    assert_eq!(
        (tr.truncated_examples, tr.truncated_words, tr.cut_words),
        (0, 0, 0)
    );
    assert_eq!(tr.labelled_words_lost["pos"], 0);
    assert_eq!(tr.padding.pad_to, Some(20));
    let real: u64 = u32_col(&train, "length")
        .iter()
        .map(|&l| u64::from(l))
        .sum();
    let fixed = tr.padding.fixed.unwrap();
    assert!((fixed - (1.0 - real as f64 / (20.0 * ids.len() as f64))).abs() < 1e-12);
    assert_eq!(tr.padding.effective(), Some(fixed));
    assert_eq!(report.tokenizer.char_vocab_size, Some(chars.len()));
    assert!(
        Manifest::read(&out)
            .unwrap()
            .outputs
            .contains_key("chars.json")
    );
}

#[test]
fn windows_carry_sentence_targets_once_and_features_on_every_window() {
    let root = tempfile::tempdir().unwrap();
    let split = root.path().join("split");
    let out = root.path().join("tokenize");
    write_new_split(&split, &new_rows(), true);
    // Four sub-tokens per window: two words between the specials.
    let cfg = config("truncation = \"window\"\nstride = 1\n");
    let mut cfg = cfg;
    cfg.tokenize.max_length = 4;
    mtl_tokenize::run(&cfg, &split, &out, false).unwrap();
    let train = artifact::read_parquet(&out.join("train.parquet")).unwrap();
    let ids = str_col(&train, "id");
    let windows = u32_col(&train, "window");
    let topics = i32_lists(&train, "y_topics");
    let score: Vec<Option<f32>> = train
        .column("y_score")
        .unwrap()
        .f32()
        .unwrap()
        .iter()
        .collect();
    let n_words: Vec<f32> = train
        .column("feat_n_words")
        .unwrap()
        .f32()
        .unwrap()
        .into_no_null_iter()
        .collect();
    assert!(ids.len() > 4, "every example needs windows: {ids:?}");
    for (i, id) in ids.iter().enumerate() {
        let ex = new_rows().into_iter().find(|r| r.id == id).unwrap();
        assert_eq!(n_words[i], ex.n_words.unwrap(), "features on every window");
        if windows[i] == 0 {
            assert_eq!(score[i], ex.score.map(|s| s as f32), "{id}");
            assert_eq!(topics[i].is_some(), ex.topics.is_some(), "{id}");
        } else {
            assert_eq!(
                (score[i], &topics[i]),
                (None, &None),
                "{id} window {}",
                windows[i]
            );
        }
    }
}

#[test]
fn cut_tables_have_no_window_or_char_columns() {
    let (_root, split, out) = setup();
    mtl_tokenize::run(&config(""), &split, &out, false).unwrap();
    let train = artifact::read_parquet(&out.join("train.parquet")).unwrap();
    assert!(train.column("window").is_err() && train.column("char_ids").is_err());
    assert!(!out.join("chars.json").exists());
    let report = mtl_tokenize::Report::read(&out).unwrap();
    assert_eq!(report.splits["train"].padding.fixed, None);
    assert_eq!(report.tokenizer.char_vocab_size, None);
}
