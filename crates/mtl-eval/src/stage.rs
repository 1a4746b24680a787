//! The stage itself: inputs and fingerprint, prediction per split, scoring
//! per task, and the atomic write of `metrics.json` and `report.md`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;
use mtl_core::manifest::{fingerprint, upstream};
use mtl_core::{
    CoreError, InputRef, LabelSet, Manifest, ManifestBuilder, Outcome, PipelineConfig, Stage,
    StagingDir, TaskKind,
};
use mtl_model::{Batch, Bundle, DeviceSpec};

use crate::baselines::{ModelCost, SingleTaskScores, count_parameters};
use crate::data::{self, SplitData};
use crate::error::{Error, Result};
use crate::html::{HtmlInputs, render_html};
use crate::metrics::bootstrap;
use crate::metrics::headline::Headline;
use crate::predict::{RowPreds, predict_rows};
use crate::report::{
    BootstrapInfo, Metrics, ParsedSentence, TaskDetail, TaskMetrics, render_markdown_with,
};
use crate::score::{
    ChosenParse, MAX_DRAWN_WORDS, TaskRef, parsed_sentences, score_task, truncated_rows,
};
use crate::trainlog::TrainLog;
use crate::truncated::{locate_split_dir, word_labels, words_of};
use crate::windows;

/// Bumped when eval's output changes for the same input.
pub const STAGE_VERSION: u32 = 6;

/// The split whose parsed sentences the reports draw: the test split is
/// for the final scores, not for reading a model's errors sentence by
/// sentence while it is still being developed.
pub(crate) const DRAWN_SPLIT: &str = "dev";

/// The report next to `metrics.json`.
pub const REPORT_MD: &str = "report.md";

/// The self-contained HTML report next to `metrics.json`.
pub const REPORT_HTML: &str = "report.html";

/// Where eval looks for single-task scores when not told:
/// `baselines.json` beside the eval folder (`runs/<pipeline>/baselines.json`).
/// It lives outside `eval/` because eval replaces its folder whole.
pub fn default_baselines_path(out_dir: &Path) -> PathBuf {
    out_dir
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(SingleTaskScores::FILE)
}

/// Scores the model bundle in `train_dir/model` on `cfg.eval.splits` of the
/// tokenize output `data_dir`, writing `metrics.json`, `report.md` and
/// `report.html` into `out_dir`, with single-task scores from
/// [`default_baselines_path`] when that file exists.
pub fn run(
    cfg: &PipelineConfig,
    data_dir: &Path,
    train_dir: &Path,
    out_dir: &Path,
    force: bool,
) -> Result<Outcome> {
    run_with_baselines(
        cfg,
        data_dir,
        train_dir,
        out_dir,
        force,
        &default_baselines_path(out_dir),
    )
}

/// [`run`], reading single-task scores ([`SingleTaskScores`]) from
/// `baselines` when it exists. Its contents are part of the fingerprint.
pub fn run_with_baselines(
    cfg: &PipelineConfig,
    data_dir: &Path,
    train_dir: &Path,
    out_dir: &Path,
    force: bool,
    baselines: &Path,
) -> Result<Outcome> {
    run_on_device(
        cfg,
        data_dir,
        train_dir,
        out_dir,
        force,
        baselines,
        DeviceSpec::Cpu,
    )
}

/// [`run_with_baselines`] with the model on `device` (not part of the
/// fingerprint: the scores do not depend on it).
pub fn run_on_device(
    cfg: &PipelineConfig,
    data_dir: &Path,
    train_dir: &Path,
    out_dir: &Path,
    force: bool,
    baselines: &Path,
    device: DeviceSpec,
) -> Result<Outcome> {
    let (tokenize, tok_input) = upstream(data_dir, Stage::Tokenize)?;
    let (train, train_input) = upstream(train_dir, Stage::Train)?;
    check_lineage(data_dir, train_dir, &tok_input.fingerprint, &train)?;
    let mut inputs = vec![tok_input, train_input];
    let single_task = if baselines.is_file() {
        inputs.push(InputRef {
            name: "baselines".into(),
            fingerprint: mtl_core::hash::sha256_file(baselines)?,
        });
        Some(SingleTaskScores::read(baselines)?)
    } else {
        None
    };
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
    let model_dir = train_dir.join("model");
    let device = device.open().map_err(|e| model_error(&model_dir, e))?;
    let bundle = Bundle::load(&model_dir, &device).map_err(|e| model_error(&model_dir, e))?;
    check_labels(data_dir, &model_dir, &bundle.labels)?;
    builder.timing("load_model", t0);
    let heads: Vec<(String, TaskKind)> = bundle
        .spec
        .tasks
        .iter()
        .map(|h| (h.name.clone(), h.kind))
        .collect();
    let headlines = resolve_headlines(cfg, &heads, &bundle.labels)?;
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
    let mut inference = std::time::Duration::ZERO;
    let mut predicted = 0u64;
    for split in &cfg.eval.splits {
        let t_split = Instant::now();
        let path = data_dir.join(format!("{split}.parquet"));
        let data = data::load(&path, &heads, &features)?;
        let pad_to = cfg.tokenize.pad_to;
        let t_predict = Instant::now();
        let preds = predict_split(&bundle, &data, cfg.eval.batch_size, pad_to, &device)?;
        inference += t_predict.elapsed();
        if data.windows.is_some() {
            builder.rows(&format!("{split}_windows"), data.len() as u64);
        }
        let (data, preds) = windows::merge(data, preds)?;
        predicted += data.len() as u64;
        builder.rows(split, data.len() as u64);
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
            let t_score = Instant::now();
            let task_ref = TaskRef {
                name: task,
                kind: *kind,
                labels,
                headline: &headlines[task],
                train_texts: train_texts.get(task.as_str()).copied().unwrap_or(0),
                seed: bootstrap::seed_for(&format!("{task}/{split}")),
            };
            let mut sm = score_task(&data, &task_ref, task_preds, full_words.get(task))?;
            if split == DRAWN_SPLIT
                && let TaskDetail::Dependency(d) = &mut sm.metrics
            {
                let chosen = parsed_sentences(&data, task, labels, task_preds)?;
                (d.examples, d.examples_note) = with_words(split_dir.as_deref(), split, chosen)?;
            }
            builder.timing(&format!("score_{task}_{split}"), t_score);
            let entry = tasks.entry(task.clone()).or_insert_with(|| TaskMetrics {
                kind: *kind,
                metric: headlines[task].name(),
                score: sm.score,
                ci: sm.ci,
                baseline: sm.baseline,
                splits: BTreeMap::new(),
            });
            if split == headline {
                entry.score = sm.score;
                entry.ci = sm.ci;
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
        bootstrap: Some(BootstrapInfo::current()),
        cost: Some(ModelCost {
            models: 1,
            parameters: count_parameters(&model_dir.join(mtl_model::bundle::WEIGHTS))?,
            train_seconds: train_seconds(&train),
            inference_seconds: inference.as_secs_f64(),
            inference_examples: predicted,
        }),
    };
    let t_report = Instant::now();
    let log = TrainLog::read(&train_dir.join(TrainLog::FILE));
    let html = render_html(&HtmlInputs {
        metrics: &metrics,
        log: &log,
        labels: &bundle.labels,
        single_task: single_task.as_ref(),
        baselines_path: baselines,
    });
    let staging = StagingDir::begin(out_dir)?;
    mtl_core::fsio::write_json(&staging.path(Metrics::FILE), &metrics)?;
    mtl_core::fsio::atomic_write(
        &staging.path(REPORT_MD),
        render_markdown_with(&metrics, single_task.as_ref()).as_bytes(),
    )?;
    mtl_core::fsio::atomic_write(&staging.path(REPORT_HTML), html.as_bytes())?;
    builder.timing("report", t_report);
    let m = builder.finish(&staging, &BTreeMap::new())?;
    staging.commit()?;
    Ok(Outcome::Ran(m))
}

/// The chosen parsed sentences with their words, read from the split
/// stage's table of `split` in `split_dir`; none, and a note saying why,
/// when nothing was chosen or that table is not known.
fn with_words(
    split_dir: Option<&Path>,
    split: &str,
    chosen: Vec<ChosenParse>,
) -> Result<(Vec<ParsedSentence>, Option<String>)> {
    if chosen.is_empty() {
        return Ok((
            Vec::new(),
            Some(format!(
                "no {split} sentence of at most {MAX_DRAWN_WORDS} words has every word scored \
                 (none cut off by truncation)"
            )),
        ));
    }
    // The tokenize table holds token ids only; the words are in the split
    // stage's table, and only one whose fingerprint is the one tokenize
    // read can be trusted to hold the same rows.
    let Some(dir) = split_dir else {
        return Ok((
            Vec::new(),
            Some(
                "the words are unknown: only the split stage's table holds them, and no split \
                 output with the fingerprint tokenize recorded is beside the tokenize output"
                    .into(),
            ),
        ));
    };
    let path = dir.join(format!("{split}.parquet"));
    let ids: HashSet<&str> = chosen.iter().map(|c| c.id.as_str()).collect();
    let mut words = words_of(&path, &ids)?;
    chosen
        .into_iter()
        .map(|c| {
            let bad = |message: String| Error::Row {
                path: path.clone(),
                column: mtl_core::artifact::col::WORDS.into(),
                id: c.id.clone(),
                message,
            };
            let w = words
                .remove(&c.id)
                .ok_or_else(|| bad("no words for a row of the tokenize table".into()))?;
            if w.len() != c.n_words {
                return Err(bad(format!(
                    "{} words, but the tokenize table has {}",
                    w.len(),
                    c.n_words
                )));
            }
            Ok(ParsedSentence {
                id: c.id,
                words: w,
                gold: c.gold,
                predicted: c.predicted,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(|drawn| (drawn, None))
}

/// The training loop's wall time from the train manifest (`train`, else
/// the stage's `total`).
fn train_seconds(train: &Manifest) -> f64 {
    let t = &train.timings_ms;
    t.get("train")
        .or_else(|| t.get("total"))
        .copied()
        .unwrap_or(0) as f64
        / 1000.0
}

/// Every task's predictions for every example of one tokenize table,
/// exactly as eval scores them (same batching, same side inputs, windows
/// merged). `mtl-predict` tests compare its own output with this.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePredictions {
    /// One per example (the windows of an example are one).
    pub ids: Vec<String>,
    /// Per example, the word of each position of its token predictions
    /// (-1 = special token): the table's `word_ids`, or for merged windows
    /// one position per scored word. Read a word's prediction at
    /// [`mtl_core::align::first_subtoken_positions`].
    pub word_ids: Vec<Vec<i32>>,
    pub tasks: BTreeMap<String, RowPreds>,
}

/// Runs `bundle` over the tokenize table at `path` (e.g.
/// `runs/<p>/tokenize/dev.parquet`), reading the `feat_*` columns its heads
/// take as side inputs, padding every batch to `pad_to` when given.
pub fn predict_table(
    bundle: &Bundle,
    path: &Path,
    batch_size: usize,
    pad_to: Option<usize>,
) -> Result<TablePredictions> {
    let data = data::load(path, &[], &bundle.features.used())?;
    let tasks = predict_split(bundle, &data, batch_size, pad_to, bundle.device())?;
    let (data, tasks) = windows::merge(data, tasks)?;
    Ok(TablePredictions {
        ids: data.ids,
        word_ids: data.word_ids,
        tasks,
    })
}

/// The model over every row of `data`, side inputs and, for a model with
/// `char_cnn`, the table's `char_ids` included.
fn predict_split(
    bundle: &Bundle,
    data: &SplitData,
    batch_size: usize,
    pad_to: Option<usize>,
    device: &Device,
) -> Result<BTreeMap<String, RowPreds>> {
    let fail = |e| model_error(&bundle.dir, e);
    let chars = match bundle.spec.encoder.char_cnn {
        Some(_) => Some(char_ids(data)?),
        None => None,
    };
    predict_rows(&data.path, &data.input_ids, batch_size, |idx, rows| {
        let values: Vec<&BTreeMap<String, f32>> = idx.iter().map(|&i| &data.features[i]).collect();
        // Word starts: a CRF head decodes one step per word.
        let word_ids: Vec<&[i32]> = idx.iter().map(|&i| data.word_ids[i].as_slice()).collect();
        let mut batch = Batch::padded(rows, pad_to, device)
            .and_then(|b| b.with_features(&bundle.features, &values))
            .and_then(|b| b.with_word_ids(&word_ids))
            .map_err(fail)?;
        if let Some(chars) = &chars {
            let char_ids: Vec<&[Vec<u32>]> = idx.iter().map(|&i| chars[i].as_slice()).collect();
            batch = batch.with_chars(&word_ids, &char_ids).map_err(fail)?;
        }
        bundle.predict(&batch).map_err(fail)
    })
}

/// The `char_ids` column of `data`'s table: per row, each word's character
/// ids, as many words as the row's `n_words`.
fn char_ids(data: &SplitData) -> Result<Vec<Vec<Vec<u32>>>> {
    use mtl_core::artifact::{PolarsAt, col, column, read_parquet};
    use polars::prelude::DataType;
    let path = &data.path;
    let df = read_parquet(path)?;
    let words = DataType::List(Box::new(DataType::List(Box::new(DataType::UInt32))));
    let c = column(&df, path, col::CHAR_IDS, &words)?;
    let mut out = Vec::with_capacity(data.len());
    for (i, row) in c.list().at(path)?.series_iter().enumerate() {
        let bad = |m: &str| data.row_error(i, col::CHAR_IDS, m);
        let row = row.ok_or_else(|| bad("null"))?;
        let mut chars = Vec::with_capacity(row.len());
        for w in row.list().at(path)?.series_iter() {
            let w = w.ok_or_else(|| bad("a null word"))?;
            let ids: Option<Vec<u32>> = w.u32().at(path)?.iter().collect();
            chars.push(ids.ok_or_else(|| bad("a null character id"))?);
        }
        if chars.len() != data.n_words[i] {
            return Err(bad(&format!(
                "{} words, but `{}` is {}",
                chars.len(),
                col::N_WORDS,
                data.n_words[i]
            )));
        }
        out.push(chars);
    }
    Ok(out)
}

/// Each head's headline metric, from its task's `metric` in the config.
/// A bad name or label is a config error at `tasks[i].metric`.
fn resolve_headlines(
    cfg: &PipelineConfig,
    heads: &[(String, TaskKind)],
    labels: &LabelSet,
) -> Result<BTreeMap<String, Headline>> {
    let mut out = BTreeMap::new();
    for (task, kind) in heads {
        let vocab = &labels.get(task)?.labels;
        let configured = cfg.tasks.iter().enumerate().find(|(_, t)| &t.name == task);
        let metric = configured.and_then(|(_, t)| t.metric.as_ref());
        let h =
            Headline::resolve(*kind, metric, vocab).map_err(|message| CoreError::ConfigValue {
                path: cfg.source.path.clone(),
                key: format!("tasks[{}].metric", configured.map_or(0, |(i, _)| i)),
                message,
            })?;
        out.insert(task.clone(), h);
    }
    Ok(out)
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
