//! The stage over a small random-weight model: files, masks, truncation,
//! baselines, caching and lineage checks. (Scores of a trained model are
//! checked end to end in xtask.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtl_core::artifact::write_parquet;
use mtl_core::config::HeadlineMetric;
use mtl_core::{
    InputRef, LabelSet, ManifestBuilder, Outcome, PipelineConfig, Stage, StagingDir, TaskKind,
    TaskLabels,
};
use mtl_eval::report::TaskDetail;
use mtl_eval::{Metrics, run};
use mtl_model::HeadSpec;
use polars::prelude::*;

mod common;

const CONFIG: &str = r#"
[pipeline]
name = "p"

[[datasets]]
name = "d"
format = "jsonl"
files = { all = "d.jsonl" }

[[tasks]]
name = "s"
dataset = "d"
column = "label"
type = "classification"

[[tasks]]
name = "ner"
dataset = "d"
column = "tags"
type = "spans"

[eval]
splits = ["dev", "test"]
batch_size = 2
"#;

fn labels() -> LabelSet {
    let mut set = LabelSet::default();
    set.tasks.insert(
        "s".into(),
        TaskLabels {
            kind: TaskKind::Classification,
            scheme: None,
            labels: vec!["neg".into(), "pos".into()],
            train_counts: vec![3, 7],
            class_weights: None,
            target: None,
        },
    );
    set.tasks.insert(
        "ner".into(),
        TaskLabels {
            kind: TaskKind::Spans,
            scheme: None,
            labels: vec!["B-PER".into(), "I-PER".into(), "O".into()],
            train_counts: vec![2, 1, 20],
            class_weights: None,
            target: None,
        },
    );
    set
}

fn u32s(v: &[u32]) -> Option<Series> {
    Some(Series::new("".into(), v))
}
fn i32s(v: &[i32]) -> Option<Series> {
    Some(Series::new("".into(), v))
}

fn list(name: &str, rows: Vec<Option<Series>>) -> Column {
    let ca: ListChunked = rows.into_iter().collect();
    ca.with_name(name.into()).into_column()
}

/// dev: r1 = 2 words "B-PER O", sentiment neg; r2 = 2 words of which the
/// second was cut off (gold B-PER in split), no sentiment; r3 = sentiment
/// pos, no ner. test: one row with both tasks.
fn write_tokenize(dir: &Path) {
    let staging = StagingDir::begin(dir).unwrap();
    let mut dev = DataFrame::new_infer_height(vec![
        Series::new("id".into(), ["r1", "r2", "r3"]).into_column(),
        list(
            "input_ids",
            vec![
                u32s(&[2, 5, 6, 3]),
                u32s(&[2, 7, 3]),
                u32s(&[2, 8, 9, 10, 3]),
            ],
        ),
        list(
            "word_ids",
            vec![
                i32s(&[-1, 0, 1, -1]),
                i32s(&[-1, 0, -1]),
                i32s(&[-1, 0, 0, 1, -1]),
            ],
        ),
        Series::new("n_words".into(), [2u32, 2, 2]).into_column(),
        Series::new("length".into(), [4u32, 3, 5]).into_column(),
        Series::new("y_s".into(), [0i32, -1, 1]).into_column(),
        list(
            "y_ner",
            vec![i32s(&[-100, 0, 2, -100]), i32s(&[-100, 2, -100]), None],
        ),
    ])
    .unwrap();
    write_parquet(&mut dev, &staging.path("dev.parquet")).unwrap();
    let mut test = DataFrame::new_infer_height(vec![
        Series::new("id".into(), ["r4"]).into_column(),
        list("input_ids", vec![u32s(&[2, 11, 3])]),
        list("word_ids", vec![i32s(&[-1, 0, -1])]),
        Series::new("n_words".into(), [1u32]).into_column(),
        Series::new("length".into(), [3u32]).into_column(),
        Series::new("y_s".into(), [1i32]).into_column(),
        list("y_ner", vec![i32s(&[-100, 2, -100])]),
    ])
    .unwrap();
    write_parquet(&mut test, &staging.path("test.parquet")).unwrap();
    mtl_core::fsio::write_json(&staging.path(LabelSet::FILE), &labels()).unwrap();
    let input = InputRef {
        name: "split".into(),
        fingerprint: "fp-split".into(),
    };
    ManifestBuilder::new(Stage::Tokenize, 1, "fp-tok".into(), vec![input])
        .finish(&staging, &BTreeMap::new())
        .unwrap();
    staging.commit().unwrap();
}

fn write_split(dir: &Path) {
    let staging = StagingDir::begin(dir).unwrap();
    let words = |v: &[&str]| Some(Series::new("".into(), v));
    let ca: ListChunked = [words(&["B-PER", "O"]), words(&["O", "B-PER"]), None]
        .into_iter()
        .collect();
    let mut dev = DataFrame::new_infer_height(vec![
        Series::new("id".into(), ["r1", "r2", "r3"]).into_column(),
        ca.with_name("label_ner".into()).into_column(),
    ])
    .unwrap();
    write_parquet(&mut dev, &staging.path("dev.parquet")).unwrap();
    ManifestBuilder::new(Stage::Split, 1, "fp-split".into(), vec![])
        .finish(&staging, &BTreeMap::new())
        .unwrap();
    staging.commit().unwrap();
}

fn write_train(dir: &Path, tokenize_fp: &str) {
    let heads = vec![
        HeadSpec::new("ner", TaskKind::Spans, 3),
        HeadSpec::new("s", TaskKind::Classification, 2),
    ];
    common::write_train(
        dir,
        heads,
        7,
        8,
        &labels(),
        &mtl_core::FeatureSet::default(),
        tokenize_fp,
    );
}

struct Fixture {
    _root: tempfile::TempDir,
    run: PathBuf,
    cfg: PipelineConfig,
}

fn fixture() -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("runs/p");
    write_tokenize(&run.join("tokenize"));
    write_split(&run.join("split"));
    write_train(&run.join("train"), "fp-tok");
    let cfg = PipelineConfig::from_toml_str(CONFIG, Path::new("p.toml")).unwrap();
    Fixture {
        _root: root,
        run,
        cfg,
    }
}

fn go(f: &Fixture, force: bool) -> mtl_eval::Result<Outcome> {
    run(
        &f.cfg,
        &f.run.join("tokenize"),
        &f.run.join("train"),
        &f.run.join("eval"),
        force,
    )
}

#[test]
fn scores_every_task_and_split_with_baselines() {
    let f = fixture();
    let outcome = go(&f, false).unwrap();
    assert!(matches!(outcome, Outcome::Ran(_)));
    let m = outcome.manifest();
    assert_eq!(
        m.inputs.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
        ["tokenize", "train"]
    );
    assert_eq!((m.rows["dev"], m.rows["test"]), (3, 1));
    assert!(m.outputs.contains_key("metrics.json") && m.outputs.contains_key("report.md"));

    let metrics = Metrics::read(&f.run.join("eval")).unwrap();
    assert_eq!(metrics.pipeline, "p");
    assert_eq!(metrics.headline_split, "dev");
    assert_eq!(metrics.splits, ["dev", "test"]);

    let s = &metrics.tasks["s"];
    assert_eq!(
        (s.kind, s.metric.as_str()),
        (TaskKind::Classification, "macro_f1")
    );
    let dev = &s.splits["dev"];
    // Rows r1 (neg) and r3 (pos) carry the task. Baseline (train majority
    // pos): neg F1 0, pos P=1/2 R=1 F1=2/3 -> macro 1/3.
    assert_eq!(dev.n, 2);
    assert!((dev.baseline - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        (s.score, s.baseline),
        (dev.score, dev.baseline),
        "task level = headline split"
    );
    let TaskDetail::Classification(c) = &dev.metrics else {
        panic!("{dev:?}")
    };
    assert_eq!(c.confusion.iter().flatten().sum::<u64>(), 2);
    assert_eq!(c.per_class.iter().map(|k| k.predicted).sum::<u64>(), 2);
    assert!((0.0..=1.0).contains(&dev.score));
    assert_eq!(s.splits["test"].n, 1);

    let ner = &metrics.tasks["ner"];
    assert_eq!(ner.metric, "entity_f1");
    let dev = &ner.splits["dev"];
    assert_eq!(dev.n, 2);
    assert_eq!(dev.baseline, 0.0, "majority O finds no entity");
    let TaskDetail::Spans(sp) = &dev.metrics else {
        panic!("{dev:?}")
    };
    // r1: B-PER O; r2: O + the truncated B-PER read back from split.
    assert_eq!(sp.entities.gold_entities, 2);
    assert_eq!((sp.words.truncated_words, sp.words.unscored_words), (1, 0));
    assert_eq!(sp.words.words.n_words, 4);
    assert!(
        sp.words.words.correct_words <= 3,
        "the truncated B-PER is predicted O"
    );

    let report = std::fs::read_to_string(f.run.join("eval/report.md")).unwrap();
    assert!(
        report.contains("| task | kind | metric | dev | test | baseline (dev) |"),
        "{report}"
    );
    let table = mtl_eval::render_table(&metrics);
    assert_eq!(table.lines().count(), 4, "{table}");
}

#[test]
fn second_run_is_cached_and_force_reruns() {
    let f = fixture();
    go(&f, false).unwrap();
    assert!(matches!(go(&f, false).unwrap(), Outcome::Cached(_)));
    // Without the split folder, truncated words cannot be scored.
    std::fs::remove_dir_all(f.run.join("split")).unwrap();
    assert!(matches!(go(&f, true).unwrap(), Outcome::Ran(_)));
    let metrics = Metrics::read(&f.run.join("eval")).unwrap();
    let TaskDetail::Spans(sp) = &metrics.tasks["ner"].splits["dev"].metrics else {
        panic!()
    };
    assert_eq!((sp.words.truncated_words, sp.words.unscored_words), (1, 1));
    assert_eq!(sp.entities.gold_entities, 1);
}

#[test]
fn model_trained_on_other_data_is_refused() {
    let f = fixture();
    write_train(&f.run.join("train"), "fp-something-else");
    let err = go(&f, false).unwrap_err().to_string();
    assert!(
        err.contains("mtl-train") && err.contains("different tokenize output"),
        "{err}"
    );
    assert!(!f.run.join("eval").exists());
}

#[test]
fn missing_split_table_names_the_file() {
    let f = fixture();
    std::fs::remove_file(f.run.join("tokenize/test.parquet")).unwrap();
    let err = go(&f, false).unwrap_err().to_string();
    assert!(err.contains("test.parquet"), "{err}");
    assert!(!f.run.join("eval").exists(), "nothing half-written");
}

#[test]
fn configured_headline_with_interval_and_html_report() {
    let mut f = fixture();
    f.cfg.tasks[0].metric = Some(HeadlineMetric::F1Of {
        f1_of: vec!["pos".into()],
    });
    std::fs::write(
        f.run.join("train/log.jsonl"),
        "{\"step\":0,\"loss\":2.0,\"tasks\":{\"s\":0.7,\"ner\":1.3}}\n\
         {\"step\":1,\"loss\":1.5,\"task\":\"s\",\"tasks\":{\"s\":0.5},\"future\":{}}\n\
         not json\n\
         {\"step\":2,\"dev_score\":{\"s\":0.5,\"ner\":0.25},\"train_loss\":1.7}\n",
    )
    .unwrap();
    std::fs::write(
        f.run.join("baselines.json"),
        r#"{"tasks": {"s": {"metric": "f1_of(pos)", "split": "dev", "score": 0.4, "ci": [0.2, 0.6]},
            "ner": {"metric": "accuracy", "score": 0.9}}}"#,
    )
    .unwrap();
    let outcome = go(&f, false).unwrap();
    let names: Vec<&str> = outcome
        .manifest()
        .inputs
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["tokenize", "train", "baselines"]);
    assert!(outcome.manifest().outputs.contains_key("report.html"));

    let metrics = Metrics::read(&f.run.join("eval")).unwrap();
    let s = &metrics.tasks["s"];
    assert_eq!(s.metric, "f1_of(pos)");
    let dev = &s.splits["dev"];
    let TaskDetail::Classification(c) = &dev.metrics else {
        panic!("{dev:?}")
    };
    assert_eq!(dev.score, c.per_class[1].f1, "the headline is F1 of pos");
    let [lo, hi] = dev.ci.expect("an interval");
    assert!(0.0 <= lo && lo <= hi && hi <= 1.0, "{lo} {hi}");
    assert_eq!(s.ci, dev.ci);
    assert!(metrics.tasks["ner"].splits["test"].ci.is_some());
    assert_eq!(metrics.bootstrap.as_ref().unwrap().resamples, 1000);

    let table = mtl_eval::render_table(&metrics);
    assert!(table.contains(&format!("[{lo:.3}, {hi:.3}]")), "{table}");
    let md = std::fs::read_to_string(f.run.join("eval/report.md")).unwrap();
    assert!(
        md.contains("f1_of(pos)") && md.contains("bootstrap"),
        "{md}"
    );

    let html = std::fs::read_to_string(f.run.join("eval/report.html")).unwrap();
    let svgs = html.matches("<svg").count();
    assert!(
        html.contains(&format!("<meta name=\"mtl-charts\" content=\"{svgs}\">")),
        "{svgs} charts"
    );
    // Scores, two tasks' curves, one confusion matrix, two distributions.
    assert_eq!(svgs, 6, "{html}");
    assert_eq!(html.matches("data-chart=\"curve\"").count(), 2);
    assert_eq!(html.matches("data-chart=\"confusion\"").count(), 1);
    assert!(html.contains("single-task") && html.contains("0.400 [0.200, 0.600]"));
    assert!(html.contains("1 line(s) of the training log were not JSON"));
    assert!(
        html.contains("single-task score is accuracy, not entity_f1"),
        "an unlike single-task score is flagged, not compared"
    );
    assert!(
        !html.contains("http://") || !html.contains("src="),
        "no external resource"
    );
    assert!(!html.contains("<script"));
    assert!(!html.contains("NaN"));

    // The baselines file is an input: changing it re-runs eval.
    assert!(matches!(go(&f, false).unwrap(), Outcome::Cached(_)));
    std::fs::write(f.run.join("baselines.json"), r#"{"tasks": {}}"#).unwrap();
    assert!(matches!(go(&f, false).unwrap(), Outcome::Ran(_)));
}

#[test]
fn unknown_metric_or_label_is_a_config_error() {
    let mut f = fixture();
    f.cfg.tasks[0].metric = Some(HeadlineMetric::Named("f2".into()));
    let err = go(&f, false).unwrap_err().to_string();
    assert!(
        err.contains("tasks[0].metric") && err.contains("f2"),
        "{err}"
    );
    f.cfg.tasks[0].metric = Some(HeadlineMetric::F1Of {
        f1_of: vec!["ironic".into()],
    });
    let err = go(&f, false).unwrap_err().to_string();
    assert!(
        err.contains("tasks[0].metric") && err.contains("ironic"),
        "{err}"
    );
    f.cfg.tasks[0].metric = None;
    f.cfg.tasks[1].metric = Some(HeadlineMetric::F1Of {
        f1_of: vec!["B-PER".into()],
    });
    let err = go(&f, false).unwrap_err().to_string();
    assert!(
        err.contains("tasks[1].metric") && err.contains("f1_of"),
        "{err}"
    );
    assert!(!f.run.join("eval").exists());
}
