//! The train stage: fits one shared encoder with one head per task on the
//! tokenized training split (classification, tagging, spans, multilabel and
//! regression heads; sentence heads may take standardized side-input
//! features), sums the task losses with the configured task weights and
//! per-class weights, picks the epoch with the best mean dev score (see
//! [`score`]), and writes a self-contained model bundle (with
//! `features.json`) plus a training log.
//!
//! It never scores with official metrics (that is eval's job) and never
//! touches raw text: it reads only the tokenize stage's artifacts
//! (`{train,dev}.parquet`, `labels.json`, `tokenizer.json`, and
//! `features.json` when present; without it no head takes side inputs).

mod data;
mod error;
mod optim;
mod sampling;
pub mod score;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use mtl_core::manifest::{fingerprint, upstream};
use mtl_core::{
    FeatureSet, LabelSet, Manifest, ManifestBuilder, Outcome, PipelineConfig, Stage, StagingDir,
    TaskKind,
};
use mtl_model::{
    Batch, BundleMeta, EncoderSpec, HeadSpec, LossWeights, ModelSpec, MultiTaskModel, Preprocess,
    Targets,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

pub use data::{Example, RowTarget};
pub use error::{Error, Result};

/// Bumped when train's output changes for the same input.
pub const STAGE_VERSION: u32 = 3;

#[derive(Debug, Serialize)]
pub struct TrainReport {
    pub parameters: usize,
    pub steps: usize,
    pub epochs: usize,
    pub best_epoch: usize,
    /// Per task, the selection score of the best epoch (on dev, or on
    /// train without dev rows); which score is in `dev_metric`.
    pub best_dev_score: BTreeMap<String, f64>,
    /// Per task, the name of its selection score ([`score::metric`]).
    pub dev_metric: BTreeMap<String, String>,
    pub seconds: f64,
    pub tokens_per_second: f64,
    pub first_loss: f32,
    pub last_epoch_loss: f32,
}

/// Runs the stage from the tokenize output `input_dir` into `out_dir`.
pub fn run(cfg: &PipelineConfig, input_dir: &Path, out_dir: &Path, force: bool) -> Result<Outcome> {
    let (_, input) = upstream(input_dir, Stage::Tokenize)?;
    let fp = fingerprint(
        Stage::Train,
        STAGE_VERSION,
        cfg,
        std::slice::from_ref(&input),
    );
    if !force && let Some(m) = Manifest::fresh(out_dir, &fp) {
        return Ok(Outcome::Cached(m));
    }
    let mut builder = ManifestBuilder::new(Stage::Train, STAGE_VERSION, fp, vec![input]);
    let labels = LabelSet::read(&input_dir.join(LabelSet::FILE))?;
    let tokenizer = input_dir.join("tokenizer.json");
    let features_path = input_dir.join(FeatureSet::FILE);
    let features = if features_path.exists() {
        FeatureSet::read(&features_path)?
    } else {
        FeatureSet::default()
    };
    let spec = model_spec(cfg, &labels, &features, &tokenizer)?;
    let features = heads_features(features, &spec);
    let weights = loss_weights(cfg, &labels)?;
    let used = features.used();
    let t0 = Instant::now();
    let train = data::load(&input_dir.join("train.parquet"), &labels, &used)?;
    let dev = data::load(&input_dir.join("dev.parquet"), &labels, &used)?;
    builder
        .timing("load", t0)
        .rows("train", train.len() as u64)
        .rows("dev", dev.len() as u64);
    if train.is_empty() {
        return Err(Error::Empty(
            input_dir.join("train.parquet").display().to_string(),
        ));
    }

    let meta = BundleMeta {
        format_version: mtl_model::bundle::FORMAT_VERSION,
        spec: spec.clone(),
        preprocess: Preprocess {
            clean: cfg
                .datasets
                .iter()
                .map(|d| (d.name.clone(), d.clean.clone()))
                .collect(),
            max_length: cfg.tokenize.max_length,
        },
    };
    let staging = StagingDir::begin(out_dir)?;
    let t_train = Instant::now();
    let setup = Setup {
        spec: &spec,
        features: &features,
        weights: &weights,
    };
    let report = fit(cfg, &setup, &train, &dev, &staging, |varmap| {
        mtl_model::bundle::save(
            &staging.path("model"),
            &meta,
            varmap,
            &tokenizer,
            &labels,
            &features,
        )
    })?;
    builder.timing("train", t_train);
    mtl_core::fsio::write_json(&staging.path("report.json"), &report)?;
    let m = builder.finish(&staging, &BTreeMap::new())?;
    staging.commit()?;
    Ok(Outcome::Ran(m))
}

fn model_spec(
    cfg: &PipelineConfig,
    labels: &LabelSet,
    features: &FeatureSet,
    tokenizer: &Path,
) -> Result<ModelSpec> {
    let tok: serde_json::Value = mtl_core::fsio::read_json(tokenizer)?;
    let vocab_size = tok
        .pointer("/model/vocab")
        .and_then(|v| {
            v.as_object()
                .map(|o| o.len())
                .or_else(|| v.as_array().map(Vec::len))
        })
        .ok_or_else(|| Error::Data {
            path: tokenizer.to_path_buf(),
            message: "no model.vocab in tokenizer.json".into(),
        })?;
    // Added tokens can sit above the base vocabulary.
    let max_added = tok
        .get("added_tokens")
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|t| t.get("id").and_then(|i| i.as_u64()))
                .max()
                .unwrap_or(0) as usize
                + 1
        })
        .unwrap_or(0);
    let m = &cfg.model;
    Ok(ModelSpec {
        encoder: EncoderSpec {
            kind: "bilstm".into(),
            vocab_size: vocab_size.max(max_added),
            embedding_dim: m.embedding_dim,
            hidden_dim: m.hidden_dim,
            layers: m.layers,
            dropout: m.dropout as f32,
        },
        tasks: cfg
            .tasks
            .iter()
            .map(|t| head_spec(&t.name, t.kind, labels, features))
            .collect::<Result<_>>()?,
    })
}

/// A task's head: label count, side inputs (sentence-level tasks) and, for
/// regression, the target statistics split computed on train.
fn head_spec(
    task: &str,
    kind: TaskKind,
    labels: &LabelSet,
    features: &FeatureSet,
) -> Result<HeadSpec> {
    let tl = labels.get(task)?;
    let labels_err = |message: String| Error::Data {
        path: LabelSet::FILE.into(),
        message: format!("task `{task}`: {message}"),
    };
    if tl.kind != kind {
        return Err(labels_err(format!(
            "is {} in labels.json but {} in the config (re-run mtl-split)",
            tl.kind.name(),
            kind.name()
        )));
    }
    let mut h = HeadSpec::new(task, kind, tl.len());
    if !kind.is_token_level() {
        h.features = features.selected(task).to_vec();
        if let Some(f) = h.features.iter().find(|f| !features.stats.contains_key(*f)) {
            return Err(Error::Data {
                path: FeatureSet::FILE.into(),
                message: format!("task `{task}` selects feature `{f}`, which has no statistics"),
            });
        }
    }
    if kind == TaskKind::Regression {
        h.target = Some(tl.target.ok_or_else(|| {
            labels_err("a regression task needs `target` statistics (re-run mtl-split)".into())
        })?);
    } else if tl.is_empty() {
        return Err(labels_err("has no labels".into()));
    }
    Ok(h)
}

/// `features.json` as the model uses it: a task keeps its `selected` side
/// inputs only where its head takes them (rankings and statistics stay), so
/// that batches, the bundle and the heads agree.
fn heads_features(mut features: FeatureSet, spec: &ModelSpec) -> FeatureSet {
    for (task, tf) in features.tasks.iter_mut() {
        tf.selected = spec
            .head(task)
            .map(|h| h.features.clone())
            .unwrap_or_default();
    }
    features
}

/// Task weights from the config, class weights from labels.json.
fn loss_weights(cfg: &PipelineConfig, labels: &LabelSet) -> Result<LossWeights> {
    let mut w = LossWeights::default();
    for t in &cfg.tasks {
        w.tasks.insert(t.name.clone(), t.weight);
        let tl = labels.get(&t.name)?;
        if let Some(cw) = &tl.class_weights {
            let bad = |message: String| Error::Data {
                path: LabelSet::FILE.into(),
                message: format!("task `{}`: class_weights {message}", t.name),
            };
            if !matches!(
                t.kind,
                TaskKind::Classification | TaskKind::Tagging | TaskKind::Spans
            ) {
                return Err(bad(format!("are not used by {} tasks", t.kind.name())));
            }
            if cw.len() != tl.len() {
                return Err(bad(format!(
                    "has {} weights for {} labels",
                    cw.len(),
                    tl.len()
                )));
            }
            if let Some(x) = cw.iter().find(|x| !(x.is_finite() && **x > 0.0)) {
                return Err(bad(format!("holds {x}, not a positive number")));
            }
            w.classes
                .insert(t.name.clone(), cw.iter().map(|&x| x as f32).collect());
        }
    }
    Ok(w)
}

/// What training needs besides the data.
pub struct Setup<'a> {
    pub spec: &'a ModelSpec,
    /// Side inputs and their statistics.
    pub features: &'a FeatureSet,
    pub weights: &'a LossWeights,
}

/// A padded batch of rows `idx`, with the side inputs of every head that
/// takes some.
pub(crate) fn batch_rows(
    examples: &[Example],
    idx: &[usize],
    features: &FeatureSet,
    device: &Device,
) -> Result<Batch> {
    let rows: Vec<&[u32]> = idx
        .iter()
        .map(|&i| examples[i].input_ids.as_slice())
        .collect();
    let batch = Batch::pad(&rows, device)?;
    if features.used().is_empty() {
        return Ok(batch);
    }
    let values: Vec<&BTreeMap<String, f32>> = idx.iter().map(|&i| &examples[i].features).collect();
    Ok(batch.with_features(features, &values)?)
}

/// Builds a padded batch and every task's targets for rows `idx`.
fn make_batch(
    examples: &[Example],
    idx: &[usize],
    setup: &Setup,
    device: &Device,
) -> Result<(Batch, BTreeMap<String, Targets>)> {
    let batch = batch_rows(examples, idx, setup.features, device)?;
    let mut targets = BTreeMap::new();
    for h in &setup.spec.tasks {
        if !idx
            .iter()
            .any(|&i| examples[i].targets.contains_key(&h.name))
        {
            continue;
        }
        let gold = |i: usize| examples[i].targets.get(&h.name);
        let t = match h.kind {
            TaskKind::Tagging | TaskKind::Spans => {
                let per_row: Vec<Option<&[i32]>> = idx
                    .iter()
                    .map(|&i| match gold(i) {
                        Some(RowTarget::Token(y)) => Some(y.as_slice()),
                        _ => None,
                    })
                    .collect();
                Targets::Token(batch.token_targets(&per_row))
            }
            TaskKind::Classification => Targets::Sentence(
                idx.iter()
                    .map(|&i| match gold(i) {
                        Some(RowTarget::Sentence(y)) => *y,
                        _ => -1,
                    })
                    .collect(),
            ),
            TaskKind::Multilabel => Targets::Multilabel(
                idx.iter()
                    .map(|&i| match gold(i) {
                        Some(RowTarget::Multilabel(y)) => Some(y.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
            TaskKind::Regression => Targets::Regression(
                idx.iter()
                    .map(|&i| match gold(i) {
                        Some(RowTarget::Regression(y)) => Some(*y),
                        _ => None,
                    })
                    .collect(),
            ),
        };
        targets.insert(h.name.clone(), t);
    }
    Ok((batch, targets))
}

fn fit(
    cfg: &PipelineConfig,
    setup: &Setup,
    train: &[Example],
    dev: &[Example],
    staging: &StagingDir,
    mut save_best: impl FnMut(&candle_nn::VarMap) -> mtl_model::Result<()>,
) -> Result<TrainReport> {
    let device = Device::Cpu;
    let tc = &cfg.train;
    let seed = cfg.pipeline.seed;
    let spec = setup.spec;
    let (model, varmap) = MultiTaskModel::new(spec, seed, &device)?;
    let vars = varmap.all_vars();
    let parameters: usize = vars.iter().map(|v| v.as_tensor().elem_count()).sum();
    let mut opt = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: tc.learning_rate,
            weight_decay: tc.weight_decay,
            ..Default::default()
        },
    )?;
    let task_names: Vec<String> = spec.tasks.iter().map(|h| h.name.clone()).collect();
    let mut sampler = sampling::ProportionalSampler::new(train, &task_names, tc.batch_size);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let steps_per_epoch = sampler.steps_per_epoch(train.len());
    let total_steps = tc
        .max_steps
        .unwrap_or(usize::MAX)
        .min(steps_per_epoch * tc.epochs)
        .max(1);

    let log_path = staging.path("log.jsonl");
    let mut log = std::io::BufWriter::new(
        std::fs::File::create(&log_path).map_err(|e| mtl_core::CoreError::io(&log_path, e))?,
    );
    let mut write_log = |v: serde_json::Value| -> Result<()> {
        writeln!(log, "{v}").map_err(|e| mtl_core::CoreError::io(&log_path, e).into())
    };

    let metric_of = |task: &str| spec.head(task).map_or("score", |h| score::metric(h.kind));
    let started = Instant::now();
    let mut tokens = 0usize;
    let mut first_loss = None;
    let mut best: Option<(f64, usize, BTreeMap<String, f64>)> = None;
    let mut epoch_loss = 0f32;
    let mut step = 0;
    let mut epoch = 0;
    while step < total_steps {
        epoch += 1;
        let (mut sum, mut n) = (0f32, 0usize);
        for _ in 0..steps_per_epoch {
            if step >= total_steps {
                break;
            }
            let Some((_, idx)) = sampler.next_batch(&mut rng) else {
                break;
            };
            let (batch, targets) = make_batch(train, &idx, setup, &device)?;
            tokens += batch.lengths.iter().sum::<usize>();
            let Some((loss, parts)) =
                model.loss(&batch, &targets, setup.weights, Some(&mut rng))?
            else {
                continue;
            };
            let value = loss.to_scalar::<f32>()?;
            if !value.is_finite() {
                return Err(Error::NonFinite { step, value });
            }
            first_loss.get_or_insert(value);
            let mut grads = loss.backward()?;
            if let Some(clip) = tc.grad_clip {
                optim::clip_grad_norm(&vars, &mut grads, clip)?;
            }
            let lr = optim::lr_at(tc.learning_rate, step, total_steps);
            opt.set_learning_rate(lr);
            opt.step(&grads)?;
            write_log(
                serde_json::json!({"step": step, "epoch": epoch, "loss": value, "tasks": parts, "lr": lr}),
            )?;
            sum += value;
            n += 1;
            step += 1;
        }
        epoch_loss = sum / n.max(1) as f32;
        let select_on = if dev.is_empty() { train } else { dev };
        let dev_score = score::dev_scores(&model, setup.features, select_on, 64, &device)?;
        let mean = dev_score.values().sum::<f64>() / dev_score.len().max(1) as f64;
        let tok_s = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "  epoch {epoch:>3}  step {step:>5}/{total_steps}  loss {epoch_loss:.4}  dev {}  {tok_s:.0} tok/s",
            dev_score
                .iter()
                .map(|(t, a)| format!("{t} {} {a:.3}", metric_of(t)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        write_log(
            serde_json::json!({"epoch": epoch, "step": step, "train_loss": epoch_loss, "dev_score": dev_score, "dev_mean": mean}),
        )?;
        if best.as_ref().is_none_or(|(b, _, _)| mean > *b) {
            save_best(&varmap)?;
            best = Some((mean, epoch, dev_score));
        }
    }
    log.flush()
        .map_err(|e| mtl_core::CoreError::io(&log_path, e))?;
    let (_, best_epoch, best_dev_score) =
        best.ok_or_else(|| Error::Empty("no training step ran".into()))?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(TrainReport {
        parameters,
        steps: step,
        epochs: epoch,
        best_epoch,
        best_dev_score,
        dev_metric: spec
            .tasks
            .iter()
            .map(|h| (h.name.clone(), score::metric(h.kind).to_string()))
            .collect(),
        seconds,
        tokens_per_second: tokens as f64 / seconds.max(1e-9),
        first_loss: first_loss.unwrap_or(f32::NAN),
        last_epoch_loss: epoch_loss,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Sentence label: does the row contain token 3? Token tag: is the
    /// token id odd? Both are learnable from the ids alone.
    fn synthetic(n: usize, seed: u64) -> Vec<Example> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let len = rng.random_range(3..9);
                let ids: Vec<u32> = (0..len).map(|_| rng.random_range(2..12)).collect();
                let mut targets = BTreeMap::new();
                targets.insert(
                    "has3".to_string(),
                    RowTarget::Sentence(i32::from(ids.contains(&3))),
                );
                targets.insert(
                    "odd".to_string(),
                    RowTarget::Token(ids.iter().map(|&i| (i % 2) as i32).collect()),
                );
                Example {
                    input_ids: ids,
                    targets,
                    features: BTreeMap::new(),
                }
            })
            .collect()
    }

    fn config() -> PipelineConfig {
        let text = r#"
[pipeline]
name = "t"
[[datasets]]
name = "d"
format = "jsonl"
files = { all = "d.jsonl" }
[[tasks]]
name = "has3"
dataset = "d"
column = "a"
type = "classification"
[[tasks]]
name = "odd"
dataset = "d"
column = "b"
type = "tagging"
[model]
embedding_dim = 16
hidden_dim = 16
dropout = 0.0
[train]
epochs = 8
batch_size = 16
learning_rate = 0.01
"#;
        PipelineConfig::from_toml_str(text, Path::new("t.toml")).unwrap()
    }

    fn spec() -> ModelSpec {
        ModelSpec {
            encoder: EncoderSpec {
                kind: "bilstm".into(),
                vocab_size: 12,
                embedding_dim: 16,
                hidden_dim: 16,
                layers: 1,
                dropout: 0.0,
            },
            tasks: vec![
                HeadSpec::new("has3", TaskKind::Classification, 2),
                HeadSpec::new("odd", TaskKind::Tagging, 2),
            ],
        }
    }

    fn fit_plain(
        cfg: &PipelineConfig,
        train: &[Example],
        dev: &[Example],
        staging: &StagingDir,
        save: impl FnMut(&candle_nn::VarMap) -> mtl_model::Result<()>,
    ) -> Result<TrainReport> {
        let spec = spec();
        let setup = Setup {
            spec: &spec,
            features: &FeatureSet::default(),
            weights: &LossWeights::default(),
        };
        fit(cfg, &setup, train, dev, staging, save)
    }

    #[test]
    fn loss_falls_and_both_tasks_are_learned() {
        let dir = tempfile::tempdir().unwrap();
        let staging = StagingDir::begin(&dir.path().join("train")).unwrap();
        let (train, dev) = (synthetic(320, 1), synthetic(80, 2));
        let mut saves = 0;
        let report = fit_plain(&config(), &train, &dev, &staging, |_| {
            saves += 1;
            Ok(())
        })
        .unwrap();
        assert!(saves >= 1);
        assert!(
            report.last_epoch_loss < report.first_loss * 0.5,
            "{report:?}"
        );
        assert!(report.best_dev_score["has3"] > 0.9, "{report:?}");
        assert!(report.best_dev_score["odd"] > 0.95, "{report:?}");
        let log = std::fs::read_to_string(staging.path("log.jsonl")).unwrap();
        assert_eq!(
            log.lines().filter(|l| l.contains("\"lr\"")).count(),
            report.steps
        );
    }

    #[test]
    fn same_seed_same_training() {
        let run = || {
            let dir = tempfile::tempdir().unwrap();
            let staging = StagingDir::begin(&dir.path().join("train")).unwrap();
            let mut cfg = config();
            cfg.train.max_steps = Some(10);
            cfg.model.dropout = 0.3;
            fit_plain(&cfg, &synthetic(64, 1), &synthetic(16, 2), &staging, |_| {
                Ok(())
            })
            .unwrap()
            .last_epoch_loss
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn divergence_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let staging = StagingDir::begin(&dir.path().join("train")).unwrap();
        let mut cfg = config();
        cfg.train.learning_rate = 1e30;
        cfg.train.grad_clip = None;
        let err = fit_plain(&cfg, &synthetic(64, 1), &synthetic(16, 2), &staging, |_| {
            Ok(())
        })
        .unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    }
}
