//! The train stage end to end on a hand-made tokenize folder with a
//! classification task that takes a side input, a multilabel task and a
//! regression task learned from a side input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use mtl_core::artifact::{self, NO_LABEL, col};
use mtl_core::features::{FeatureStats, TaskFeatures};
use mtl_core::task::TargetStats;
use mtl_core::{
    FeatureSet, LabelSet, ManifestBuilder, Outcome, PipelineConfig, Stage, StagingDir, TaskKind,
    TaskLabels,
};
use mtl_model::{Batch, Bundle, TaskOutput};
use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CONFIG: &str = r#"
[pipeline]
name = "t"
seed = 3
[[datasets]]
name = "d"
format = "jsonl"
files = { all = "d.jsonl" }
[[tasks]]
name = "sent"
dataset = "d"
column = "a"
type = "classification"
[[tasks]]
name = "topics"
dataset = "d"
column = "b"
type = "multilabel"
[[tasks]]
name = "score"
dataset = "d"
column = "c"
type = "regression"
weight = 2.0
[model]
embedding_dim = 16
hidden_dim = 16
dropout = 0.0
[train]
epochs = 30
batch_size = 16
learning_rate = 0.01
"#;

struct Row {
    ids: Vec<u32>,
    n_words: f32,
    upper: f32,
    sent: i32,
    topics: Option<Vec<i32>>,
    score: Option<f32>,
}

/// `sent`: does token 5 occur; `topics`: which of tokens 3 and 4 occur;
/// `score` = 2 + 4 · upper_ratio, learnable only from the side input.
fn rows(n: usize, seed: u64) -> Vec<Row> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let len = rng.random_range(3..8);
            let ids: Vec<u32> = (0..len).map(|_| rng.random_range(3..12)).collect();
            let upper: f32 = rng.random_range(0.0..1.0);
            let topics = (0..2).filter(|t| ids.contains(&(*t as u32 + 3))).collect();
            Row {
                n_words: len as f32,
                upper,
                sent: if i % 5 == 4 {
                    NO_LABEL
                } else {
                    i32::from(ids.contains(&5))
                },
                topics: (i % 7 != 6).then_some(topics),
                score: (i % 6 != 5).then_some(2.0 + 4.0 * upper),
                ids,
            }
        })
        .collect()
}

fn write_table(path: &Path, rows: &[Row]) {
    let n = rows.len();
    let mut input_ids = ListPrimitiveChunkedBuilder::<UInt32Type>::new(
        col::INPUT_IDS.into(),
        n,
        64,
        DataType::UInt32,
    );
    let mut word_ids =
        ListPrimitiveChunkedBuilder::<Int32Type>::new(col::WORD_IDS.into(), n, 64, DataType::Int32);
    let mut topics = ListPrimitiveChunkedBuilder::<Int32Type>::new(
        col::target("topics").into(),
        n,
        64,
        DataType::Int32,
    );
    for r in rows {
        input_ids.append_slice(&r.ids);
        word_ids.append_slice(&(0..r.ids.len() as i32).collect::<Vec<_>>());
        match &r.topics {
            Some(t) => topics.append_slice(t),
            None => topics.append_null(),
        }
    }
    let mut df = DataFrame::new(
        n,
        vec![
            Column::new(
                col::ID.into(),
                (0..n).map(|i| format!("r{i}")).collect::<Vec<_>>(),
            ),
            input_ids.finish().into_column(),
            word_ids.finish().into_column(),
            Column::new(
                col::N_WORDS.into(),
                rows.iter().map(|r| r.ids.len() as u32).collect::<Vec<_>>(),
            ),
            Column::new(
                col::LENGTH.into(),
                rows.iter().map(|r| r.ids.len() as u32).collect::<Vec<_>>(),
            ),
            Column::new(
                col::feature("n_words").into(),
                rows.iter().map(|r| r.n_words).collect::<Vec<_>>(),
            ),
            Column::new(
                col::feature("upper_ratio").into(),
                rows.iter().map(|r| r.upper).collect::<Vec<_>>(),
            ),
            Column::new(
                col::target("score").into(),
                rows.iter().map(|r| r.score).collect::<Vec<_>>(),
            ),
            Column::new(
                col::target("sent").into(),
                rows.iter().map(|r| r.sent).collect::<Vec<_>>(),
            ),
            topics.finish().into_column(),
        ],
    )
    .unwrap();
    artifact::write_parquet(&mut df, path).unwrap();
}

fn labels(train: &[Row]) -> LabelSet {
    let scores: Vec<f64> = train
        .iter()
        .filter_map(|r| r.score.map(f64::from))
        .collect();
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let std = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / scores.len() as f64).sqrt();
    let label = |kind, labels: &[&str], class_weights, target| TaskLabels {
        kind,
        scheme: None,
        labels: labels.iter().map(|s| s.to_string()).collect(),
        train_counts: vec![1; labels.len()],
        class_weights,
        target,
    };
    let mut set = LabelSet::default();
    set.tasks.insert(
        "sent".into(),
        label(
            TaskKind::Classification,
            &["no5", "has5"],
            Some(vec![1.0, 1.5]),
            None,
        ),
    );
    set.tasks.insert(
        "topics".into(),
        label(TaskKind::Multilabel, &["three", "four"], None, None),
    );
    set.tasks.insert(
        "score".into(),
        label(
            TaskKind::Regression,
            &[],
            None,
            Some(TargetStats {
                count: scores.len() as u64,
                mean,
                std,
                min: 2.0,
                max: 6.0,
            }),
        ),
    );
    set
}

fn features() -> FeatureSet {
    let mut set = FeatureSet::default();
    set.stats.insert(
        "n_words".into(),
        FeatureStats {
            mean: 5.0,
            std: 1.4,
        },
    );
    set.stats.insert(
        "upper_ratio".into(),
        FeatureStats {
            mean: 0.5,
            std: 0.29,
        },
    );
    let sel = |f: &[&str]| TaskFeatures {
        ranking: vec![],
        selected: f.iter().map(|s| s.to_string()).collect(),
    };
    set.tasks.insert("sent".into(), sel(&["n_words"]));
    set.tasks.insert("topics".into(), sel(&[]));
    set.tasks
        .insert("score".into(), sel(&["upper_ratio", "n_words"]));
    set
}

fn write_tokenize(dir: &Path, labels: &LabelSet, features: Option<&FeatureSet>) {
    let staging = StagingDir::begin(dir).unwrap();
    let train = rows(160, 1);
    write_table(&staging.path("train.parquet"), &train);
    write_table(&staging.path("dev.parquet"), &rows(48, 2));
    write_table(&staging.path("test.parquet"), &[]);
    mtl_core::fsio::write_json(&staging.path(LabelSet::FILE), labels).unwrap();
    if let Some(f) = features {
        mtl_core::fsio::write_json(&staging.path(FeatureSet::FILE), f).unwrap();
    }
    let vocab: serde_json::Map<String, serde_json::Value> =
        (0..12).map(|i| (format!("t{i}"), i.into())).collect();
    mtl_core::fsio::write_json(
        &staging.path("tokenizer.json"),
        &serde_json::json!({"model": {"vocab": vocab}}),
    )
    .unwrap();
    ManifestBuilder::new(Stage::Tokenize, 1, "tok-fp".into(), vec![])
        .finish(&staging, &BTreeMap::new())
        .unwrap();
    staging.commit().unwrap();
}

fn config() -> PipelineConfig {
    PipelineConfig::from_toml_str(CONFIG, Path::new("t.toml")).unwrap()
}

fn setup(labels: LabelSet, features: Option<&FeatureSet>) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let tok = root.path().join("tokenize");
    write_tokenize(&tok, &labels, features);
    let out = root.path().join("train");
    (root, tok, out)
}

#[test]
fn trains_new_kinds_with_side_inputs_and_writes_a_bundle_that_predicts_them() {
    let (_root, tok, out) = setup(labels(&rows(160, 1)), Some(&features()));
    let outcome = mtl_train::run(&config(), &tok, &out, false).unwrap();
    assert!(matches!(outcome, Outcome::Ran(_)), "{}", outcome.summary());

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let best = &report["best_dev_score"];
    assert_eq!(report["dev_metric"]["topics"], "micro_f1");
    assert_eq!(report["dev_metric"]["score"], "pearson");
    assert_eq!(report["dev_metric"]["sent"], "macro_f1");
    assert!(best["score"].as_f64().unwrap() > 0.9, "{report}");
    assert!(best["topics"].as_f64().unwrap() > 0.85, "{report}");
    assert!(best["sent"].as_f64().unwrap() > 0.9, "{report}");
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let first: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l.get("lr").is_some())
        .unwrap();
    for task in ["sent", "topics", "score"] {
        assert!(log.contains(&format!("\"{task}\"")), "{task} never trained");
    }
    assert!(first["loss"].as_f64().unwrap().is_finite());

    // The bundle carries features.json and predicts every kind.
    let model = out.join("model");
    assert_eq!(
        FeatureSet::read(&model.join("features.json")).unwrap(),
        features()
    );
    let bundle = Bundle::load(&model, &Device::Cpu).unwrap();
    assert_eq!(bundle.features, features());
    let score = bundle.spec.head("score").unwrap();
    assert_eq!(score.features, ["upper_ratio", "n_words"]);
    assert_eq!(score.num_labels, 0);
    assert!(score.target.is_some());
    assert_eq!(bundle.spec.head("sent").unwrap().features, ["n_words"]);
    assert!(bundle.spec.head("topics").unwrap().features.is_empty());

    let raw = |upper: f32| {
        BTreeMap::from([
            ("n_words".to_string(), 4.0f32),
            ("upper_ratio".to_string(), upper),
        ])
    };
    let batch = Batch::pad(&[&[3, 6, 7, 8], &[4, 3, 9, 10]], &Device::Cpu)
        .unwrap()
        .with_features(&bundle.features, &[raw(0.1), raw(0.9)])
        .unwrap();
    let out = bundle.predict(&batch).unwrap();
    let TaskOutput::Regression { value } = &out["score"] else {
        panic!("{:?}", out["score"]);
    };
    // Targets 2.4 and 5.6, in target units.
    assert!(
        (value[0] - 2.4).abs() < 1.0 && (value[1] - 5.6).abs() < 1.0,
        "{value:?}"
    );
    let TaskOutput::Multilabel { probs, labels } = &out["topics"] else {
        panic!("{:?}", out["topics"]);
    };
    assert_eq!(probs.len(), 2);
    assert_eq!(probs[0].len(), 2);
    assert!(
        labels[0].contains(&0) && labels[1] == [0, 1],
        "{labels:?} {probs:?}"
    );
    assert!(matches!(out["sent"], TaskOutput::Sentence { .. }));

    // The multilabel thresholds were tuned on dev, recorded in the report
    // and stored in the bundle; tuning never lowers a label's dev F1.
    let tuned = &report["thresholds"]["topics"];
    assert!(tuned["dev_rows"].as_u64().unwrap() > 0, "{tuned}");
    let names = &bundle.labels.get("topics").unwrap().labels;
    let stored = &bundle.thresholds.0["topics"];
    assert_eq!(stored.len(), names.len());
    for (name, t) in names.iter().zip(stored) {
        assert_eq!(tuned["thresholds"][name].as_f64().unwrap() as f32, *t);
        assert!((0.05..=0.95).contains(t), "{t}");
    }
    let f1 = |when: &str, which: &str| tuned[when][which].as_f64().unwrap();
    assert!(
        f1("dev_after", "macro_f1") >= f1("dev_before", "macro_f1"),
        "{tuned}"
    );
    assert!(bundle.dir.join("thresholds.json").is_file());

    // Unchanged input: cached.
    let train_dir = bundle.dir.parent().unwrap().to_path_buf();
    let again = mtl_train::run(&config(), &tok, &train_dir, false).unwrap();
    assert!(matches!(again, Outcome::Cached(_)));
}

#[test]
fn without_features_json_no_head_takes_side_inputs() {
    let (_root, tok, out) = setup(labels(&rows(160, 1)), None);
    let mut cfg = config();
    cfg.train.max_steps = Some(3);
    mtl_train::run(&cfg, &tok, &out, false).unwrap();
    let bundle = Bundle::load(&out.join("model"), &Device::Cpu).unwrap();
    assert!(bundle.spec.tasks.iter().all(|h| h.features.is_empty()));
    assert_eq!(bundle.features, FeatureSet::default());
    let batch = Batch::pad(&[&[3, 6, 7]], &Device::Cpu).unwrap();
    assert_eq!(bundle.predict(&batch).unwrap().len(), 3);
}

#[test]
fn without_threshold_tuning_the_bundle_keeps_one_half() {
    let (_root, tok, out) = setup(labels(&rows(160, 1)), Some(&features()));
    let mut cfg = config();
    cfg.train.max_steps = Some(3);
    cfg.train.tune_thresholds = false;
    mtl_train::run(&cfg, &tok, &out, false).unwrap();
    let bundle = Bundle::load(&out.join("model"), &Device::Cpu).unwrap();
    assert!(bundle.thresholds.is_empty());
    assert!(!bundle.dir.join("thresholds.json").exists());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["thresholds"], serde_json::json!({}));
}

#[test]
fn features_of_tasks_outside_the_model_are_neither_read_nor_bundled() {
    let mut f = features();
    f.tasks.insert(
        "ghost".into(),
        TaskFeatures {
            ranking: vec![],
            selected: vec!["digit_ratio".into()],
        },
    );
    let (_root, tok, out) = setup(labels(&rows(160, 1)), Some(&f));
    let mut cfg = config();
    cfg.train.max_steps = Some(3);
    // The tables have no feat_digit_ratio column: it must not be read.
    mtl_train::run(&cfg, &tok, &out, false).unwrap();
    let bundle = Bundle::load(&out.join("model"), &Device::Cpu).unwrap();
    assert!(bundle.features.selected("ghost").is_empty());
    assert_eq!(
        bundle.features.selected("score"),
        ["upper_ratio", "n_words"]
    );
}

#[test]
fn bad_label_metadata_is_a_clear_error() {
    let mut l = labels(&rows(160, 1));
    l.tasks.get_mut("score").unwrap().target = None;
    let (_root, tok, out) = setup(l, Some(&features()));
    let err = mtl_train::run(&config(), &tok, &out, false)
        .unwrap_err()
        .to_string();
    for part in ["labels.json", "`score`", "target"] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }

    let mut l = labels(&rows(160, 1));
    l.tasks.get_mut("sent").unwrap().class_weights = Some(vec![1.0]);
    let (_root, tok, out) = setup(l, Some(&features()));
    let err = mtl_train::run(&config(), &tok, &out, false)
        .unwrap_err()
        .to_string();
    for part in ["labels.json", "`sent`", "1 weights for 2 labels"] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }
}

/// The real binary, killed with SIGKILL after its first checkpoint and run
/// again with `--resume`, ends with the same weights, bit for bit, as a run
/// that was never interrupted.
#[test]
fn a_killed_run_resumes_from_its_checkpoint_to_the_same_weights() {
    let (root, tok, _) = setup(labels(&rows(160, 1)), Some(&features()));
    let config = root.path().join("t.toml");
    std::fs::write(
        &config,
        CONFIG.replace("epochs = 30", "epochs = 12").replace(
            "[train]\n",
            "[train]\neval_every = 4\nweighting = \"dwa\"\nsampling = \"annealed\"\n",
        ),
    )
    .unwrap();
    let train = |out: &Path, resume: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mtl-train"));
        cmd.arg("--config")
            .arg(&config)
            .arg("--input")
            .arg(&tok)
            .arg("--out")
            .arg(out)
            .arg("--quiet")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        if resume {
            cmd.arg("--resume");
        }
        cmd
    };
    let whole = root.path().join("whole");
    let done = train(&whole, false).output().unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );

    let out = root.path().join("train");
    let checkpoint = root.path().join("train.checkpoint");
    let mut child = train(&out, false).spawn().unwrap();
    let started = std::time::Instant::now();
    while !checkpoint.join("state.json").exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first checkpoint"
        );
        assert!(started.elapsed().as_secs() < 60, "no checkpoint after 60 s");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run finished before it could be killed: make it longer"
    );
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(!out.join("manifest.json").exists());

    // The checkpoint's bundle is complete on its own.
    let bundle = Bundle::load(&checkpoint.join("model"), &Device::Cpu).unwrap();
    let batch = Batch::pad(&[&[3, 6, 7]], &Device::Cpu)
        .unwrap()
        .with_features(
            &bundle.features,
            &[BTreeMap::from([
                ("n_words".to_string(), 3.0f32),
                ("upper_ratio".to_string(), 0.5),
            ])],
        )
        .unwrap();
    assert_eq!(bundle.predict(&batch).unwrap().len(), 3);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(checkpoint.join("state.json")).unwrap())
            .unwrap();
    let at = state["counters"]["step"].as_u64().unwrap();
    assert!(at > 0, "{at}");
    assert_eq!(at % 4, 0, "checkpoints come at evaluations");

    let resumed = train(&out, true).output().unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert!(
        !checkpoint.exists(),
        "a completed run removes its checkpoint"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let from = report["resumed_from_step"].as_u64().unwrap();
    assert!(from >= at, "{report}");
    let weights = |dir: &Path| std::fs::read(dir.join("model/model.safetensors")).unwrap();
    assert!(weights(&out) == weights(&whole), "resumed weights differ");
    let whole_report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(whole.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["best_dev_score"], whole_report["best_dev_score"]);
    assert_eq!(report["steps"], whole_report["steps"]);
    // Every step is logged exactly once across the two sessions.
    let steps: Vec<u64> = std::fs::read_to_string(out.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l.get("lr").is_some())
        .map(|l| l["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (0..steps.len() as u64).collect::<Vec<_>>());
    assert_eq!(steps.len() as u64, report["steps"].as_u64().unwrap());
}
