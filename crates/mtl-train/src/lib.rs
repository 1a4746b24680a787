//! The train stage: fits one shared encoder with one head per task on the
//! tokenized training split (classification, tagging, spans, multilabel and
//! regression heads; sentence heads may take standardized side-input
//! features), and writes a self-contained model bundle (with
//! `features.json`), a training log and a report.
//!
//! How it trains, each part behind a `[train]` switch, each in its module:
//! task sampling (`sampling`: proportional, temperature, uniform, annealed,
//! per-task caps), loss weighting (`weighting`: static, uncertainty, DWA)
//! and PCGrad (`pcgrad`), AdamW with separate encoder and head learning
//! rates on a linear or cosine schedule (`optim`), batches bounded by
//! `max_tokens` and padded to `pad_to` (`batching`), evaluation on dev every
//! `eval_every` steps with model selection and early stopping on the mean
//! of each task's headline metric on dev ([`score`], computed by
//! `mtl-metrics` as eval computes it; without dev rows the last weights are
//! kept), and checkpoints for `--resume` (`checkpoint`: in
//! `<out>.checkpoint/`, beside the stage folder). The loop itself is
//! `trainer`; the progress bar and peak memory are in `progress` and
//! `report`. After training, each multilabel label's decision threshold is
//! tuned on dev and stored in the bundle ([`thresholds`], behind
//! `train.tune_thresholds`). It runs on the CPU or, built with the `cuda`
//! feature, a GPU ([`RunOptions::device`]).
//!
//! It never writes the official scores (that is eval's job) and never
//! touches raw text: it reads only the tokenize stage's artifacts
//! (`{train,dev}.parquet`, `labels.json`, `tokenizer.json`, and
//! `features.json` when present; without it no head takes side inputs).

mod batching;
mod checkpoint;
mod data;
mod error;
mod optim;
mod pcgrad;
mod progress;
mod report;
mod sampling;
pub mod score;
pub mod thresholds;
mod trainer;
mod weighting;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mtl_core::config::EncoderKind;
use mtl_core::manifest::{fingerprint, upstream};
use mtl_core::{
    FeatureSet, LabelSet, Manifest, ManifestBuilder, Outcome, PipelineConfig, Stage, StagingDir,
    TaskKind,
};
use mtl_model::{
    Bundle, BundleMeta, DeviceSpec, EncoderSpec, HeadSpec, LossWeights, ModelSpec, Preprocess,
};

pub use data::{Example, RowTarget};
pub use error::{Error, Result};
pub use report::TrainReport;

/// Bumped when train's output changes for the same input.
pub const STAGE_VERSION: u32 = 6;

/// How the stage runs, besides the config.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Re-run even if the output is current.
    pub force: bool,
    /// Continue from the checkpoint beside the output folder
    /// (`<out>.checkpoint/`), if there is one; without one, start afresh.
    pub resume: bool,
    /// No progress bar and no per-evaluation lines on stderr.
    pub quiet: bool,
    /// Where the model trains. Not part of the fingerprint: the same
    /// config trained on another device is the same stage output.
    pub device: DeviceSpec,
}

/// Runs the stage from the tokenize output `input_dir` into `out_dir`.
pub fn run(cfg: &PipelineConfig, input_dir: &Path, out_dir: &Path, force: bool) -> Result<Outcome> {
    run_with(
        cfg,
        input_dir,
        out_dir,
        RunOptions {
            force,
            ..RunOptions::default()
        },
    )
}

/// [`run`] with every option.
pub fn run_with(
    cfg: &PipelineConfig,
    input_dir: &Path,
    out_dir: &Path,
    opts: RunOptions,
) -> Result<Outcome> {
    let (_, input) = upstream(input_dir, Stage::Tokenize)?;
    let pretrained = pretrained_dir(cfg)?;
    let mut inputs = vec![input];
    if let Some(dir) = &pretrained {
        // The checkpoint initializes the encoder: a new one must retrain.
        for file in ["config.json", "model.safetensors"] {
            inputs.push(mtl_core::InputRef {
                name: format!("pretrained/{file}"),
                fingerprint: mtl_core::hash::sha256_file(&dir.join(file))?,
            });
        }
    }
    let fp = fingerprint(Stage::Train, STAGE_VERSION, cfg, &inputs);
    if !opts.force
        && let Some(m) = Manifest::fresh(out_dir, &fp)
    {
        return Ok(Outcome::Cached(m));
    }
    let device = opts.device.open()?;
    let mut builder = ManifestBuilder::new(Stage::Train, STAGE_VERSION, fp.clone(), inputs);
    let labels = LabelSet::read(&input_dir.join(LabelSet::FILE))?;
    let tokenizer = input_dir.join("tokenizer.json");
    let features_path = input_dir.join(FeatureSet::FILE);
    let features = if features_path.exists() {
        FeatureSet::read(&features_path)?
    } else {
        FeatureSet::default()
    };
    let spec = model_spec(cfg, &labels, &features, &tokenizer, pretrained.as_deref())?;
    let spec = data::with_char_cnn(spec, cfg, input_dir)?;
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
            truncation: cfg.tokenize.truncation,
            stride: cfg.tokenize.stride,
            pad_to: cfg.tokenize.pad_to,
        },
    };
    let save_bundle = |dir: &Path, varmap: &candle_nn::VarMap| -> Result<()> {
        Ok(mtl_model::bundle::save(
            dir, &meta, varmap, &tokenizer, &labels, &features,
        )?)
    };
    let staging = StagingDir::begin(out_dir)?;
    let t_train = Instant::now();
    let selections = score::selections(cfg, &labels)?;
    let word_dropout = word_dropout(cfg, &tokenizer)?;
    let setup = Setup {
        spec: &spec,
        features: &features,
        weights: &weights,
        pad_to: cfg.tokenize.pad_to,
        pretrained: pretrained.as_deref(),
        device: &device,
        selections: &selections,
        word_dropout,
    };
    let checkpoint_dir = checkpoint::dir_for(out_dir);
    let (mut report, varmap) = trainer::fit(
        cfg,
        &setup,
        &train,
        &dev,
        trainer::FitOptions {
            log_path: staging.path("log.jsonl"),
            checkpoint: Some(trainer::Checkpointing {
                dir: checkpoint_dir.clone(),
                fingerprint: fp,
                resume: opts.resume,
                save_model: &save_bundle,
            }),
            quiet: opts.quiet,
            poison_at: None,
        },
    )?;
    let model_dir = staging.path("model");
    save_bundle(&model_dir, &varmap)?;
    builder.timing("train", t_train);
    if cfg.train.tune_thresholds && spec.tasks.iter().any(|h| h.kind == TaskKind::Multilabel) {
        let t0 = Instant::now();
        // Tuned on the bundle as written: exactly what eval and predict load.
        let bundle = Bundle::load(&model_dir, &device)?;
        let (tuned, per_task) = thresholds::tune(
            &bundle.model,
            &features,
            &labels,
            &dev,
            cfg.tokenize.pad_to,
            &device,
        )?;
        tuned.write(&model_dir)?;
        if !opts.quiet {
            for (task, t) in &per_task {
                eprintln!(
                    "  {task}: thresholds tuned on {} dev rows: micro_f1 {:.3} -> {:.3}, macro_f1 {:.3} -> {:.3}",
                    t.dev_rows,
                    t.dev_before.micro_f1,
                    t.dev_after.micro_f1,
                    t.dev_before.macro_f1,
                    t.dev_after.macro_f1
                );
            }
        }
        report.thresholds = per_task;
        builder.timing("thresholds", t0);
    }
    mtl_core::fsio::write_json(&staging.path("report.json"), &report)?;
    let m = builder.finish(&staging, &BTreeMap::new())?;
    staging.commit()?;
    checkpoint::remove(&checkpoint_dir)?;
    Ok(Outcome::Ran(m))
}

/// The pretrained encoder's folder, for `encoder = "bert"`.
fn pretrained_dir(cfg: &PipelineConfig) -> Result<Option<PathBuf>> {
    match (&cfg.model.encoder, &cfg.model.pretrained) {
        (EncoderKind::Bert, Some(raw)) => Ok(Some(cfg.resolve_path("model.pretrained", raw)?)),
        _ => Ok(None),
    }
}

fn model_spec(
    cfg: &PipelineConfig,
    labels: &LabelSet,
    features: &FeatureSet,
    tokenizer: &Path,
    pretrained: Option<&Path>,
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
    let max_positions = cfg.tokenize.pad_to.unwrap_or(cfg.tokenize.max_length);
    let vocab_size = vocab_size.max(max_added);
    let encoder = match pretrained {
        Some(dir) => {
            let e = EncoderSpec::from_pretrained(&cfg.model, dir)?;
            // Both would fail inside candle at the first batch otherwise.
            if vocab_size > e.vocab_size {
                return Err(Error::Data {
                    path: tokenizer.to_path_buf(),
                    message: format!(
                        "the tokenizer has {vocab_size} ids but the pretrained encoder in {} has {}: \
                         tokenize with the model's own tokenizer.json",
                        dir.display(),
                        e.vocab_size
                    ),
                });
            }
            if max_positions > e.max_positions {
                return Err(Error::Data {
                    path: dir.join("config.json"),
                    message: format!(
                        "batches of {max_positions} sub-tokens (tokenize.pad_to or max_length) exceed the encoder's {} positions",
                        e.max_positions
                    ),
                });
            }
            e
        }
        None => EncoderSpec::from_config(&cfg.model, vocab_size, max_positions),
    };
    Ok(ModelSpec {
        encoder,
        tasks: cfg
            .tasks
            .iter()
            .map(|t| {
                Ok(head_spec(&t.name, t.kind, labels, features)?
                    .with_crf(t.crf, labels.get(&t.name)?)
                    .with_pooling(cfg.model.pooling))
            })
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
    /// `tokenize.pad_to`: every batch this wide.
    pub pad_to: Option<usize>,
    /// The pretrained encoder's folder (`encoder = "bert"`): its weights
    /// initialize the encoder.
    pub pretrained: Option<&'a Path>,
    /// Where the model and every batch live.
    pub device: &'a candle_core::Device,
    /// Each task's headline on dev, which selects the kept weights and
    /// drives `patience`; a task left out uses its kind's default.
    pub selections: &'a BTreeMap<String, score::Selection>,
    /// `train.word_dropout`, when on.
    pub word_dropout: Option<batching::WordDropout>,
}

/// `train.word_dropout` over the tokenizer at `path`: its unknown token
/// (`tokenize.special_tokens.unk`) replaces dropped sub-tokens, and its
/// special tokens are never dropped.
fn word_dropout(cfg: &PipelineConfig, path: &Path) -> Result<Option<batching::WordDropout>> {
    let p = cfg.train.word_dropout;
    if p <= 0.0 {
        return Ok(None);
    }
    let err = |message: String| Error::Data {
        path: path.to_path_buf(),
        message,
    };
    let tok = tokenizers::Tokenizer::from_file(path)
        .map_err(|e| err(format!("cannot read the tokenizer: {e}")))?;
    let unk_name = &cfg.tokenize.special_tokens.unk;
    let unk = tok.token_to_id(unk_name).ok_or_else(|| {
        err(format!(
            "train.word_dropout needs the unknown token `{unk_name}` \
             (tokenize.special_tokens.unk), which this tokenizer does not have"
        ))
    })?;
    let mut specials: Vec<u32> = tok
        .get_added_tokens_decoder()
        .into_iter()
        .filter(|(_, t)| t.special)
        .map(|(id, _)| id)
        .collect();
    specials.sort_unstable();
    Ok(Some(batching::WordDropout { p, unk, specials }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trainer::{Checkpointing, FitOptions, fit};
    use candle_nn::VarMap;
    use mtl_core::config::{Sampling, Schedule, Weighting};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::path::PathBuf;

    /// Sentence label: does the row contain token 3? Token tag: is the
    /// token id odd? Both are learnable from the ids alone, and every row
    /// carries both tasks.
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
                    word_ids: None,
                    chars: None,
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
                ..EncoderSpec::default()
            },
            tasks: vec![
                HeadSpec::new("has3", TaskKind::Classification, 2),
                HeadSpec::new("odd", TaskKind::Tagging, 2),
            ],
        }
    }

    struct Run {
        dir: tempfile::TempDir,
        ck: PathBuf,
    }

    impl Run {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let ck = dir.path().join("train.checkpoint");
            Self { dir, ck }
        }

        fn log(&self) -> PathBuf {
            self.dir.path().join("log.jsonl")
        }

        /// Trains on the standard synthetic data; with `resume`, through a
        /// checkpoint folder.
        fn fit(
            &self,
            cfg: &PipelineConfig,
            checkpoint: Option<bool>,
            poison_at: Option<usize>,
        ) -> Result<(TrainReport, VarMap)> {
            self.fit_on(cfg, checkpoint, poison_at, &synthetic(80, 2))
        }

        /// [`Run::fit`] selecting on `dev`.
        fn fit_on(
            &self,
            cfg: &PipelineConfig,
            checkpoint: Option<bool>,
            poison_at: Option<usize>,
            dev: &[Example],
        ) -> Result<(TrainReport, VarMap)> {
            let spec = spec();
            let setup = Setup {
                spec: &spec,
                features: &FeatureSet::default(),
                weights: &LossWeights::default(),
                pad_to: cfg.tokenize.pad_to,
                pretrained: None,
                device: &candle_core::Device::Cpu,
                selections: &BTreeMap::new(),
                // The synthetic rows use ids 2..12: 1 is free for unknown.
                word_dropout: (cfg.train.word_dropout > 0.0).then(|| batching::WordDropout {
                    p: cfg.train.word_dropout,
                    unk: 1,
                    specials: vec![0],
                }),
            };
            let save = |dir: &Path, vm: &VarMap| -> Result<()> {
                std::fs::create_dir_all(dir).unwrap();
                vm.save(dir.join(mtl_model::bundle::WEIGHTS)).unwrap();
                Ok(())
            };
            fit(
                cfg,
                &setup,
                &synthetic(320, 1),
                dev,
                FitOptions {
                    log_path: self.log(),
                    checkpoint: checkpoint.map(|resume| Checkpointing {
                        dir: self.ck.clone(),
                        fingerprint: "fp".into(),
                        resume,
                        save_model: &save,
                    }),
                    quiet: true,
                    poison_at,
                },
            )
        }
    }

    fn weights(vm: &VarMap) -> BTreeMap<String, Vec<f32>> {
        vm.data()
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
                )
            })
            .collect()
    }

    fn log_lines(run: &Run) -> Vec<serde_json::Value> {
        std::fs::read_to_string(run.log())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn loss_falls_and_both_tasks_are_learned() {
        let run = Run::new();
        let (report, _) = run.fit(&config(), None, None).unwrap();
        assert!(
            report.last_epoch_loss < report.first_loss * 0.5,
            "{report:?}"
        );
        assert!(report.best_dev_score["has3"] > 0.9, "{report:?}");
        assert!(report.best_dev_score["odd"] > 0.95, "{report:?}");
        assert_eq!(report.evaluations, 8);
        let log = log_lines(&run);
        assert_eq!(
            log.iter().filter(|l| l.get("lr").is_some()).count(),
            report.steps
        );
        assert!(report.peak_rss_bytes.is_some() || !cfg!(target_os = "linux"));
    }

    /// Each sampling, weighting and schedule option trains both tasks.
    #[test]
    fn every_strategy_finishes_and_improves() {
        type Set = fn(&mut PipelineConfig);
        let variants: [(&str, Set); 7] = [
            ("uncertainty", |c| {
                c.train.weighting = Weighting::Uncertainty
            }),
            ("dwa", |c| c.train.weighting = Weighting::Dwa),
            ("pcgrad", |c| c.train.pcgrad = true),
            ("temperature", |c| c.train.sampling = Sampling::Temperature),
            ("uniform", |c| c.train.sampling = Sampling::Uniform),
            ("annealed", |c| c.train.sampling = Sampling::Annealed),
            ("cosine", |c| c.train.schedule = Schedule::Cosine),
        ];
        for (name, set) in variants {
            let mut cfg = config();
            cfg.train.epochs = 5;
            set(&mut cfg);
            let run = Run::new();
            let (report, _) = run.fit(&cfg, None, None).unwrap();
            assert!(
                report.last_epoch_loss < report.first_loss * 0.6,
                "{name}: {report:?}"
            );
            assert!(report.best_dev_score["has3"] > 0.8, "{name}: {report:?}");
            assert!(report.best_dev_score["odd"] > 0.9, "{name}: {report:?}");
            match name {
                "uncertainty" => {
                    let s = report.log_variances.as_ref().unwrap();
                    // Both losses fell below ½, so both log-variances went
                    // negative (weights above 1).
                    assert!(s.values().all(|&s| s < 0.0), "{s:?}");
                    assert!(report.task_weights.values().all(|&w| w > 1.0));
                }
                "dwa" => {
                    let w = &report.task_weights;
                    assert!((w["has3"] + w["odd"] - 2.0).abs() < 1e-9, "{w:?}");
                    assert!(w.values().all(|&w| w != 1.0), "{w:?}");
                }
                "pcgrad" => assert!(report.pcgrad_projections > 0, "{report:?}"),
                _ => {}
            }
        }
    }

    #[test]
    fn same_seed_same_weights() {
        let mut cfg = config();
        cfg.train.max_steps = Some(10);
        cfg.model.dropout = 0.3;
        let a = Run::new().fit(&cfg, None, None).unwrap().1;
        let b = Run::new().fit(&cfg, None, None).unwrap().1;
        assert_eq!(weights(&a), weights(&b));
        cfg.pipeline.seed += 1;
        let c = Run::new().fit(&cfg, None, None).unwrap().1;
        assert_ne!(weights(&a), weights(&c));
    }

    #[test]
    fn a_zero_encoder_rate_freezes_the_encoder_only() {
        let mut cfg = config();
        cfg.train.max_steps = Some(20);
        cfg.train.encoder_learning_rate = Some(0.0);
        let (model, initial) =
            mtl_model::MultiTaskModel::new(&spec(), cfg.pipeline.seed, &candle_core::Device::Cpu)
                .unwrap();
        drop(model);
        let before = weights(&initial);
        let after = weights(&Run::new().fit(&cfg, None, None).unwrap().1);
        let mut heads_moved = false;
        for (name, w) in &after {
            if name.starts_with("encoder.") {
                assert_eq!(w, &before[name], "{name} moved");
            } else {
                heads_moved |= w != &before[name];
            }
        }
        assert!(heads_moved);
        assert!(after.keys().any(|k| k.starts_with("encoder.")));
        // With a rate, the encoder moves.
        cfg.train.encoder_learning_rate = Some(0.001);
        let after = weights(&Run::new().fit(&cfg, None, None).unwrap().1);
        assert!(
            after
                .iter()
                .any(|(k, w)| k.starts_with("encoder.") && w != &before[k])
        );
    }

    #[test]
    fn without_dev_rows_the_last_weights_are_kept_and_training_rows_never_select() {
        let mut cfg = config();
        cfg.train.patience = Some(1);
        let run = Run::new();
        let (report, varmap) = run.fit_on(&cfg, Some(false), None, &[]).unwrap();
        assert_eq!(report.best_dev_mean, None);
        assert!(report.best_dev_score.is_empty(), "{report:?}");
        assert!(report.selected_on.starts_with("none"), "{report:?}");
        assert_eq!(report.best_step, report.steps);
        assert_eq!(report.evaluations, 0);
        assert!(!report.stopped_early, "patience needs dev rows");
        assert!(
            log_lines(&run).iter().all(|l| l.get("dev_score").is_none()),
            "no line may report a dev score"
        );
        // The kept weights are the last ones: the checkpoint written after
        // the last step holds exactly the returned weights.
        let path = run
            .ck
            .join(checkpoint::MODEL)
            .join(mtl_model::bundle::WEIGHTS);
        let saved = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
        let last = weights(&varmap);
        assert!(!last.is_empty());
        for (k, w) in &last {
            let s = saved[k].flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(&s, w, "{k}");
        }
    }

    #[test]
    fn word_dropout_changes_the_updates_and_still_learns() {
        let plain = weights(&Run::new().fit(&config(), None, None).unwrap().1);
        let mut cfg = config();
        cfg.train.word_dropout = 0.1;
        let (report, vm) = Run::new().fit(&cfg, None, None).unwrap();
        assert_ne!(weights(&vm), plain, "word dropout had no effect");
        assert!(report.best_dev_score["odd"] > 0.9, "{report:?}");
        // Reproducible like every other draw.
        let again = weights(&Run::new().fit(&cfg, None, None).unwrap().1);
        assert_eq!(weights(&vm), again);
    }

    #[test]
    fn evaluation_every_k_steps_and_early_stopping() {
        let mut cfg = config();
        cfg.train.max_steps = Some(10);
        cfg.train.eval_every = Some(4);
        let run = Run::new();
        let (report, _) = run.fit(&cfg, None, None).unwrap();
        let evals: Vec<u64> = log_lines(&run)
            .iter()
            .filter_map(|l| l.get("evaluation").map(|_| l["step"].as_u64().unwrap()))
            .collect();
        assert_eq!(evals, [4, 8, 10]);
        assert_eq!(report.evaluations, 3);

        // A learning rate too small to change predictions: the dev mean
        // never improves on the first evaluation.
        let mut cfg = config();
        cfg.train.learning_rate = 1e-12;
        cfg.train.eval_every = Some(1);
        cfg.train.patience = Some(2);
        let (report, _) = Run::new().fit(&cfg, None, None).unwrap();
        assert!(report.stopped_early, "{report:?}");
        assert_eq!(
            (report.steps, report.evaluations, report.best_step),
            (3, 3, 1)
        );
    }

    #[test]
    fn max_tokens_splits_batches_and_still_learns() {
        let mut cfg = config();
        cfg.train.epochs = 4;
        // 16 rows of up to 8 tokens would be up to 128.
        cfg.train.max_tokens = Some(40);
        let run = Run::new();
        let (report, _) = run.fit(&cfg, None, None).unwrap();
        assert_eq!(report.split_batches, report.steps, "{report:?}");
        assert!(report.best_dev_score["odd"] > 0.9, "{report:?}");
        let chunks: Vec<u64> = log_lines(&run)
            .iter()
            .filter_map(|l| l.get("chunks").and_then(|c| c.as_u64()))
            .collect();
        // ⌈16 rows / ⌊40 / 8⌋⌉ ≥ 4 for full batches of long rows.
        assert!(chunks.iter().all(|&c| c >= 2), "{chunks:?}");
        assert!(chunks.iter().any(|&c| c >= 4), "{chunks:?}");
    }

    #[test]
    fn pad_to_trains_on_fixed_shapes() {
        let mut cfg = config();
        cfg.train.max_steps = Some(30);
        cfg.tokenize.pad_to = Some(16);
        let (report, _) = Run::new().fit(&cfg, None, None).unwrap();
        assert!(report.last_epoch_loss < report.first_loss, "{report:?}");
    }

    #[test]
    fn divergence_is_a_clear_error() {
        let mut cfg = config();
        cfg.train.learning_rate = 1e30;
        cfg.train.grad_clip = None;
        let err = Run::new().fit(&cfg, None, None).map(|r| r.0).unwrap_err();
        assert!(matches!(err, Error::NonFinite { .. }), "{err}");
    }

    #[test]
    fn a_nan_loss_names_step_and_task_and_keeps_the_last_checkpoint() {
        let mut cfg = config();
        cfg.train.max_steps = Some(12);
        cfg.train.eval_every = Some(2);
        let run = Run::new();
        let err = run
            .fit(&cfg, Some(false), Some(5))
            .map(|r| r.0)
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::NonFinite { step: 5, .. }), "{msg}");
        for part in ["step 5", "`has3`", "NaN"] {
            assert!(msg.contains(part), "{part} missing from: {msg}");
        }
        let state: serde_json::Value =
            mtl_core::fsio::read_json(&run.ck.join("state.json")).unwrap();
        assert_eq!(state["counters"]["step"], 4);
        let w = candle_core::safetensors::load(
            run.ck.join("model").join(mtl_model::bundle::WEIGHTS),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        for (name, t) in w {
            let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            assert!(v.iter().all(|x| x.is_finite()), "{name}");
        }
    }

    /// A run interrupted after a checkpoint and resumed ends with the same
    /// weights, bit for bit, as one that ran through — for every piece of
    /// state a checkpoint carries (sampler with caps, AdamW moments, DWA
    /// means, uncertainty log-variances, best weights, dropout).
    #[test]
    fn resuming_from_a_checkpoint_reproduces_the_uninterrupted_run() {
        for weighting in [Weighting::Dwa, Weighting::Uncertainty] {
            let mut cfg = config();
            cfg.train.epochs = 3;
            cfg.train.eval_every = Some(7);
            cfg.train.weighting = weighting;
            cfg.train.sampling = Sampling::Annealed;
            cfg.train.task_caps.insert("odd".into(), 200);
            cfg.model.dropout = 0.2;
            let whole = Run::new();
            let (full_report, full) = whole.fit(&cfg, Some(false), None).unwrap();

            let parts = Run::new();
            let err = parts
                .fit(&cfg, Some(false), Some(30))
                .map(|r| r.0)
                .unwrap_err();
            assert!(matches!(err, Error::NonFinite { step: 30, .. }));
            let (report, resumed) = parts.fit(&cfg, Some(true), None).unwrap();
            assert_eq!(report.resumed_from_step, Some(28));
            assert_eq!(report.steps, full_report.steps);
            assert_eq!(report.best_dev_score, full_report.best_dev_score);
            assert_eq!(report.task_weights, full_report.task_weights);
            assert_eq!(weights(&resumed), weights(&full), "{weighting:?}");
            // The log holds every step once.
            let steps: Vec<u64> = log_lines(&parts)
                .iter()
                .filter(|l| l.get("lr").is_some())
                .map(|l| l["step"].as_u64().unwrap())
                .collect();
            assert_eq!(steps, (0..report.steps as u64).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_checkpoint_of_another_run_is_refused() {
        let mut cfg = config();
        cfg.train.max_steps = Some(4);
        cfg.train.eval_every = Some(2);
        let run = Run::new();
        run.fit(&cfg, Some(false), Some(3))
            .map(|r| r.0)
            .unwrap_err();
        let mut state: serde_json::Value =
            mtl_core::fsio::read_json(&run.ck.join("state.json")).unwrap();
        state["fingerprint"] = "other".into();
        mtl_core::fsio::write_json(&run.ck.join("state.json"), &state).unwrap();
        let err = run
            .fit(&cfg, Some(true), None)
            .map(|r| r.0)
            .unwrap_err()
            .to_string();
        for part in ["state.json", "another config", "--resume"] {
            assert!(err.contains(part), "{part} missing from: {err}");
        }
    }
}
