//! The stage on a dependency task over a small random-weight parser: the
//! dev detail carries a few parsed sentences with their words from the
//! split stage's table, both reports show them, and without that table the
//! reports say why none is drawn.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtl_core::artifact::write_parquet;
use mtl_core::{
    InputRef, LabelSet, ManifestBuilder, PipelineConfig, Stage, StagingDir, TaskKind, TaskLabels,
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
name = "ud"
format = "conllu"
files = { all = "d.conllu" }

[[tasks]]
name = "deps"
dataset = "ud"
column = "deprel"
type = "dependency"

[eval]
splits = ["dev", "test"]
batch_size = 2
"#;

fn labels() -> LabelSet {
    let mut set = LabelSet::default();
    set.tasks.insert(
        "deps".into(),
        TaskLabels {
            kind: TaskKind::Dependency,
            scheme: None,
            labels: vec!["root".into(), "nsubj".into(), "punct".into()],
            train_counts: vec![5, 5, 5],
            class_weights: None,
            target: None,
        },
    );
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

/// The words of each dev row; every word is one sub-token.
const DEV: [(&str, &[&str]); 3] = [
    ("short", &["Hi", "!"]),
    ("seven", &["a<b", "&", "\"c\"", "d", "e", "f", "g"]),
    ("three", &["x", "y", "z"]),
];

/// A tokenize table of `rows` (id, words): each word on the next, the last
/// on the root (as positions: word k is at position k).
fn tokenize_table(rows: &[(&str, &[&str])]) -> DataFrame {
    let (mut input_ids, mut word_ids, mut heads, mut rels) = (vec![], vec![], vec![], vec![]);
    for (_, words) in rows {
        let n = words.len();
        let mut ids = vec![2u32];
        ids.extend((0..n).map(|w| 4 + (w as u32 % 10)));
        ids.push(3);
        input_ids.push(Some(ids));
        let mut w = vec![-1];
        w.extend(0..n as i32);
        w.push(-1);
        word_ids.push(Some(w));
        let (mut h, mut r) = (vec![-100; n + 2], vec![-100; n + 2]);
        for k in 1..=n {
            let last = k == n;
            h[k] = if last { 0 } else { k as i32 + 1 };
            r[k] = if last { 0 } else { 1 };
        }
        heads.push(Some(h));
        rels.push(Some(r));
    }
    let n: Vec<u32> = rows.iter().map(|(_, w)| w.len() as u32).collect();
    DataFrame::new_infer_height(vec![
        Series::new(
            "id".into(),
            rows.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        )
        .into_column(),
        list("input_ids", input_ids),
        list("word_ids", word_ids),
        Series::new("n_words".into(), n.clone()).into_column(),
        Series::new("length".into(), n.iter().map(|n| n + 2).collect::<Vec<_>>()).into_column(),
        list("y_deps", rels),
        list("h_deps", heads),
    ])
    .unwrap()
}

fn write_tokenize(dir: &Path) {
    let staging = StagingDir::begin(dir).unwrap();
    write_parquet(&mut tokenize_table(&DEV), &staging.path("dev.parquet")).unwrap();
    write_parquet(
        &mut tokenize_table(&[("t1", &["p", "q", "r", "s", "t", "u"])]),
        &staging.path("test.parquet"),
    )
    .unwrap();
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
    let words: ListChunked = DEV
        .iter()
        .map(|(_, w)| Some(Series::new("".into(), *w)))
        .collect();
    let mut dev = DataFrame::new_infer_height(vec![
        Series::new("id".into(), DEV.map(|(id, _)| id)).into_column(),
        words.with_name("words".into()).into_column(),
    ])
    .unwrap();
    write_parquet(&mut dev, &staging.path("dev.parquet")).unwrap();
    ManifestBuilder::new(Stage::Split, 1, "fp-split".into(), vec![])
        .finish(&staging, &BTreeMap::new())
        .unwrap();
    staging.commit().unwrap();
}

struct Fixture {
    _root: tempfile::TempDir,
    run: PathBuf,
    cfg: PipelineConfig,
}

fn fixture(with_split: bool) -> Fixture {
    let root = tempfile::tempdir().unwrap();
    let run = root.path().join("runs/p");
    write_tokenize(&run.join("tokenize"));
    if with_split {
        write_split(&run.join("split"));
    }
    common::write_train(
        &run.join("train"),
        vec![HeadSpec::new("deps", TaskKind::Dependency, 3)],
        5,
        32,
        &labels(),
        &mtl_core::FeatureSet::default(),
        "fp-tok",
    );
    let cfg = PipelineConfig::from_toml_str(CONFIG, Path::new("p.toml")).unwrap();
    Fixture {
        _root: root,
        run,
        cfg,
    }
}

fn go(f: &Fixture) -> (Metrics, String, String) {
    run(
        &f.cfg,
        &f.run.join("tokenize"),
        &f.run.join("train"),
        &f.run.join("eval"),
        true,
    )
    .unwrap();
    let eval = f.run.join("eval");
    (
        Metrics::read(&eval).unwrap(),
        std::fs::read_to_string(eval.join("report.md")).unwrap(),
        std::fs::read_to_string(eval.join("report.html")).unwrap(),
    )
}

fn detail(m: &Metrics, split: &str) -> mtl_eval::report::DependencyDetail {
    match &m.tasks["deps"].splits[split].metrics {
        TaskDetail::Dependency(d) => d.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn dev_sentences_are_drawn_with_their_words_over_their_gold_trees() {
    let f = fixture(true);
    let (metrics, md, html) = go(&f);
    let dev = detail(&metrics, "dev");
    assert_eq!(dev.examples_note, None);
    let ids: Vec<&str> = dev.examples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["seven", "short", "three"], "6-14 words first");
    for s in &dev.examples {
        let words = DEV.iter().find(|(id, _)| *id == s.id).unwrap().1;
        assert_eq!(s.words, words, "words from the split table");
        let n = words.len();
        let gold: Vec<usize> = (1..=n).map(|k| if k == n { 0 } else { k + 1 }).collect();
        assert_eq!(s.gold.heads, gold);
        assert_eq!(s.gold.relations[n - 1], "root");
        // The decoder's output is a tree: one root child, heads in range.
        assert_eq!(s.predicted.heads.iter().filter(|&&h| h == 0).count(), 1);
        assert!(s.predicted.heads.iter().all(|&h| h <= n));
        assert_eq!(s.predicted.relations.len(), n);
    }
    assert!(detail(&metrics, "test").examples.is_empty(), "dev only");

    assert_eq!(html.matches("data-chart=\"parse\"").count(), 3, "{html}");
    let svgs = html.matches("<svg").count();
    assert!(html.contains(&format!("<meta name=\"mtl-charts\" content=\"{svgs}\">")));
    assert!(html.contains("Parsed dev sentences"));
    assert!(html.contains(">a&lt;b</text>") && html.contains(">&amp;</text>"));
    assert!(html.contains(">&quot;c&quot;</text>") && !html.contains("a<b"));
    assert_eq!(html.matches("data-arc=\"gold\"").count(), 12);
    let predicted =
        html.matches("data-arc=\"right\"").count() + html.matches("data-arc=\"wrong\"").count();
    assert_eq!(predicted, 12);
    assert!(!html.contains("<script") && !html.contains("NaN"));

    assert!(md.contains("Sentence `seven`"), "{md}");
    assert!(md.contains("| 1 | a<b | 2 | nsubj |"), "{md}");
}

#[test]
fn without_the_split_table_the_reports_say_why_nothing_is_drawn() {
    let f = fixture(false);
    let (metrics, md, html) = go(&f);
    let dev = detail(&metrics, "dev");
    assert!(dev.examples.is_empty(), "no made-up words");
    let note = dev.examples_note.expect("a note");
    assert!(note.contains("split stage"), "{note}");
    assert!(
        html.contains("No sentence drawn: the words are unknown"),
        "{html}"
    );
    assert_eq!(html.matches("data-chart=\"parse\"").count(), 0);
    let svgs = html.matches("<svg").count();
    assert!(html.contains(&format!("<meta name=\"mtl-charts\" content=\"{svgs}\">")));
    assert!(
        md.contains("No parsed sentence drawn: the words are unknown"),
        "{md}"
    );
    // The scores do not depend on it.
    let with = go(&fixture(true)).0;
    assert_eq!(
        detail(&with, "dev").attachment,
        dev.attachment,
        "same scores either way"
    );
}
