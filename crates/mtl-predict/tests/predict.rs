//! Prediction from a bundle with every head kind and side inputs: the JSONL
//! shape, side inputs equal to the clean stage's features for the same text,
//! and predictions equal to eval's on the same rows.
//!
//! The fixture runs the real clean stage on a small JSONL file, fits a
//! tokenizer on its words, and saves a random-weight bundle whose sentence
//! heads take side inputs; the tokenize-style table eval reads is built
//! from the clean table the way the tokenize stage does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use mtl_core::align::first_subtoken_positions;
use mtl_core::artifact::{FEATURES, col, read_parquet, write_parquet};
use mtl_core::config::Truncation;
use mtl_core::features::{FeatureStats, TaskFeatures};
use mtl_core::task::TargetStats;
use mtl_core::{FeatureSet, LabelSet, PipelineConfig, TaskKind, TaskLabels};
use mtl_eval::RowPreds;
use mtl_model::bundle::{BundleMeta, FORMAT_VERSION};
use mtl_model::{Bundle, EncoderSpec, HeadSpec, ModelSpec, MultiTaskModel, Preprocess};
use mtl_predict::PredictOptions;
use polars::prelude::*;
use serde_json::Value;

const CONFIG: &str = r#"
[pipeline]
name = "p"

[[datasets]]
name = "d"
format = "jsonl"
files = { all = "d.jsonl" }
clean = { mask_urls = true }

[[tasks]]
name = "s"
dataset = "d"
column = "label"
type = "classification"

[[tasks]]
name = "topics"
dataset = "d"
column = "topics"
type = "multilabel"

[[tasks]]
name = "stars"
dataset = "d"
column = "stars"
type = "regression"
"#;

const RAW: &[&str] = &[
    r#"{"text": "Great MATCH tonight @fans #win http://x.co/a", "label": "pos", "topics": ["sports"], "stars": 4.5}"#,
    r#"{"text": "New GPU prices are up 20% again!!", "label": "neg", "topics": ["tech", "money"], "stars": 2.0}"#,
    r#"{"text": "nothing to see here", "label": "neg", "topics": [], "stars": 3.0}"#,
    r#"{"text": "Team <b>wins</b> the cup; fans cheer, and the whole city celebrates all night long with music and fireworks", "label": "pos", "topics": ["sports"], "stars": 5.0}"#,
    r#"{"text": "Stocks fell 3.5 percent as @analyst warned about CHIPS at www.example.com", "label": "neg", "topics": ["money", "tech"], "stars": 1.5}"#,
    r#"{"text": "   Ünïcödé   spaces\tand tabs  ", "label": "pos", "topics": ["tech"], "stars": 3.5}"#,
];

/// The side inputs of each head, all of them different.
fn selected() -> BTreeMap<&'static str, Vec<&'static str>> {
    BTreeMap::from([
        ("s", vec!["n_words", "upper_ratio"]),
        ("topics", vec!["n_urls", "n_mentions", "punct_ratio"]),
        ("stars", vec!["digit_ratio", "mean_word_len", "n_hashtags"]),
    ])
}

const MAX_LENGTH: usize = 12;

struct Fixture {
    root: tempfile::TempDir,
    model: PathBuf,
    /// The clean stage's table of `d.jsonl`.
    clean: DataFrame,
    /// The raw text of each clean row, in the clean table's order.
    texts: Vec<String>,
}

fn raw_text(line: &str) -> String {
    let v: Value = serde_json::from_str(line).unwrap();
    v["text"].as_str().unwrap().to_string()
}

fn labels() -> LabelSet {
    let mut set = LabelSet::default();
    let mut add = |name: &str, kind, labels: &[&str], target| {
        set.tasks.insert(
            name.into(),
            TaskLabels {
                kind,
                scheme: None,
                labels: labels.iter().map(|s| s.to_string()).collect(),
                train_counts: vec![2; labels.len()],
                class_weights: None,
                target,
            },
        );
    };
    add("s", TaskKind::Classification, &["neg", "pos"], None);
    add(
        "topics",
        TaskKind::Multilabel,
        &["money", "sports", "tech"],
        None,
    );
    add(
        "stars",
        TaskKind::Regression,
        &[],
        Some(TargetStats {
            count: 6,
            mean: 3.25,
            std: 1.2,
            min: 1.5,
            max: 5.0,
        }),
    );
    // A token head without side inputs, to check it is not disturbed.
    add("pos", TaskKind::Tagging, &["A", "B", "C"], None);
    set
}

fn feature_set() -> FeatureSet {
    let mut set = FeatureSet::default();
    for (i, f) in FEATURES.iter().enumerate() {
        set.stats.insert(
            f.to_string(),
            FeatureStats {
                mean: i as f64 * 0.1,
                std: 0.5 + i as f64,
            },
        );
    }
    for (task, sel) in selected() {
        set.tasks.insert(
            task.into(),
            TaskFeatures {
                ranking: vec![],
                selected: sel.into_iter().map(String::from).collect(),
            },
        );
    }
    set
}

fn words_of(df: &DataFrame) -> Vec<Vec<String>> {
    df.column(col::WORDS)
        .unwrap()
        .list()
        .unwrap()
        .series_iter()
        .map(|s| {
            s.unwrap()
                .str()
                .unwrap()
                .iter()
                .map(|w| w.unwrap().to_string())
                .collect()
        })
        .collect()
}

fn fixture() -> Fixture {
    fixture_with(None)
}

/// With `replay`, the keys are added to model.json's `preprocess`, as the
/// trainer writes them (`truncation`, `stride`, `pad_to`).
fn fixture_with(replay: Option<Value>) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path();
    std::fs::write(dir.join("d.jsonl"), RAW.join("\n") + "\n").unwrap();
    let config = dir.join("p.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let cfg = PipelineConfig::load(&config, None).unwrap();
    mtl_clean::run(&cfg, &dir.join("clean"), true).unwrap();
    let clean = read_parquet(&dir.join("clean/d.parquet")).unwrap();
    assert_eq!(clean.height(), RAW.len(), "every row kept");
    let lines: Vec<u32> = clean
        .column(col::SOURCE_LINE)
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .map(Option::unwrap)
        .collect();
    let texts = lines
        .iter()
        .map(|&l| raw_text(RAW[l as usize - 1]))
        .collect();

    let tok = mtl_tokenize::train_tokenizer(words_of(&clean).into_iter(), &cfg.tokenize).unwrap();
    let tok_path = dir.join("tokenizer.json");
    tok.save(&tok_path, false).unwrap();

    let features = feature_set();
    let mut heads = vec![
        HeadSpec::new("s", TaskKind::Classification, 2),
        HeadSpec::new("topics", TaskKind::Multilabel, 3),
        HeadSpec::new("stars", TaskKind::Regression, 0),
        HeadSpec::new("pos", TaskKind::Tagging, 3),
    ];
    for h in &mut heads {
        h.features = features.selected(&h.name).to_vec();
    }
    heads[2].target = labels().tasks["stars"].target;
    let spec = ModelSpec {
        encoder: EncoderSpec {
            kind: "bilstm".into(),
            vocab_size: tok.get_vocab_size(true),
            embedding_dim: 8,
            hidden_dim: 8,
            layers: 1,
            dropout: 0.0,
            ..Default::default()
        },
        tasks: heads,
    };
    let (_, varmap) = MultiTaskModel::new(&spec, 5, &Device::Cpu).unwrap();
    let meta = BundleMeta {
        format_version: FORMAT_VERSION,
        spec,
        preprocess: Preprocess {
            clean: cfg
                .datasets
                .iter()
                .map(|d| (d.name.clone(), d.clean.clone()))
                .collect(),
            max_length: MAX_LENGTH,
            ..Default::default()
        },
    };
    let model = dir.join("model");
    mtl_model::bundle::save(&model, &meta, &varmap, &tok_path, &labels(), &features).unwrap();
    if let Some(Value::Object(extra)) = replay {
        let path = model.join("model.json");
        let mut json: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["preprocess"].as_object_mut().unwrap().extend(extra);
        std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    }
    Fixture {
        root,
        model,
        clean,
        texts,
    }
}

fn opts(batch_size: usize) -> PredictOptions<'static> {
    PredictOptions {
        batch_size,
        ..Default::default()
    }
}

#[test]
fn writes_every_task_kind_as_jsonl() {
    let f = fixture();
    let input = f.root.path().join("in.txt");
    std::fs::write(&input, f.texts.join("\n") + "\n").unwrap();
    let output = f.root.path().join("out.jsonl");
    let input_opts = mtl_predict::InputOptions::default();
    let jsonl = mtl_predict::OutputFormat::Jsonl;
    let s = mtl_predict::run(&f.model, &input, &output, &input_opts, &opts(4), jsonl).unwrap();
    assert_eq!(
        (s.rows, s.predicted, s.errors),
        (f.texts.len(), f.texts.len(), 0)
    );
    let lines: Vec<Value> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), f.texts.len());
    let mut saw_truncation = false;
    for (i, v) in lines.iter().enumerate() {
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["id", "line", "pos", "s", "stars", "text", "topics", "words"],
            "{v}"
        );
        // Without an id column, the line number is the id.
        assert_eq!(
            (v["id"].as_u64(), v["line"].as_u64()),
            (Some(i as u64 + 1), Some(i as u64 + 1))
        );
        assert_eq!(v["text"], f.texts[i].as_str());

        let s = &v["s"];
        assert!(
            ["neg", "pos"].contains(&s["label"].as_str().unwrap()),
            "{v}"
        );
        assert!((0.0..=1.0).contains(&s["prob"].as_f64().unwrap()));

        let topics = &v["topics"];
        let probs = topics["probs"].as_object().unwrap();
        assert_eq!(
            probs.keys().map(String::as_str).collect::<Vec<_>>(),
            ["money", "sports", "tech"],
            "{v}"
        );
        let over: Vec<&str> = probs
            .iter()
            .filter(|(_, p)| p.as_f64().unwrap() >= f64::from(mtl_model::MULTILABEL_THRESHOLD))
            .map(|(k, _)| k.as_str())
            .collect();
        let chosen: Vec<&str> = topics["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert_eq!(chosen, over, "labels are the probable ones: {v}");
        assert!(
            probs
                .values()
                .all(|p| (0.0..=1.0).contains(&p.as_f64().unwrap()))
        );

        let stars = v["stars"].as_f64().expect("regression is a plain number");
        assert!(stars.is_finite());

        let words = v["words"].as_array().unwrap().len();
        let tags = v["pos"]["tags"].as_array().unwrap();
        assert_eq!(tags.len(), words, "{v}");
        saw_truncation |= tags.iter().any(Value::is_null);
    }
    assert!(saw_truncation, "the long text loses words to max_length");
}

#[test]
fn side_inputs_equal_the_clean_stage_features() {
    let f = fixture();
    let bundle = Bundle::load(&f.model, &Device::Cpu).unwrap();
    let prepared = mtl_predict::prepare(&bundle, &f.texts, &opts(8)).unwrap();
    assert_eq!(prepared.words, words_of(&f.clean), "same cleaning");
    let used = bundle.features.used();
    assert_eq!(used.len(), 8, "{used:?}");
    for (row, values) in prepared.features.iter().enumerate() {
        assert_eq!(
            values.keys().map(String::as_str).collect::<Vec<_>>(),
            {
                let mut u = used.clone();
                u.sort();
                u
            },
            "only the features some head takes"
        );
        for name in &used {
            let clean = f
                .clean
                .column(&col::feature(name))
                .unwrap()
                .f32()
                .unwrap()
                .get(row)
                .unwrap();
            assert_eq!(
                values[*name], clean,
                "row {row} ({:?}), feature {name}",
                f.texts[row]
            );
        }
    }
    // Not all zeros: the first text has a mention, a hashtag and an URL.
    let first = f.texts.iter().position(|t| t.starts_with("Great")).unwrap();
    assert_eq!(prepared.features[first]["n_urls"], 1.0);
    assert_eq!(prepared.features[first]["n_mentions"], 1.0);
    assert_eq!(prepared.features[first]["n_hashtags"], 1.0);
    assert!(prepared.features[first]["upper_ratio"] > 0.0);
}

/// The tokenize stage's table for the clean rows: sub-tokens, word ids and
/// every feature column, straight from the clean table; with `window`, one
/// row per window (sharing `stride` words) and a `window` column.
fn tokenize_table(f: &Fixture, path: &Path, window: Option<usize>) {
    let tok = mtl_tokenize::load_pretrained(&f.model.join("tokenizer.json")).unwrap();
    let words = words_of(&f.clean);
    let (truncation, stride) = match window {
        Some(stride) => (Truncation::Window, stride),
        None => (Truncation::Cut, 0),
    };
    let examples =
        mtl_tokenize::encode_examples(&tok, &words, MAX_LENGTH, truncation, stride).unwrap();
    // Row i of the table is window `windows[i]` of example `of[i]`.
    let (mut encoded, mut of, mut windows) = (Vec::new(), Vec::new(), Vec::new());
    for (i, x) in examples.iter().enumerate() {
        for (k, e) in x.windows.iter().enumerate() {
            encoded.push(e.clone());
            of.push(i as IdxSize);
            windows.push(k as u32);
        }
    }
    let idx = IdxCa::from_vec("".into(), of);
    let repeat = |name: &str| -> Column { f.clean.column(name).unwrap().take(&idx).unwrap() };
    let list = |name: &str, rows: Vec<Series>| -> Column {
        let ca: ListChunked = rows.into_iter().map(Some).collect();
        ca.with_name(name.into()).into_column()
    };
    let mut columns = vec![
        repeat(col::ID),
        list(
            col::INPUT_IDS,
            encoded
                .iter()
                .map(|e| Series::new("".into(), &e.input_ids))
                .collect(),
        ),
        list(
            col::WORD_IDS,
            encoded
                .iter()
                .map(|e| Series::new("".into(), &e.word_ids))
                .collect(),
        ),
        repeat(col::N_WORDS),
        Series::new(
            col::LENGTH.into(),
            encoded
                .iter()
                .map(|e| e.input_ids.len() as u32)
                .collect::<Vec<_>>(),
        )
        .into_column(),
    ];
    if window.is_some() {
        columns.push(Series::new(col::WINDOW.into(), windows).into_column());
    }
    for name in FEATURES {
        columns.push(repeat(&col::feature(name)));
    }
    let mut df = DataFrame::new_infer_height(columns).unwrap();
    write_parquet(&mut df, path).unwrap();
}

#[test]
fn predictions_equal_eval_on_the_same_rows() {
    let f = fixture();
    let table = f.root.path().join("dev.parquet");
    tokenize_table(&f, &table, None);
    let bundle = Bundle::load(&f.model, &Device::Cpu).unwrap();
    // Different batch sizes and orders: eval sorts rows by length.
    let eval = mtl_eval::predict_table(&bundle, &table, 4, None).unwrap();
    assert_eq!(eval.ids.len(), f.texts.len());
    let prepared = mtl_predict::prepare(&bundle, &f.texts, &opts(3)).unwrap();
    assert!(prepared.encoded.iter().all(|x| x.windows.len() == 1));
    assert_same_predictions(&f, &bundle, &eval, 3);
}

#[test]
fn windowed_predictions_equal_eval_merged_by_example() {
    let replay = serde_json::json!({"truncation": "window", "stride": 2, "pad_to": 16});
    let f = fixture_with(Some(replay));
    let table = f.root.path().join("dev.parquet");
    tokenize_table(&f, &table, Some(2));
    let bundle = Bundle::load(&f.model, &Device::Cpu).unwrap();
    let replay = mtl_predict::ReplayOptions::read(&bundle).unwrap();
    assert_eq!(
        (replay.truncation, replay.stride, replay.pad_to),
        (Truncation::Window, 2, Some(16))
    );
    let rows = read_parquet(&table).unwrap().height();
    assert!(rows > f.texts.len(), "the long texts need windows");
    let eval = mtl_eval::predict_table(&bundle, &table, 4, Some(16)).unwrap();
    assert_eq!(eval.ids.len(), f.texts.len(), "one entry per example");
    let prepared = mtl_predict::prepare(&bundle, &f.texts, &opts(3)).unwrap();
    assert_eq!(
        prepared
            .encoded
            .iter()
            .map(|x| x.windows.len())
            .sum::<usize>(),
        rows,
        "predict cuts the same windows"
    );
    // No word is lost: every word of every text gets a tag.
    let predict = assert_same_predictions(&f, &bundle, &eval, 3);
    for p in &predict {
        let tags = p["pos"]["tags"].as_array().unwrap();
        assert_eq!(tags.len(), p["words"].as_array().unwrap().len());
        assert!(tags.iter().all(|t| t.is_string()), "{p}");
    }
}

/// Predicts `f.texts` with `mtl-predict` and checks every task against
/// eval's predictions for the same rows; returns predict's output.
fn assert_same_predictions(
    f: &Fixture,
    bundle: &Bundle,
    eval: &mtl_eval::TablePredictions,
    batch_size: usize,
) -> Vec<Value> {
    let predict = mtl_predict::predict_texts(bundle, &f.texts, &opts(batch_size)).unwrap();
    let prepared = mtl_predict::prepare(bundle, &f.texts, &opts(batch_size)).unwrap();
    assert_eq!(eval.ids.len(), predict.len());
    let names = |task: &str| labels().tasks[task].labels.clone();

    let RowPreds::Sentence(s) = &eval.tasks["s"] else {
        panic!("{:?}", eval.tasks["s"])
    };
    let RowPreds::Multilabel(topics) = &eval.tasks["topics"] else {
        panic!()
    };
    let RowPreds::Regression(stars) = &eval.tasks["stars"] else {
        panic!()
    };
    let RowPreds::Token(pos) = &eval.tasks["pos"] else {
        panic!()
    };
    for (row, p) in predict.iter().enumerate() {
        assert_eq!(p["s"]["label"], names("s")[s[row] as usize], "row {row}");
        let want: Vec<String> = topics[row]
            .iter()
            .map(|&id| names("topics")[id as usize].clone())
            .collect();
        assert_eq!(p["topics"]["labels"], serde_json::json!(want), "row {row}");
        let got = p["stars"].as_f64().unwrap();
        assert!(
            (got - f64::from(stars[row])).abs() < 1e-4,
            "row {row}: predict {got}, eval {}",
            stars[row]
        );
        let words = prepared.words[row].len();
        let positions = first_subtoken_positions(&eval.word_ids[row], words);
        let want: Vec<Option<String>> = positions
            .iter()
            .map(|p| p.map(|p| names("pos")[pos[row][p] as usize].clone()))
            .collect();
        assert_eq!(p["pos"]["tags"], serde_json::json!(want), "row {row}");
    }
    predict
}
