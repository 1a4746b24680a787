//! The split stage: assigns every cleaned example to train, dev or test,
//! builds each task's label vocabulary from train only, fuses all datasets
//! into one multi-task table per split, and reports leakage between splits.
//!
//! It never changes text or tokens (that is clean's job) and never looks at
//! a tokenizer. A task's label is null on rows that do not carry the task:
//! that null is the task mask the trainer reads.

mod assign;
mod error;
mod fuse;
mod report;
mod vocab;

use std::collections::BTreeMap;
use std::path::Path;

use mtl_core::artifact::{SPLITS, col, read_parquet, write_parquet};
use mtl_core::manifest::{fingerprint, upstream};
use mtl_core::{
    LabelSet, Manifest, ManifestBuilder, Outcome, PipelineConfig, Stage, StagingDir, TaskKind,
};
use polars::prelude::*;

pub use error::{Error, Result};
use mtl_core::artifact::PolarsAt;
pub use report::SplitReport;

/// Bumped when split's output changes for the same input.
pub const STAGE_VERSION: u32 = 1;

/// Runs the stage from `clean_dir` into `out_dir`.
pub fn run(cfg: &PipelineConfig, clean_dir: &Path, out_dir: &Path, force: bool) -> Result<Outcome> {
    let (_, input) = upstream(clean_dir, Stage::Clean)?;
    let fp = fingerprint(
        Stage::Split,
        STAGE_VERSION,
        cfg,
        std::slice::from_ref(&input),
    );
    if !force && let Some(m) = Manifest::fresh(out_dir, &fp) {
        return Ok(Outcome::Cached(m));
    }
    let mut builder = ManifestBuilder::new(Stage::Split, STAGE_VERSION, fp, vec![input]);

    let mut frames = Vec::new();
    for d in &cfg.datasets {
        let path = clean_dir.join(format!("{}.parquet", d.name));
        let df = read_parquet(&path)?;
        let split = assign_splits(cfg, &df, &path)?;
        frames.push(df.hstack(&[split.into_column()]).at(&path)?);
    }
    let fused_path = clean_dir.join("(fused)");
    let mut fused = fuse::diagonal(frames, cfg).at(&fused_path)?;

    let labels = build_vocabularies(cfg, &fused, &fused_path)?;
    resolve_labels(cfg, &mut fused, &labels, &fused_path)?;

    let report = report::build(cfg, &fused, &labels).at(&fused_path)?;
    let staging = StagingDir::begin(out_dir)?;
    let mut file_rows = BTreeMap::new();
    let split_col = fused
        .column("split")
        .at(&fused_path)?
        .str()
        .at(&fused_path)?
        .clone();
    for split in SPLITS {
        let mask = split_col.equal(split);
        let mut part = fused
            .filter(&mask)
            .at(&fused_path)?
            .drop("split")
            .at(&fused_path)?;
        let name = format!("{split}.parquet");
        write_parquet(&mut part, &staging.path(&name))?;
        file_rows.insert(name, part.height() as u64);
        builder.rows(split, part.height() as u64);
    }
    mtl_core::fsio::write_json(&staging.path(LabelSet::FILE), &labels)?;
    mtl_core::fsio::write_json(&staging.path("report.json"), &report)?;
    let m = builder.finish(&staging, &file_rows)?;
    staging.commit()?;
    Ok(Outcome::Ran(m))
}

/// The dataset's own split where it has one, else by a hash of the row's
/// group (or id) — see [`assign`]. With `split.stratify`, rows of each label
/// are ranked by that hash and cut at the configured ratios, which makes the
/// proportions exact per label at the cost of full stability: adding rows can
/// move rows that sit next to a cut.
fn assign_splits(cfg: &PipelineConfig, df: &DataFrame, path: &Path) -> Result<StringChunked> {
    let ids = df.column(col::ID).at(path)?.str().at(path)?;
    let given = df.column(col::SOURCE_SPLIT).at(path)?.str().at(path)?;
    let groups = df.column(col::GROUP).at(path)?.str().at(path)?;
    let files = df.column(col::SOURCE_FILE).at(path)?.str().at(path)?;
    let lines = df.column(col::SOURCE_LINE).at(path)?.u32().at(path)?;
    let strata = match &cfg.split.stratify {
        Some(task) => match df.column(&col::label(task)) {
            Ok(c) => Some(c.str().at(path)?.clone()),
            Err(_) => None,
        },
        None => None,
    };
    let mut out: Vec<&'static str> = vec!["train"; df.height()];
    // Rows to place by hash, grouped by stratum (None = not stratified).
    let mut pending: BTreeMap<Option<String>, Vec<(f64, usize)>> = BTreeMap::new();
    for (i, slot) in out.iter_mut().enumerate() {
        match given.get(i) {
            Some(s) => {
                *slot =
                    SPLITS
                        .iter()
                        .copied()
                        .find(|&k| k == s)
                        .ok_or_else(|| Error::BadSplit {
                            file: files.get(i).unwrap_or("?").to_string(),
                            line: lines.get(i).unwrap_or(0),
                            split: s.to_string(),
                        })?;
            }
            None => {
                let key = groups.get(i).or(ids.get(i)).unwrap_or("");
                let u = assign::unit_hash(cfg.pipeline.seed, key);
                // Groups must stay whole, so grouped rows are never ranked.
                let stratum = match (&strata, groups.get(i)) {
                    (Some(s), None) => s.get(i).map(str::to_string),
                    _ => None,
                };
                pending.entry(stratum).or_default().push((u, i));
            }
        }
    }
    for (stratum, mut rows) in pending {
        if stratum.is_none() {
            for (u, i) in rows {
                out[i] = assign::split_for(u, &cfg.split);
            }
            continue;
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let n = rows.len();
        for (rank, (_, i)) in rows.into_iter().enumerate() {
            out[i] = assign::split_for((rank as f64 + 0.5) / n as f64, &cfg.split);
        }
    }
    Ok(StringChunked::from_iter_values(
        "split".into(),
        out.into_iter(),
    ))
}

/// Each label of `task` in `df` with its row index, flattening token tasks.
fn task_labels(
    df: &DataFrame,
    kind: TaskKind,
    column: &str,
    path: &Path,
) -> Result<Vec<(usize, String)>> {
    let c = df.column(column).at(path)?;
    let mut out = Vec::new();
    if kind.is_token_level() {
        for (i, row) in c.list().at(path)?.series_iter().enumerate() {
            if let Some(s) = row {
                for l in s.str().at(path)?.iter().flatten() {
                    out.push((i, l.to_string()));
                }
            }
        }
    } else {
        for (i, l) in c.str().at(path)?.iter().enumerate() {
            if let Some(l) = l {
                out.push((i, l.to_string()));
            }
        }
    }
    Ok(out)
}

fn build_vocabularies(cfg: &PipelineConfig, fused: &DataFrame, path: &Path) -> Result<LabelSet> {
    let train = fused
        .filter(
            &fused
                .column("split")
                .at(path)?
                .str()
                .at(path)?
                .equal("train"),
        )
        .at(path)?;
    let mut set = LabelSet::default();
    for t in &cfg.tasks {
        let labels = task_labels(&train, t.kind, &col::label(&t.name), path)?;
        if labels.is_empty() {
            return Err(Error::NoTrainingLabels {
                task: t.name.clone(),
            });
        }
        let v = vocab::build(
            t.kind,
            t.scheme,
            labels.into_iter().map(|(_, l)| l),
            cfg.split.min_label_count,
        );
        set.tasks.insert(t.name.clone(), v);
    }
    Ok(set)
}

/// Applies the unknown-label policy to every split (train included, where
/// labels below `min_label_count` fell out of the vocabulary).
fn resolve_labels(
    cfg: &PipelineConfig,
    fused: &mut DataFrame,
    labels: &LabelSet,
    path: &Path,
) -> Result<()> {
    let files = fused
        .column(col::SOURCE_FILE)
        .at(path)?
        .str()
        .at(path)?
        .clone();
    let lines = fused
        .column(col::SOURCE_LINE)
        .at(path)?
        .u32()
        .at(path)?
        .clone();
    let policy = &cfg.split.unknown_labels;
    for t in &cfg.tasks {
        let vocab = labels.get(&t.name)?;
        let name = col::label(&t.name);
        let fix = |i: usize, l: &str| -> Result<String> {
            match vocab::resolve(vocab, l, policy) {
                vocab::Resolution::Known => Ok(l.to_string()),
                vocab::Resolution::Mapped(to) if vocab.id(to).is_some() => Ok(to.to_string()),
                vocab::Resolution::Mapped(to) => Err(Error::BadFallback {
                    task: t.name.clone(),
                    label: to.to_string(),
                }),
                vocab::Resolution::Unknown => Err(Error::UnknownLabel {
                    file: files.get(i).unwrap_or("?").to_string(),
                    line: lines.get(i).unwrap_or(0),
                    task: t.name.clone(),
                    label: l.to_string(),
                }),
            }
        };
        let column = fused.column(&name).at(path)?.clone();
        let new: Column = if t.kind.is_token_level() {
            let mut rows: Vec<Option<Series>> = Vec::with_capacity(fused.height());
            for (i, row) in column.list().at(path)?.series_iter().enumerate() {
                rows.push(match row {
                    None => None,
                    Some(s) => {
                        let mut fixed = Vec::with_capacity(s.len());
                        for l in s.str().at(path)?.iter() {
                            fixed.push(fix(i, l.unwrap_or(""))?);
                        }
                        Some(Series::new("".into(), fixed))
                    }
                });
            }
            let mut ca: ListChunked = rows.into_iter().collect();
            ca.rename(name.as_str().into());
            ca.cast(&DataType::List(Box::new(DataType::String)))
                .at(path)?
                .into_column()
        } else {
            let mut vals: Vec<Option<String>> = Vec::with_capacity(fused.height());
            for (i, l) in column.str().at(path)?.iter().enumerate() {
                vals.push(l.map(|l| fix(i, l)).transpose()?);
            }
            StringChunked::from_iter_options(name.as_str().into(), vals.into_iter()).into_column()
        };
        fused.replace(&name, new).at(path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::InputRef;

    const CONFIG: &str = r#"
[pipeline]
name = "t"
seed = 3

[[datasets]]
name = "a"
format = "jsonl"
files = { all = "a.jsonl" }

[[datasets]]
name = "b"
format = "jsonl"
files = { train = "b_train.jsonl", dev = "b_dev.jsonl" }

[[tasks]]
name = "sent"
dataset = "a"
column = "sent"
type = "classification"

[[tasks]]
name = "tags"
dataset = "b"
column = "tags"
type = "tagging"
"#;

    fn cfg(extra: &str) -> PipelineConfig {
        PipelineConfig::from_toml_str(&format!("{CONFIG}{extra}"), Path::new("t.toml")).unwrap()
    }

    fn frame(
        dataset: &str,
        n: usize,
        split: Option<&str>,
        label: impl Fn(usize) -> Column,
    ) -> DataFrame {
        let ids: Vec<String> = (0..n).map(|i| format!("{dataset}-{i}")).collect();
        let texts: Vec<String> = (0..n)
            .map(|i| format!("text number {i} of {dataset}"))
            .collect();
        let words: Vec<Series> = texts
            .iter()
            .map(|t| Series::new("".into(), t.split(' ').collect::<Vec<_>>()))
            .collect();
        let mut words: ListChunked = words.into_iter().map(Some).collect();
        words.rename(col::WORDS.into());
        let mut df = DataFrame::new(
            n,
            vec![
                Column::new(col::ID.into(), ids),
                Column::new(col::DATASET.into(), vec![dataset; n]),
                Column::new(col::SOURCE_SPLIT.into(), vec![split; n]),
                Column::new(col::SOURCE_FILE.into(), vec![format!("{dataset}.jsonl"); n]),
                Column::new(col::SOURCE_LINE.into(), (1..=n as u32).collect::<Vec<_>>()),
                Column::full_null(col::GROUP.into(), n, &DataType::String),
                Column::new(col::TEXT.into(), texts),
                words.into_column(),
            ],
        )
        .unwrap();
        df.with_column(label(n)).unwrap();
        df
    }

    /// Dataset `a` (sentence labels, no splits) and dataset `b` (word tags,
    /// its own train/dev files) in a committed clean folder.
    fn clean_dir(root: &Path, a_rows: usize, unknown_in_dev: bool) -> std::path::PathBuf {
        let dir = root.join("clean");
        let staging = StagingDir::begin(&dir).unwrap();
        let mut a = frame("a", a_rows, None, |n| {
            Column::new(
                col::label("sent").into(),
                (0..n).map(|i| ["pos", "neg"][i % 2]).collect::<Vec<_>>(),
            )
        });
        let tags = |n: usize, bad: bool| {
            let rows: Vec<Series> = (0..n)
                .map(|i| {
                    let last = if bad && i == 1 { "ZZZ" } else { "N" };
                    Series::new("".into(), vec!["D", "N", "P", "N", last])
                })
                .collect();
            let mut ca: ListChunked = rows.into_iter().map(Some).collect();
            ca.rename(col::label("tags").into());
            ca.into_column()
        };
        let mut b = frame("b", 6, Some("train"), |n| tags(n, false));
        let b_dev = frame("b", 3, Some("dev"), |n| tags(n, unknown_in_dev));
        b.vstack_mut(&b_dev).unwrap();
        write_parquet(&mut a, &staging.path("a.parquet")).unwrap();
        write_parquet(&mut b, &staging.path("b.parquet")).unwrap();
        let inputs = vec![InputRef {
            name: "raw".into(),
            fingerprint: format!("{a_rows}"),
        }];
        ManifestBuilder::new(
            Stage::Clean,
            1,
            format!("clean-{a_rows}-{unknown_in_dev}"),
            inputs,
        )
        .finish(&staging, &BTreeMap::new())
        .unwrap();
        staging.commit().unwrap()
    }

    #[test]
    fn fuses_datasets_with_task_masks_and_builds_vocabularies() {
        let root = tempfile::tempdir().unwrap();
        let clean = clean_dir(root.path(), 200, false);
        let out = root.path().join("split");
        let outcome = run(&cfg(""), &clean, &out, false).unwrap();
        assert!(matches!(outcome, Outcome::Ran(_)));
        let labels = LabelSet::read(&out.join("labels.json")).unwrap();
        assert_eq!(labels.get("sent").unwrap().labels, vec!["neg", "pos"]);
        assert_eq!(labels.get("tags").unwrap().labels, vec!["D", "N", "P"]);

        let train = read_parquet(&out.join("train.parquet")).unwrap();
        let sent = train
            .column(&col::label("sent"))
            .unwrap()
            .str()
            .unwrap()
            .clone();
        let tags = train
            .column(&col::label("tags"))
            .unwrap()
            .list()
            .unwrap()
            .clone();
        let dataset = train.column(col::DATASET).unwrap().str().unwrap().clone();
        for i in 0..train.height() {
            // Each row carries exactly the task of its own dataset.
            match dataset.get(i) {
                Some("a") => assert!(sent.get(i).is_some() && tags.get_as_series(i).is_none()),
                Some("b") => assert!(sent.get(i).is_none() && tags.get_as_series(i).is_some()),
                other => panic!("unexpected dataset {other:?}"),
            }
        }
        // b's own splits are kept: 6 train rows, 3 dev rows, no test rows.
        let count = |df: &DataFrame, d: &str| {
            df.column(col::DATASET)
                .unwrap()
                .str()
                .unwrap()
                .equal(d)
                .sum()
                .unwrap_or(0)
        };
        let dev = read_parquet(&out.join("dev.parquet")).unwrap();
        let test = read_parquet(&out.join("test.parquet")).unwrap();
        assert_eq!(
            (count(&train, "b"), count(&dev, "b"), count(&test, "b")),
            (6, 3, 0)
        );
        assert_eq!(
            count(&train, "a") + count(&dev, "a") + count(&test, "a"),
            200
        );

        assert!(matches!(
            run(&cfg(""), &clean, &out, false).unwrap(),
            Outcome::Cached(_)
        ));
    }

    #[test]
    fn same_input_gives_identical_bytes() {
        let root = tempfile::tempdir().unwrap();
        let clean = clean_dir(root.path(), 50, false);
        let (o1, o2) = (root.path().join("s1"), root.path().join("s2"));
        run(&cfg(""), &clean, &o1, false).unwrap();
        run(&cfg(""), &clean, &o2, false).unwrap();
        for f in [
            "train.parquet",
            "dev.parquet",
            "test.parquet",
            "labels.json",
            "report.json",
        ] {
            assert_eq!(
                std::fs::read(o1.join(f)).unwrap(),
                std::fs::read(o2.join(f)).unwrap(),
                "{f}"
            );
        }
    }

    #[test]
    fn adding_rows_moves_no_existing_row() {
        let root = tempfile::tempdir().unwrap();
        let splits_of = |dir: &Path| -> BTreeMap<String, String> {
            let mut m = BTreeMap::new();
            for s in SPLITS {
                let df = read_parquet(&dir.join(format!("{s}.parquet"))).unwrap();
                for id in df.column(col::ID).unwrap().str().unwrap().iter().flatten() {
                    m.insert(id.to_string(), s.to_string());
                }
            }
            m
        };
        let small = clean_dir(&root.path().join("small"), 100, false);
        let big = clean_dir(&root.path().join("big"), 300, false);
        run(&cfg(""), &small, &root.path().join("o_small"), false).unwrap();
        run(&cfg(""), &big, &root.path().join("o_big"), false).unwrap();
        let (a, b) = (
            splits_of(&root.path().join("o_small")),
            splits_of(&root.path().join("o_big")),
        );
        for (id, split) in &a {
            assert_eq!(b.get(id), Some(split), "{id} moved");
        }
    }

    #[test]
    fn stratified_split_keeps_label_proportions() {
        let root = tempfile::tempdir().unwrap();
        let clean = clean_dir(root.path(), 400, false);
        let out = root.path().join("split");
        run(&cfg("[split]\nstratify = \"sent\"\n"), &clean, &out, false).unwrap();
        for (s, expected) in [("train", 160), ("dev", 20), ("test", 20)] {
            let df = read_parquet(&out.join(format!("{s}.parquet"))).unwrap();
            let sent = df
                .column(&col::label("sent"))
                .unwrap()
                .str()
                .unwrap()
                .clone();
            assert_eq!(sent.equal("pos").sum().unwrap_or(0), expected, "{s}");
            assert_eq!(sent.equal("neg").sum().unwrap_or(0), expected, "{s}");
        }
    }

    #[test]
    fn unknown_dev_label_names_file_line_and_label() {
        let root = tempfile::tempdir().unwrap();
        let clean = clean_dir(root.path(), 20, true);
        let err = run(&cfg(""), &clean, &root.path().join("split"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("b.jsonl:2"), "{err}");
        assert!(err.contains("`ZZZ`") && err.contains("`tags`"), "{err}");

        let mapped = cfg("[split.unknown_labels]\npolicy = \"map-to\"\nlabel = \"N\"\n");
        let out = root.path().join("split2");
        run(&mapped, &clean, &out, false).unwrap();
        let dev = read_parquet(&out.join("dev.parquet")).unwrap();
        let ids = dev.column(col::ID).unwrap().str().unwrap().clone();
        let at = ids.iter().position(|id| id == Some("b-1")).unwrap();
        let row = dev
            .column(&col::label("tags"))
            .unwrap()
            .list()
            .unwrap()
            .get_as_series(at)
            .unwrap();
        assert_eq!(row.str().unwrap().get(4), Some("N"));
    }
}
