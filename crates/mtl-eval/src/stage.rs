//! The stage itself: inputs and fingerprint, prediction per split, scoring
//! per task, and the atomic write of `metrics.json` and `report.md`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use mtl_core::manifest::{fingerprint, upstream};
use mtl_core::{
    CoreError, LabelSet, Manifest, ManifestBuilder, Outcome, PipelineConfig, Stage, StagingDir,
    TaskKind,
};
use mtl_model::{Batch, Bundle};

use crate::data::{self, SplitData};
use crate::error::{Error, Result};
use crate::predict::{RowPreds, predict_rows};
use crate::report::{Metrics, TaskMetrics, headline_metric, render_markdown};
use crate::score::{score_task, truncated_rows};
use crate::truncated::{locate_split_dir, word_labels};

/// Bumped when eval's output changes for the same input.
pub const STAGE_VERSION: u32 = 2;

/// The report next to `metrics.json`.
pub const REPORT_MD: &str = "report.md";

/// Scores the model bundle in `train_dir/model` on `cfg.eval.splits` of the
/// tokenize output `data_dir`, writing `metrics.json` and `report.md` into
/// `out_dir`.
pub fn run(
    cfg: &PipelineConfig,
    data_dir: &Path,
    train_dir: &Path,
    out_dir: &Path,
    force: bool,
) -> Result<Outcome> {
    let (tokenize, tok_input) = upstream(data_dir, Stage::Tokenize)?;
    let (train, train_input) = upstream(train_dir, Stage::Train)?;
    check_lineage(data_dir, train_dir, &tok_input.fingerprint, &train)?;
    let inputs = vec![tok_input, train_input];
    let fp = fingerprint(Stage::Eval, STAGE_VERSION, cfg, &inputs);
    if !force && let Some(m) = Manifest::fresh(out_dir, &fp) {
        return Ok(Outcome::Cached(m));
    }
    let mut builder = ManifestBuilder::new(Stage::Eval, STAGE_VERSION, fp, inputs);
    let Some(headline) = cfg.eval.splits.first() else {
        return Err(CoreError::ConfigValue {
            path: cfg.source.path.clone(),
            key: "eval.splits".into(),
            message: "name at least one split to score".into(),
        }
        .into());
    };

    let t0 = Instant::now();
    let device = Device::Cpu;
    let model_dir = train_dir.join("model");
    let bundle = Bundle::load(&model_dir, &device).map_err(|e| model_error(&model_dir, e))?;
    check_labels(data_dir, &model_dir, &bundle.labels)?;
    builder.timing("load_model", t0);
    let heads: Vec<(String, TaskKind)> = bundle
        .spec
        .tasks
        .iter()
        .map(|h| (h.name.clone(), h.kind))
        .collect();
    let split_dir = locate_split_dir(data_dir, &tokenize);
    let features = bundle.features.used();
    // Multilabel baselines need the number of labelled training texts.
    let train_table = data_dir.join("train.parquet");
    let mut train_texts: BTreeMap<&str, u64> = BTreeMap::new();
    for (task, kind) in &heads {
        if *kind == TaskKind::Multilabel {
            train_texts.insert(task, data::labelled_rows(&train_table, task)?);
        }
    }

    let mut tasks: BTreeMap<String, TaskMetrics> = BTreeMap::new();
    for split in &cfg.eval.splits {
        let t_split = Instant::now();
        let path = data_dir.join(format!("{split}.parquet"));
        let data = data::load(&path, &heads, &features)?;
        builder.rows(split, data.len() as u64);
        let preds = predict_split(&bundle, &data, cfg.eval.batch_size, &device)?;
        builder.timing(&format!("predict_{split}"), t_split);

        // Gold of words lost to truncation, read only when some were lost.
        let token_tasks: Vec<&str> = heads
            .iter()
            .filter(|(_, k)| k.is_token_level())
            .map(|(n, _)| n.as_str())
            .collect();
        let lost: HashSet<&str> = token_tasks
            .iter()
            .flat_map(|t| truncated_rows(&data, t))
            .collect();
        let full_words = match &split_dir {
            Some(dir) if !lost.is_empty() => {
                word_labels(&dir.join(format!("{split}.parquet")), &token_tasks, &lost)?
            }
            _ => BTreeMap::new(),
        };

        for (task, kind) in &heads {
            let labels = bundle.labels.get(task)?;
            // An empty split never reaches the model, so it has no outputs.
            let none = RowPreds::empty(*kind);
            let task_preds = match preds.get(task) {
                Some(p) => p,
                None if data.is_empty() => &none,
                None => {
                    return Err(Error::Task {
                        path: model_dir.clone(),
                        task: task.clone(),
                        message: "the model has no output for this task".into(),
                    });
                }
            };
            let sm = score_task(
                &data,
                task,
                *kind,
                labels,
                task_preds,
                full_words.get(task),
                train_texts.get(task.as_str()).copied().unwrap_or(0),
            )?;
            let entry = tasks.entry(task.clone()).or_insert_with(|| TaskMetrics {
                kind: *kind,
                metric: headline_metric(*kind).to_string(),
                score: sm.score,
                baseline: sm.baseline,
                splits: BTreeMap::new(),
            });
            if split == headline {
                entry.score = sm.score;
                entry.baseline = sm.baseline;
            }
            entry.splits.insert(split.clone(), sm);
        }
    }

    let metrics = Metrics {
        pipeline: cfg.pipeline.name.clone(),
        headline_split: headline.clone(),
        splits: cfg.eval.splits.clone(),
        tasks,
    };
    let staging = StagingDir::begin(out_dir)?;
    mtl_core::fsio::write_json(&staging.path(Metrics::FILE), &metrics)?;
    mtl_core::fsio::atomic_write(
        &staging.path(REPORT_MD),
        render_markdown(&metrics).as_bytes(),
    )?;
    let m = builder.finish(&staging, &BTreeMap::new())?;
    staging.commit()?;
    Ok(Outcome::Ran(m))
}

/// Every task's predictions for every row of one tokenize table, exactly as
/// eval scores them (same batching, same side inputs). `mtl-predict` tests
/// compare its own output with this.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePredictions {
    pub ids: Vec<String>,
    pub tasks: BTreeMap<String, RowPreds>,
}

/// Runs `bundle` over the tokenize table at `path` (e.g.
/// `runs/<p>/tokenize/dev.parquet`), reading the `feat_*` columns its heads
/// take as side inputs.
pub fn predict_table(bundle: &Bundle, path: &Path, batch_size: usize) -> Result<TablePredictions> {
    let data = data::load(path, &[], &bundle.features.used())?;
    let tasks = predict_split(bundle, &data, batch_size, &Device::Cpu)?;
    Ok(TablePredictions {
        ids: data.ids,
        tasks,
    })
}

/// The model over every row of `data`, side inputs included.
fn predict_split(
    bundle: &Bundle,
    data: &SplitData,
    batch_size: usize,
    device: &Device,
) -> Result<BTreeMap<String, RowPreds>> {
    let fail = |e| model_error(&bundle.dir, e);
    predict_rows(&data.path, &data.input_ids, batch_size, |idx, rows| {
        let values: Vec<&BTreeMap<String, f32>> = idx.iter().map(|&i| &data.features[i]).collect();
        let batch = Batch::pad(rows, device)
            .and_then(|b| b.with_features(&bundle.features, &values))
            .map_err(fail)?;
        bundle.predict(&batch).map_err(fail)
    })
}

fn model_error(dir: &Path, e: mtl_model::Error) -> Error {
    Error::Model {
        path: dir.to_path_buf(),
        source: Box::new(e),
    }
}

/// The model must have been trained on this very tokenize output: token ids
/// and label ids mean nothing across tokenizers or vocabularies.
fn check_lineage(
    data_dir: &Path,
    train_dir: &Path,
    tokenize_fp: &str,
    train: &Manifest,
) -> Result<()> {
    let trained_on = train
        .inputs
        .iter()
        .find(|i| i.name == Stage::Tokenize.name());
    match trained_on {
        Some(i) if i.fingerprint != tokenize_fp => Err(CoreError::artifact(
            train_dir.join(Manifest::FILE),
            format!(
                "the model was trained on a different tokenize output than {} (re-run `mtl-train`)",
                data_dir.display()
            ),
        )
        .into()),
        _ => Ok(()),
    }
}

/// The tokenized tables' label ids must be the model's.
fn check_labels(data_dir: &Path, model_dir: &Path, model_labels: &LabelSet) -> Result<()> {
    let path = data_dir.join(LabelSet::FILE);
    if !path.exists() {
        return Ok(());
    }
    if &LabelSet::read(&path)? != model_labels {
        return Err(CoreError::artifact(
            &path,
            format!(
                "label vocabularies differ from the model's {} (re-run `mtl-train`)",
                model_dir.join(LabelSet::FILE).display()
            ),
        )
        .into());
    }
    Ok(())
}
