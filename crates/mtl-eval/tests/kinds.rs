//! The stage on multilabel and regression tasks and on heads with side
//! inputs, over a small random-weight model: hand-computed baselines, the
//! detail in metrics.json and report.md, and the side inputs really reaching
//! the model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;
use mtl_core::artifact::write_parquet;
use mtl_core::features::{FeatureStats, TaskFeatures};
use mtl_core::task::TargetStats;
use mtl_core::{
    FeatureSet, LabelSet, ManifestBuilder, PipelineConfig, Stage, StagingDir, TaskKind, TaskLabels,
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
name = "topics"
dataset = "d"
column = "topics"
type = "multilabel"

[[tasks]]
name = "stars"
dataset = "d"
column = "stars"
type = "regression"

[eval]
splits = ["dev"]
batch_size = 3
"#;

fn stars_target() -> TargetStats {
    TargetStats {
        count: 3,
        mean: 2.0,
        std: 1.5,
        min: 0.0,
        max: 5.0,
    }
}

fn labels() -> LabelSet {
    let mut set = LabelSet::default();
    let mut add = |name: &str, kind, labels: &[&str], counts: &[u64]| {
        set.tasks.insert(
            name.into(),
            TaskLabels {
                kind,
                scheme: None,
                labels: labels.iter().map(|s| s.to_string()).collect(),
                train_counts: counts.to_vec(),
                class_weights: None,
                target: (kind == TaskKind::Regression).then(stars_target),
            },
        );
    };
    add("s", TaskKind::Classification, &["neg", "pos"], &[1, 5]);
    // 3 labelled train texts (see write_tokenize): a on 3, b on 1, c on 2.
    add("topics", TaskKind::Multilabel, &["a", "b", "c"], &[3, 1, 2]);
    add("stars", TaskKind::Regression, &[], &[]);
    set
}

fn features() -> FeatureSet {
    let mut set = FeatureSet::default();
    for (f, mean, std) in [("n_words", 3.0, 1.0), ("upper_ratio", 0.1, 0.05)] {
        set.stats.insert(f.into(), FeatureStats { mean, std });
    }
    for (task, sel) in [
        ("s", vec!["n_words"]),
        ("topics", vec!["n_words", "upper_ratio"]),
        ("stars", vec!["upper_ratio"]),
    ] {
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

fn list<T: NumericNative>(name: &str, rows: Vec<Option<Vec<T>>>) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    let ca: ListChunked = rows
        .into_iter()
        .map(|r| r.map(|v| Series::new("".into(), v)))
        .collect();
    ca.with_name(name.into()).into_column()
}

/// A tokenize table; `upper` is the `feat_upper_ratio` of every row.
fn table(
    ids: &[&str],
    topics: Vec<Option<Vec<i32>>>,
    stars: Vec<Option<f32>>,
    s: Vec<i32>,
    upper: &[f32],
) -> DataFrame {
    let n = ids.len();
    let input_ids: Vec<Option<Vec<u32>>> = (0..n)
        .map(|i| Some((0..=i as u32 % 3).map(|k| 4 + k + i as u32).collect()))
        .collect();
    let lens: Vec<u32> = input_ids
        .iter()
        .map(|r| r.as_ref().unwrap().len() as u32)
        .collect();
    let word_ids: Vec<Option<Vec<i32>>> = lens
        .iter()
        .map(|&l| Some((0..l as i32).collect()))
        .collect();
    DataFrame::new_infer_height(vec![
        Series::new("id".into(), ids).into_column(),
        list("input_ids", input_ids),
        list("word_ids", word_ids),
        Series::new("n_words".into(), lens.clone()).into_column(),
        Series::new("length".into(), lens.clone()).into_column(),
        Series::new(
            "feat_n_words".into(),
            lens.iter().map(|&l| l as f32).collect::<Vec<_>>(),
        )
        .into_column(),
        Series::new("feat_upper_ratio".into(), upper).into_column(),
        Series::new("y_s".into(), s).into_column(),
        list("y_topics", topics),
        Series::new("y_stars".into(), stars).into_column(),
    ])
    .unwrap()
}

/// dev: d1 topics {a}, stars 1, neg; d2 {b, c}, 3, pos; d3 no topics, no
/// stars, pos; d4 labelled with no topic, stars 4, no sentiment.
fn dev_table(upper: &[f32]) -> DataFrame {
    table(
        &["d1", "d2", "d3", "d4"],
        vec![Some(vec![0]), Some(vec![1, 2]), None, Some(vec![])],
        vec![Some(1.0), Some(3.0), None, Some(4.0)],
        vec![0, 1, 1, -1],
        upper,
    )
}

const DEV_UPPER: [f32; 4] = [0.0, 0.1, 0.3, 0.05];

fn write_tokenize(dir: &Path) {
    let staging = StagingDir::begin(dir).unwrap();
    let mut train = table(
        &["t1", "t2", "t3", "t4"],
        vec![Some(vec![0]), Some(vec![0, 2]), Some(vec![0, 1, 2]), None],
        vec![Some(1.0), Some(2.0), Some(3.0), None],
        vec![1, 1, 0, 1],
        &[0.1; 4],
    );
    write_parquet(&mut train, &staging.path("train.parquet")).unwrap();
    write_parquet(&mut dev_table(&DEV_UPPER), &staging.path("dev.parquet")).unwrap();
    mtl_core::fsio::write_json(&staging.path(LabelSet::FILE), &labels()).unwrap();
    mtl_core::fsio::write_json(&staging.path(FeatureSet::FILE), &features()).unwrap();
    ManifestBuilder::new(Stage::Tokenize, 1, "fp-tok".into(), vec![])
        .finish(&staging, &BTreeMap::new())
        .unwrap();
    staging.commit().unwrap();
}

fn write_train(dir: &Path) {
    let mut heads = vec![
        HeadSpec::new("s", TaskKind::Classification, 2),
        HeadSpec::new("topics", TaskKind::Multilabel, 3),
        HeadSpec::new("stars", TaskKind::Regression, 0),
    ];
    let set = features();
    for h in &mut heads {
        h.features = set.selected(&h.name).to_vec();
    }
    heads[2].target = Some(stars_target());
    common::write_train(dir, heads, 3, 8, &labels(), &set, "fp-tok");
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
    write_train(&run.join("train"));
    let cfg = PipelineConfig::from_toml_str(CONFIG, Path::new("p.toml")).unwrap();
    Fixture {
        _root: root,
        run,
        cfg,
    }
}

fn go(f: &Fixture) -> mtl_eval::Result<mtl_core::Outcome> {
    run(
        &f.cfg,
        &f.run.join("tokenize"),
        &f.run.join("train"),
        &f.run.join("eval"),
        true,
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn scores_multilabel_regression_and_side_input_heads() {
    let f = fixture();
    go(&f).unwrap();
    let metrics = Metrics::read(&f.run.join("eval")).unwrap();

    let topics = &metrics.tasks["topics"];
    assert_eq!(
        (topics.kind, topics.metric.as_str()),
        (TaskKind::Multilabel, "micro_f1")
    );
    let dev = &topics.splits["dev"];
    assert_eq!(
        dev.n, 3,
        "d3 does not carry topics; d4 carries an empty set"
    );
    // Baseline {a, c} (a on 3 of 3 train texts, c on 2, b on 1):
    // d1 {a}: tp 1 fp 1; d2 {b,c}: tp 1 fp 1 fn 1; d4 {}: fp 2
    // -> P 2/6, R 2/3, micro-F1 4/9.
    assert!(close(dev.baseline, 4.0 / 9.0), "{}", dev.baseline);
    let TaskDetail::Multilabel(ml) = &dev.metrics else {
        panic!("{dev:?}")
    };
    assert_eq!(ml.baseline_labels, ["a", "c"]);
    assert!(close(ml.baseline.subset_accuracy, 0.0));
    assert_eq!(ml.metrics.per_label.len(), 3);
    assert_eq!(
        ml.metrics
            .per_label
            .iter()
            .map(|l| l.support)
            .collect::<Vec<_>>(),
        [1, 1, 1]
    );
    assert!((0.0..=1.0).contains(&dev.score));

    let stars = &metrics.tasks["stars"];
    assert_eq!(stars.metric, "pearson");
    let dev = &stars.splits["dev"];
    assert_eq!(dev.n, 3);
    assert_eq!(dev.baseline, 0.0, "a constant has no correlation");
    let TaskDetail::Regression(r) = &dev.metrics else {
        panic!("{dev:?}")
    };
    // Mean 2 against 1, 3, 4: errors 1, -1, -2 -> MAE 4/3, RMSE sqrt(2).
    assert_eq!(r.baseline_mean, 2.0);
    assert!(close(r.baseline.mae, 4.0 / 3.0));
    assert!(close(r.baseline.rmse, 2f64.sqrt()));
    assert!((-1.0..=1.0).contains(&r.metrics.pearson));
    assert!(r.metrics.rmse > 0.0);

    // Train majority pos on neg, pos, pos: macro-F1 (0 + 0.8) / 2.
    let s = &metrics.tasks["s"].splits["dev"];
    assert_eq!(s.n, 3);
    assert!(close(s.baseline, 0.4));

    let report = std::fs::read_to_string(f.run.join("eval/report.md")).unwrap();
    assert!(
        report.contains("## topics (multilabel, headline `micro_f1`)"),
        "{report}"
    );
    assert!(report.contains("Baseline (always a, c)"), "{report}");
    assert!(report.contains("| baseline (mean 2.000) |"), "{report}");
    assert!(report.contains("hamming loss"), "{report}");
    let table = mtl_eval::render_table(&metrics);
    assert!(
        table.contains("stars") && table.contains("pearson"),
        "{table}"
    );
}

#[test]
fn side_inputs_from_the_table_reach_the_model() {
    let f = fixture();
    let bundle = Bundle::load(&f.run.join("train/model"), &Device::Cpu).unwrap();
    let dev = f.run.join("tokenize/dev.parquet");
    let a = predict_table(&bundle, &dev, 2, None).unwrap();
    assert_eq!(a.ids, ["d1", "d2", "d3", "d4"]);
    // Batching, and padding every batch to a fixed length, do not change
    // the predictions.
    let b = predict_table(&bundle, &dev, 64, Some(10)).unwrap();
    let RowPreds::Regression(va) = &a.tasks["stars"] else {
        panic!("{:?}", a.tasks)
    };
    let RowPreds::Regression(vb) = &b.tasks["stars"] else {
        panic!()
    };
    assert!(va.iter().zip(vb).all(|(x, y)| (x - y).abs() < 1e-4));
    assert!(matches!(a.tasks["topics"], RowPreds::Multilabel(ref v) if v.len() == 4));
    assert!(matches!(a.tasks["s"], RowPreds::Sentence(ref v) if v.len() == 4));

    // Other upper-case ratios, same tokens: the regression head (whose only
    // side input is upper_ratio) must predict something else.
    write_parquet(&mut dev_table(&[5.0, -3.0, 9.0, 0.7]), &dev).unwrap();
    let c = predict_table(&bundle, &dev, 2, None).unwrap();
    let err = predict_table(&bundle, &dev, 2, Some(2)).unwrap_err();
    let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(chain.contains("pad_to = 2"), "{chain}");
    let RowPreds::Regression(vc) = &c.tasks["stars"] else {
        panic!()
    };
    assert!(
        va.iter().zip(vc).all(|(x, y)| (x - y).abs() > 1e-6),
        "{va:?} vs {vc:?}"
    );
}

#[test]
fn a_missing_feature_column_or_train_table_names_the_file() {
    let f = fixture();
    let dev = f.run.join("tokenize/dev.parquet");
    let mut df = dev_table(&DEV_UPPER);
    let _ = df.drop_in_place("feat_upper_ratio").unwrap();
    write_parquet(&mut df, &dev).unwrap();
    let err = go(&f).unwrap_err().to_string();
    assert!(
        err.contains("dev.parquet") && err.contains("feat_upper_ratio"),
        "{err}"
    );

    let f = fixture();
    std::fs::remove_file(f.run.join("tokenize/train.parquet")).unwrap();
    let err = go(&f).unwrap_err().to_string();
    assert!(err.contains("train.parquet"), "{err}");
    assert!(!f.run.join("eval").exists());
}
