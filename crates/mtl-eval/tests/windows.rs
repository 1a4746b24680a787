//! A windowed tokenize table (`truncation = "window"`): eval merges the
//! windows of each example and scores it once.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Device;
use mtl_core::artifact::write_parquet;
use mtl_core::{
    LabelSet, ManifestBuilder, PipelineConfig, Stage, StagingDir, TaskKind, TaskLabels,
};
use mtl_eval::report::TaskDetail;
use mtl_eval::{Metrics, RowPreds, predict_table, run};
use mtl_model::{Bundle, HeadSpec};
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
name = "pos"
dataset = "d"
column = "tags"
type = "tagging"

[tokenize]
truncation = "window"
stride = 1
max_length = 6
pad_to = 8

[eval]
splits = ["dev"]
batch_size = 2
"#;

fn labels() -> LabelSet {
    let mut set = LabelSet::default();
    let mut add = |name: &str, kind, labels: &[&str]| {
        set.tasks.insert(
            name.into(),
            TaskLabels {
                kind,
                scheme: None,
                labels: labels.iter().map(|s| s.to_string()).collect(),
                train_counts: vec![3; labels.len()],
                class_weights: None,
                target: None,
            },
        );
    };
    add("s", TaskKind::Classification, &["neg", "pos"]);
    add("pos", TaskKind::Tagging, &["A", "B", "C"]);
    set
}

fn list(name: &str, rows: Vec<Option<Vec<i32>>>) -> Column {
    let ca: ListChunked = rows
        .into_iter()
        .map(|r| r.map(|v| Series::new("".into(), v)))
        .collect();
    ca.with_name(name.into()).into_column()
}

/// Example "a" (5 words) in two windows sharing words 2 and 3 (the first
/// scores 2, the second 3), written second window first; "b" (2 words) in
/// one window without the tagging task.
fn write_tokenize(dir: &Path) {
    let staging = StagingDir::begin(dir).unwrap();
    let input_ids: Vec<Option<Vec<u32>>> = vec![
        Some(vec![2, 7, 8, 9, 10, 3]),
        Some(vec![2, 11, 12, 3]),
        Some(vec![2, 4, 5, 6, 7, 3]),
    ];
    let word_ids = vec![
        Some(vec![-1, 2, 3, 4, 4, -1]),
        Some(vec![-1, 0, 1, -1]),
        Some(vec![-1, 0, 1, 2, 3, -1]),
    ];
    let ca: ListChunked = input_ids
        .into_iter()
        .map(|r| r.map(|v| Series::new("".into(), v)))
        .collect();
    let mut dev = DataFrame::new_infer_height(vec![
        Series::new("id".into(), ["a", "b", "a"]).into_column(),
        ca.with_name("input_ids".into()).into_column(),
        list("word_ids", word_ids),
        Series::new("n_words".into(), [5u32, 2, 5]).into_column(),
        Series::new("length".into(), [6u32, 4, 6]).into_column(),
        Series::new("window".into(), [1u32, 0, 0]).into_column(),
        Series::new("y_s".into(), [-1i32, 0, 1]).into_column(),
        list(
            "y_pos",
            vec![
                Some(vec![-100, -100, 2, 0, -100, -100]),
                None,
                Some(vec![-100, 0, 1, 2, -100, -100]),
            ],
        ),
    ])
    .unwrap();
    write_parquet(&mut dev, &staging.path("dev.parquet")).unwrap();
    mtl_core::fsio::write_json(&staging.path(LabelSet::FILE), &labels()).unwrap();
    ManifestBuilder::new(Stage::Tokenize, 1, "fp-tok".into(), vec![])
        .finish(&staging, &BTreeMap::new())
        .unwrap();
    staging.commit().unwrap();
}

fn write_train(dir: &Path) {
    let heads = vec![
        HeadSpec::new("pos", TaskKind::Tagging, 3),
        HeadSpec::new("s", TaskKind::Classification, 2),
    ];
    common::write_train(
        dir,
        heads,
        3,
        6,
        &labels(),
        &mtl_core::FeatureSet::default(),
        "fp-tok",
    );
}

#[test]
fn windows_are_merged_and_each_example_is_scored_once() {
    let root = tempfile::tempdir().unwrap();
    let runs = root.path().join("runs/p");
    write_tokenize(&runs.join("tokenize"));
    write_train(&runs.join("train"));
    let cfg = PipelineConfig::from_toml_str(CONFIG, Path::new("p.toml")).unwrap();
    let outcome = run(
        &cfg,
        &runs.join("tokenize"),
        &runs.join("train"),
        &runs.join("eval"),
        false,
    )
    .unwrap();
    let m = outcome.manifest();
    assert_eq!((m.rows["dev"], m.rows["dev_windows"]), (2, 3));

    let metrics = Metrics::read(&runs.join("eval")).unwrap();
    let s = &metrics.tasks["s"].splits["dev"];
    assert_eq!(s.n, 2, "one sentence label per example");
    let pos = &metrics.tasks["pos"].splits["dev"];
    assert_eq!(pos.n, 1, "only example a carries the tagging task");
    let TaskDetail::Tagging(w) = &pos.metrics else {
        panic!("{pos:?}")
    };
    assert_eq!(w.words.n_words, 5, "every word once, none lost");
    assert_eq!((w.truncated_words, w.unscored_words), (0, 0));

    // The score is the merged predictions against the merged gold.
    let bundle = Bundle::load(&runs.join("train/model"), &Device::Cpu).unwrap();
    let table = predict_table(&bundle, &runs.join("tokenize/dev.parquet"), 2, Some(8)).unwrap();
    assert_eq!(table.ids, ["a", "b"]);
    assert_eq!(table.word_ids[0], [0, 1, 2, 3, 4]);
    let RowPreds::Token(p) = &table.tasks["pos"] else {
        panic!()
    };
    let gold = [0, 1, 2, 2, 0];
    let correct = p[0].iter().zip(gold).filter(|(p, g)| **p == *g).count();
    assert_eq!(w.words.correct_words, correct as u64);
}
