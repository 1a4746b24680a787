//! The split stage: assigns every cleaned example to train, dev or test
//! (carving dev out of train for a dataset that brings none), builds each
//! task's label vocabulary (or, for regression, target statistics) and class
//! weights from train only, applies the unknown-label policy, fuses all
//! datasets into one multi-task table per split, reports (and optionally
//! drops) leakage between splits, and ranks the clean stage's numeric
//! features by mutual information with each sentence-level task
//! (`features.json`).
//!
//! It never changes text or tokens (that is clean's job), never maps labels
//! to ids in the tables (tokenize does, from `labels.json`) and never looks
//! at a tokenizer. A task's label is null on rows that do not carry the
//! task: that null is the task mask the trainer reads.

mod assign;
mod cells;
mod error;
mod features;
mod fuse;
mod input;
mod leakage;
mod mi;
mod report;
mod vocab;
mod weights;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use mtl_core::artifact::{PolarsAt, SPLITS, col, write_parquet};
use mtl_core::manifest::{fingerprint, upstream};
use mtl_core::{
    FeatureSet, LabelSet, Manifest, ManifestBuilder, Outcome, PipelineConfig, Stage, StagingDir,
    TaskKind,
};
use polars::prelude::*;

use cells::Cell;
pub use error::{Error, Result};
pub use leakage::{LeakSample, Leakage};
pub use mi::{entropy, equal_frequency_bins, mutual_information};
pub use report::{CarvedDev, SplitReport, TaskReport, render_summary};

/// Bumped when split's output changes for the same input.
pub const STAGE_VERSION: u32 = 3;

/// The report file in the split folder.
pub const REPORT_FILE: &str = "report.json";

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

    let started = Instant::now();
    let mut splits = Vec::new();
    let mut frames = Vec::new();
    let mut carved = BTreeMap::new();
    for l in input::load(cfg, clean_dir)? {
        splits.extend(l.splits);
        frames.push(l.df);
        if let Some(c) = l.carved {
            carved.insert(l.name, c);
        }
    }
    // Errors about the fused table have no single file: name the folder.
    let fused_path = clean_dir.join("(fused)");
    let mut fused = fuse::diagonal(frames, cfg).at(&fused_path)?;
    builder.timing("read", started);

    let started = Instant::now();
    let Labelled {
        vocabs,
        mut cells,
        mut mapped,
    } = label(cfg, &mut fused, &splits, &fused_path)?;

    let ids = fused
        .column(col::ID)
        .at(&fused_path)?
        .str()
        .at(&fused_path)?;
    let texts = fused
        .column(col::TEXT)
        .at(&fused_path)?
        .str()
        .at(&fused_path)?;
    let (leak, keep) = leakage::find(
        &ids.iter().collect::<Vec<_>>(),
        &texts.iter().collect::<Vec<_>>(),
        &splits,
        cfg.split.drop_leaked,
    );
    if keep.iter().any(|k| !k) {
        let mask = BooleanChunked::from_slice("keep".into(), &keep);
        fused = fused.filter(&mask).at(&fused_path)?;
        retain(&mut splits, &keep);
        cells.values_mut().for_each(|c| retain(c, &keep));
        mapped.values_mut().for_each(|m| retain(m, &keep));
    }

    let mut labels = LabelSet::default();
    for (i, t) in cfg.tasks.iter().enumerate() {
        let vocab = vocabs.get(&t.name).cloned().unwrap_or_default();
        let train = cells[&t.name]
            .iter()
            .zip(&splits)
            .filter(|(_, s)| **s == assign::TRAIN)
            .filter_map(|(c, _)| c.as_ref());
        let mut tl = vocab::task_labels(t, vocab, train);
        tl.class_weights = weights::resolve(cfg, i, &tl)?;
        labels.tasks.insert(t.name.clone(), tl);
    }
    builder.timing("labels", started);

    let started = Instant::now();
    let feature_values = features::read(&fused, &fused_path)?;
    let feature_set = features::build(cfg, &feature_values, &splits, &cells, &labels)?;
    builder.timing("features", started);

    for (dataset, c) in &carved {
        builder.rows(&format!("dev_from_train_{dataset}"), c.dev as u64);
    }
    let mut report = report::build(cfg, &splits, &cells, &labels, &mapped, leak, &feature_set);
    report.dev_from_train = carved;

    let started = Instant::now();
    let staging = StagingDir::begin(out_dir)?;
    let mut file_rows = BTreeMap::new();
    for (k, split) in SPLITS.iter().enumerate() {
        let mask: BooleanChunked = splits.iter().map(|&s| s == k).collect();
        let mut part = fused.filter(&mask).at(&fused_path)?;
        let name = format!("{split}.parquet");
        write_parquet(&mut part, &staging.path(&name))?;
        file_rows.insert(name, part.height() as u64);
        builder.rows(split, part.height() as u64);
    }
    for (split, n) in &report.leakage.dropped {
        builder.rows(&format!("leaked_dropped_{split}"), *n as u64);
    }
    mtl_core::fsio::write_json(&staging.path(LabelSet::FILE), &labels)?;
    mtl_core::fsio::write_json(&staging.path(FeatureSet::FILE), &feature_set)?;
    mtl_core::fsio::write_json(&staging.path(REPORT_FILE), &report)?;
    builder.timing("write", started);
    let m = builder.finish(&staging, &file_rows)?;
    staging.commit()?;
    Ok(Outcome::Ran(m))
}

/// The report of a finished split folder (for the printed summary, also
/// when the stage was cached).
pub fn read_report(out_dir: &Path) -> Result<SplitReport> {
    Ok(mtl_core::fsio::read_json(&out_dir.join(REPORT_FILE))?)
}

/// Keeps the items whose `keep` flag is set (the row order of the table).
fn retain<T>(v: &mut Vec<T>, keep: &[bool]) {
    let mut flags = keep.iter();
    v.retain(|_| flags.next().copied().unwrap_or(true));
}

/// Every task's labels after the unknown-label policy ran, with the
/// vocabularies it ran against.
struct Labelled {
    vocabs: BTreeMap<String, Vec<String>>,
    cells: BTreeMap<String, Vec<Option<Cell>>>,
    /// Labels replaced by the policy, per task and row.
    mapped: BTreeMap<String, Vec<u64>>,
}

/// Builds each task's vocabulary from train, applies the unknown-label
/// policy to every split (train included: labels below
/// `split.min_label_count` are outside the vocabulary), and writes the
/// resolved labels back into `fused`.
fn label(
    cfg: &PipelineConfig,
    fused: &mut DataFrame,
    splits: &[usize],
    path: &Path,
) -> Result<Labelled> {
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
    let origin = |i: usize| {
        (
            files.get(i).unwrap_or("?").to_string(),
            lines.get(i).unwrap_or(0),
        )
    };
    let mut out = Labelled {
        vocabs: BTreeMap::new(),
        cells: BTreeMap::new(),
        mapped: BTreeMap::new(),
    };
    for (i, t) in cfg.tasks.iter().enumerate() {
        let name = col::label(&t.name);
        let mut cells = cells::read(fused.column(&name).at(path)?, t.kind, path)?;
        let has_train = cells
            .iter()
            .zip(splits)
            .any(|(c, &s)| c.is_some() && s == assign::TRAIN);
        if !has_train {
            return Err(Error::NoTrainingLabels {
                task: t.name.clone(),
            });
        }
        if t.kind == TaskKind::Regression {
            if let Some((row, v)) = cells.iter().enumerate().find_map(|(r, c)| match c {
                Some(Cell::Num(v)) if !v.is_finite() => Some((r, *v)),
                _ => None,
            }) {
                let (file, line) = origin(row);
                return Err(Error::BadTarget {
                    file,
                    line,
                    task: t.name.clone(),
                    value: v,
                });
            }
            out.cells.insert(t.name.clone(), cells);
            continue;
        }
        let train = cells
            .iter()
            .zip(splits)
            .filter(|(_, s)| **s == assign::TRAIN)
            .filter_map(|(c, _)| c.as_ref());
        let vocab = vocab::vocabulary(t.kind, train, cfg.split.min_label_count);
        let policy = cfg.unknown_labels(t);
        let key = if t.unknown_labels.is_some() {
            format!("tasks[{i}].unknown_labels.label")
        } else {
            "split.unknown_labels.label".to_string()
        };
        // A task's own fallback is checked even when nothing needs it: it
        // was written for this task. The shared one is checked where used,
        // since it may suit only some tasks.
        if let (Some(_), mtl_core::config::UnknownLabels::MapTo { label }) =
            (&t.unknown_labels, policy)
            && !vocab.contains(label)
        {
            return Err(Error::BadFallback {
                key,
                task: t.name.clone(),
                label: label.clone(),
            });
        }
        let mapped = vocab::apply_policy(t, &vocab, policy, &key, &mut cells, &origin)?;
        if mapped.iter().any(|&n| n > 0) {
            fused
                .replace(&name, cells::column(&name, t.kind, &cells).at(path)?)
                .at(path)?;
        }
        out.mapped.insert(t.name.clone(), mapped);
        out.vocabs.insert(t.name.clone(), vocab);
        out.cells.insert(t.name.clone(), cells);
    }
    Ok(out)
}
