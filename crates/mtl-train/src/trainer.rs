//! The training loop: sample a batch, weight the task losses, (optionally)
//! project conflicting task gradients, clip, step AdamW on the schedule,
//! evaluate on dev every `eval_every` steps (default: each epoch), keep the
//! best weights, stop early after `patience` evaluations without a better
//! dev average, and checkpoint at each evaluation. Dev is scored on each
//! task's headline metric ([`crate::score`]). Without dev rows nothing is
//! selected: the last weights are kept, and the run says so. Training rows
//! never choose weights.
//!
//! Reproducibility: every random draw of step `s` (task choice and
//! shuffles, dropout masks, PCGrad's task order) comes from its own
//! generator seeded with `(pipeline.seed, s, purpose)`. The same seed, data
//! and thread count give the same weights, bit for bit, and a resumed run
//! needs no generator state: the step number is enough. Parameters are
//! always visited in name order, so sums over them (the gradient norm) do
//! not depend on a hash map's order either.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;
use mtl_core::config::Weighting;
use mtl_core::{PipelineConfig, TaskKind};
use mtl_model::{LossWeights, MultiTaskModel, Targets};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::batching;
use crate::checkpoint;
use crate::data::Example;
use crate::error::{Error, Result};
use crate::optim::{self, AdamW, Grads, Group, Param};
use crate::progress::Progress;
use crate::report::{TrainReport, peak_rss_bytes};
use crate::sampling::{Sampler, SamplerState};
use crate::score;
use crate::weighting::{DwaState, uncertainty_term};
use crate::{Setup, pcgrad};

/// Purposes of the per-step generators.
const RNG_SAMPLE: u64 = 1;
const RNG_DROPOUT: u64 = 2;
const RNG_PCGRAD: u64 = 3;
const RNG_WORD_DROPOUT: u64 = 4;

/// Version of `state.json`'s layout.
const STATE_FORMAT: u32 = 1;

/// The generator for `purpose` at `step`: a splitmix64 mix of the three.
pub(crate) fn step_rng(seed: u64, step: usize, purpose: u64) -> StdRng {
    let mut x = seed
        ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ purpose.wrapping_mul(0xD1B5_4A32_D192_ED03);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(x ^ (x >> 31))
}

/// How a run checkpoints and whether it resumes.
pub struct Checkpointing<'a> {
    pub dir: PathBuf,
    /// The stage fingerprint: a checkpoint of another config or input is
    /// refused.
    pub fingerprint: String,
    pub resume: bool,
    /// Writes a complete model bundle of `varmap` into the folder given.
    pub save_model: &'a dyn Fn(&Path, &VarMap) -> Result<()>,
}

pub struct FitOptions<'a> {
    /// Where `log.jsonl` goes.
    pub log_path: PathBuf,
    pub checkpoint: Option<Checkpointing<'a>>,
    pub quiet: bool,
    /// Test hook: pretend the first task's loss is NaN at this step.
    pub poison_at: Option<usize>,
}

/// Counters that a checkpoint carries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counters {
    step: usize,
    /// The current epoch, 1-based.
    epoch: usize,
    /// Steps taken in the current epoch.
    in_epoch: usize,
    epoch_loss_sum: f64,
    epoch_loss_steps: usize,
    last_epoch_loss: f32,
    first_loss: Option<f32>,
    tokens: usize,
    seconds: f64,
    evaluations: usize,
    evals_since_best: usize,
    best: Option<Best>,
    pcgrad_projections: usize,
    split_batches: usize,
    stopped_early: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Best {
    mean: f64,
    step: usize,
    epoch: usize,
    scores: BTreeMap<String, f64>,
}

#[derive(Serialize, Deserialize)]
struct State {
    format: u32,
    fingerprint: String,
    total_steps: usize,
    optimizer_steps: usize,
    counters: Counters,
    sampler: SamplerState,
    dwa: DwaState,
}

/// One task's learned log-variance (uncertainty weighting).
struct LogVar {
    task: String,
    var: Var,
    regression: bool,
}

/// What one step did.
struct StepOut {
    /// Unweighted loss per task (averaged over chunks by rows).
    parts: BTreeMap<String, f32>,
    /// The weighted objective.
    objective: f64,
    tokens: usize,
    chunks: usize,
    projections: usize,
    grad_norm: f64,
}

struct Trainer<'a> {
    cfg: &'a PipelineConfig,
    setup: &'a Setup<'a>,
    train: &'a [Example],
    device: Device,
    model: MultiTaskModel,
    varmap: VarMap,
    opt: AdamW,
    /// How many of `opt.params()` are model parameters (the rest are
    /// log-variances).
    n_model: usize,
    log_vars: Vec<LogVar>,
    sampler: Sampler,
    dwa: DwaState,
    tasks: Vec<String>,
    total_steps: usize,
    c: Counters,
    best_weights: Option<Vec<Tensor>>,
}

/// Trains on `train`, selects on `dev` and returns the report with the
/// model's variables set to the best weights (the last ones when `dev` is
/// empty).
pub fn fit(
    cfg: &PipelineConfig,
    setup: &Setup,
    train: &[Example],
    dev: &[Example],
    opts: FitOptions,
) -> Result<(TrainReport, VarMap)> {
    let mut t = Trainer::new(cfg, setup, train)?;
    let resumed_from = match &opts.checkpoint {
        Some(ck) if ck.resume => t.resume(ck, &opts.log_path)?,
        _ => None,
    };
    if resumed_from.is_none() {
        std::fs::File::create(&opts.log_path)
            .map_err(|e| mtl_core::CoreError::io(&opts.log_path, e))?;
    }
    let mut log = Log::append(&opts.log_path)?;
    let mut progress = Progress::new(t.total_steps, t.c.step, opts.quiet);
    if let Some(step) = resumed_from {
        progress.line(&format!("  resumed at step {step}/{}", t.total_steps));
    }
    let session_start = Instant::now();
    let seconds_before = t.c.seconds;
    let steps_per_epoch = t.sampler.steps_per_epoch();
    let has_dev = !dev.is_empty();
    if !has_dev {
        progress.line(
            "  no dev rows: the last weights are kept (nothing to select on; train.patience \
             has no effect)",
        );
    }

    while t.c.step < t.total_steps && !t.c.stopped_early {
        if t.c.in_epoch == 0 {
            t.sampler.start_epoch(t.c.epoch);
            let p: BTreeMap<&str, f64> = t
                .tasks
                .iter()
                .map(String::as_str)
                .zip(t.sampler.probabilities())
                .collect();
            log.write(serde_json::json!({
                "epoch": t.c.epoch,
                "step": t.c.step,
                "sampling": p,
                "temperature": t.sampler.current_temperature(),
            }))?;
        }
        let step = t.c.step;
        let mut rng = step_rng(cfg.pipeline.seed, step, RNG_SAMPLE);
        let drawn = t.sampler.next_batch(&mut rng);
        // No batch: every task has reached its cap for this epoch.
        let stepped = drawn.is_some();
        let mut epoch_done = !stepped;
        if let Some((task, idx)) = drawn {
            let lr = optim::lr_factor(cfg.train.schedule, cfg.train.warmup, step, t.total_steps);
            let out = t.step(&idx, lr, opts.poison_at == Some(step))?;
            if out.is_none() {
                log.write(serde_json::json!({
                    "step": step,
                    "epoch": t.c.epoch,
                    "task": t.tasks[task],
                    "skipped": "no labelled position in the batch",
                }))?;
            }
            if let Some(out) = &out {
                t.c.first_loss.get_or_insert(out.objective as f32);
                t.c.epoch_loss_sum += out.objective;
                t.c.epoch_loss_steps += 1;
                t.c.tokens += out.tokens;
                t.c.pcgrad_projections += out.projections;
                t.c.split_batches += usize::from(out.chunks > 1);
                for (task, &l) in &out.parts {
                    t.dwa.add(task, f64::from(l));
                }
                log.write(serde_json::json!({
                    "step": step,
                    "epoch": t.c.epoch,
                    "task": t.tasks[task],
                    "rows": idx.len(),
                    "loss": out.objective,
                    "tasks": out.parts,
                    "lr": cfg.train.learning_rate * lr,
                    "grad_norm": out.grad_norm,
                    "chunks": out.chunks,
                }))?;
            }
            let seconds = seconds_before + session_start.elapsed().as_secs_f64();
            let parts = out.map(|o| o.parts).unwrap_or_default();
            progress.step(&parts, t.c.tokens as f64 / seconds.max(1e-9));
            t.c.step += 1;
            t.c.in_epoch += 1;
            epoch_done |= t.c.in_epoch >= steps_per_epoch;
        } else if t.c.in_epoch == 0 {
            return Err(Error::Empty(format!(
                "no task can be sampled in epoch {}",
                t.c.epoch
            )));
        }
        epoch_done |= t.c.step >= t.total_steps;
        let epoch = t.c.epoch;
        if epoch_done {
            t.dwa.end_epoch();
            t.c.last_epoch_loss = (t.c.epoch_loss_sum / t.c.epoch_loss_steps.max(1) as f64) as f32;
            t.c.epoch_loss_sum = 0.0;
            t.c.epoch_loss_steps = 0;
            t.c.epoch += 1;
            t.c.in_epoch = 0;
        }
        let evaluate = match cfg.train.eval_every {
            Some(k) => stepped && (t.c.step % k == 0 || t.c.step >= t.total_steps),
            None => epoch_done,
        };
        if !evaluate {
            continue;
        }
        if !has_dev {
            if let Some(ck) = &opts.checkpoint {
                log.flush()?;
                t.c.seconds = seconds_before + session_start.elapsed().as_secs_f64();
                t.write_checkpoint(ck, &opts.log_path)?;
            }
            continue;
        }
        let (scores, mean, better) = t.evaluate(dev, epoch)?;
        let seconds = seconds_before + session_start.elapsed().as_secs_f64();
        let train_loss = if epoch_done {
            t.c.last_epoch_loss
        } else {
            (t.c.epoch_loss_sum / t.c.epoch_loss_steps.max(1) as f64) as f32
        };
        let metric_of = |task: &str| headline_name(setup, task);
        progress.line(&format!(
            "  epoch {epoch:>3}  step {:>5}/{}  loss {train_loss:.4}  dev {}{}  {:.0} tok/s",
            t.c.step,
            t.total_steps,
            scores
                .iter()
                .map(|(task, a)| format!("{task} {} {a:.3}", metric_of(task)))
                .collect::<Vec<_>>()
                .join(", "),
            if better { "  *" } else { "" },
            t.c.tokens as f64 / seconds.max(1e-9),
        ));
        log.write(serde_json::json!({
            "evaluation": t.c.evaluations,
            "epoch": epoch,
            "step": t.c.step,
            "train_loss": train_loss,
            "dev_score": scores,
            "dev_mean": mean,
            "best": better,
            "task_weights": t.task_weights()?.tasks,
        }))?;
        if t.c.stopped_early {
            progress.line(&format!(
                "  stopping early: no better dev average in {} evaluations",
                t.c.evals_since_best
            ));
        }
        if let Some(ck) = &opts.checkpoint {
            log.flush()?;
            t.c.seconds = seconds;
            t.write_checkpoint(ck, &opts.log_path)?;
        }
    }
    log.flush()?;
    progress.finish();
    let seconds = seconds_before + session_start.elapsed().as_secs_f64();
    if t.c.step == 0 {
        return Err(Error::Empty("no training step ran".into()));
    }
    let best = match t.c.best.clone() {
        Some(best) => best,
        None if !has_dev => Best {
            mean: f64::NAN,
            step: t.c.step,
            epoch: t.c.epoch - usize::from(t.c.in_epoch == 0),
            scores: BTreeMap::new(),
        },
        None => return Err(Error::Empty("no evaluation ran".into())),
    };
    if let Some(w) = &t.best_weights {
        for (p, w) in t.opt.params()[..t.n_model].iter().zip(w) {
            p.var.set(w)?;
        }
    }
    let weights = t.task_weights()?;
    let report = TrainReport {
        parameters: t.opt.params()[..t.n_model]
            .iter()
            .map(|p| p.var.elem_count())
            .sum(),
        steps: t.c.step,
        epochs: if t.c.in_epoch == 0 {
            t.c.epoch - 1
        } else {
            t.c.epoch
        },
        steps_per_epoch,
        best_epoch: best.epoch,
        best_step: best.step,
        best_dev_score: best.scores,
        best_dev_mean: has_dev.then_some(best.mean),
        selected_on: if has_dev {
            "dev".into()
        } else {
            "none: no dev rows, the last weights are kept".into()
        },
        dev_metric: setup
            .spec
            .tasks
            .iter()
            .map(|h| (h.name.clone(), headline_name(setup, &h.name)))
            .collect(),
        evaluations: t.c.evaluations,
        stopped_early: t.c.stopped_early,
        resumed_from_step: resumed_from,
        seconds,
        tokens_per_second: t.c.tokens as f64 / seconds.max(1e-9),
        first_loss: t.c.first_loss.unwrap_or(f32::NAN),
        last_epoch_loss: t.c.last_epoch_loss,
        task_weights: weights.tasks,
        log_variances: (!t.log_vars.is_empty())
            .then(|| {
                t.log_vars
                    .iter()
                    .map(|lv| Ok((lv.task.clone(), scalar(&lv.var)?)))
                    .collect::<Result<_>>()
            })
            .transpose()?,
        pcgrad_projections: t.c.pcgrad_projections,
        split_batches: t.c.split_batches,
        peak_rss_bytes: peak_rss_bytes(),
        thresholds: BTreeMap::new(),
    };
    Ok((report, t.varmap))
}

/// The name of `task`'s selection headline, as eval names it.
fn headline_name(setup: &Setup, task: &str) -> String {
    match setup.selections.get(task) {
        Some(s) => s.headline.name(),
        None => setup.spec.head(task).map_or("score".into(), |h| {
            mtl_metrics::headline::known_names(h.kind)[0].to_string()
        }),
    }
}

fn scalar(v: &Var) -> Result<f64> {
    Ok(f64::from(v.as_tensor().flatten_all()?.to_vec1::<f32>()?[0]))
}

impl<'a> Trainer<'a> {
    fn new(cfg: &'a PipelineConfig, setup: &'a Setup<'a>, train: &'a [Example]) -> Result<Self> {
        let device = setup.device.clone();
        let tc = &cfg.train;
        let (model, varmap) = match setup.pretrained {
            Some(dir) => {
                MultiTaskModel::with_pretrained(setup.spec, cfg.pipeline.seed, &device, dir)?
            }
            None => MultiTaskModel::new(setup.spec, cfg.pipeline.seed, &device)?,
        };
        let mut named: Vec<(String, Var)> = varmap
            .data()
            .lock()
            .map_err(|_| Error::Empty("the model's variables are unreadable".into()))?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let n_model = named.len();
        let mut params: Vec<Param> = named
            .into_iter()
            .map(|(name, var)| Param {
                group: Group::of(&name),
                name,
                var,
            })
            .collect();
        let mut log_vars = Vec::new();
        if tc.weighting == Weighting::Uncertainty {
            for h in &setup.spec.tasks {
                let var = Var::zeros(1, candle_core::DType::F32, &device)?;
                params.push(Param {
                    name: format!("log_var.{}", h.name),
                    var: var.clone(),
                    group: Group::LossWeights,
                });
                log_vars.push(LogVar {
                    task: h.name.clone(),
                    var,
                    regression: h.kind == TaskKind::Regression,
                });
            }
        }
        let opt = AdamW::new(params, tc.weight_decay)?;
        let tasks: Vec<String> = setup.spec.tasks.iter().map(|h| h.name.clone()).collect();
        let sampler = Sampler::new(train, &tasks, tc);
        let total_steps = tc
            .max_steps
            .unwrap_or(usize::MAX)
            .min(sampler.steps_per_epoch().saturating_mul(tc.epochs))
            .max(1);
        Ok(Self {
            cfg,
            setup,
            train,
            device,
            model,
            varmap,
            opt,
            n_model,
            log_vars,
            sampler,
            dwa: DwaState::default(),
            tasks,
            total_steps,
            c: Counters {
                epoch: 1,
                ..Counters::default()
            },
            best_weights: None,
        })
    }

    /// Scores the model on `select_on`, keeps the weights if the mean
    /// score is the best so far, and counts evaluations for `patience`.
    fn evaluate(
        &mut self,
        select_on: &[Example],
        epoch: usize,
    ) -> Result<(BTreeMap<String, f64>, f64, bool)> {
        let scores = score::dev_scores(
            &self.model,
            self.setup.features,
            select_on,
            self.setup.selections,
            64,
            self.setup.pad_to,
            &self.device,
        )?;
        let mean = score::selection_mean(&scores, self.setup.selections);
        self.c.evaluations += 1;
        let better = self.c.best.as_ref().is_none_or(|b| mean > b.mean);
        if better {
            self.best_weights = Some(self.model_weights()?);
            self.c.best = Some(Best {
                mean,
                step: self.c.step,
                epoch,
                scores: scores.clone(),
            });
            self.c.evals_since_best = 0;
        } else {
            self.c.evals_since_best += 1;
        }
        if self
            .cfg
            .train
            .patience
            .is_some_and(|p| self.c.evals_since_best >= p)
        {
            self.c.stopped_early = true;
        }
        Ok((scores, mean, better))
    }

    /// Deep copies of the model parameters, in parameter order.
    fn model_weights(&self) -> Result<Vec<Tensor>> {
        Ok(self.opt.params()[..self.n_model]
            .iter()
            .map(|p| p.var.as_tensor().copy().map(|t| t.detach()))
            .collect::<candle_core::Result<_>>()?)
    }

    /// The task weights of the current step: the configured ones, DWA's,
    /// or uncertainty's `c · exp(-s)`; class weights always.
    fn task_weights(&self) -> Result<LossWeights> {
        let mut w = self.setup.weights.clone();
        match self.cfg.train.weighting {
            Weighting::Static => {}
            Weighting::Dwa => {
                w.tasks = self.dwa.weights(&self.tasks, self.cfg.train.temperature);
            }
            Weighting::Uncertainty => {
                w.tasks = self
                    .log_vars
                    .iter()
                    .map(|lv| {
                        Ok((
                            lv.task.clone(),
                            uncertainty_term(scalar(&lv.var)?, 0.0, lv.regression).weight,
                        ))
                    })
                    .collect::<Result<_>>()?;
            }
        }
        Ok(w)
    }

    /// Gradients of `loss` for every parameter.
    fn grads_of(&self, loss: &Tensor) -> Result<Grads> {
        let store = loss.backward()?;
        Ok(self
            .opt
            .params()
            .iter()
            .map(|p| store.get(p.var.as_tensor()).cloned())
            .collect())
    }

    /// One optimizer step on rows `idx`; `None` when no row had a label
    /// that counts (nothing to learn from).
    fn step(&mut self, idx: &[usize], lr_factor: f64, poison: bool) -> Result<Option<StepOut>> {
        let cfg = self.cfg;
        let tc = &cfg.train;
        let step = self.c.step;
        let seed = self.cfg.pipeline.seed;
        let weights = self.task_weights()?;
        let train = self.train;
        let chunks = batching::split_by_tokens(
            idx,
            |i| train[i].input_ids.len(),
            tc.max_tokens,
            self.setup.pad_to,
        );
        let mut dropout = step_rng(seed, step, RNG_DROPOUT);
        let mut pc_rng = step_rng(seed, step, RNG_PCGRAD);
        let mut word_rng = step_rng(seed, step, RNG_WORD_DROPOUT);
        let mut total: Grads = vec![None; self.opt.params().len()];
        let mut parts: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        let mut objective = 0f64;
        let (mut tokens, mut projections) = (0, 0);
        for chunk in &chunks {
            let share = chunk.len() as f64 / idx.len() as f64;
            let batch = batching::training_batch(
                train,
                chunk,
                self.setup.features,
                self.setup.pad_to,
                &self.device,
                self.setup.word_dropout.as_ref().map(|d| (d, &mut word_rng)),
            )?;
            tokens += batch.lengths.iter().sum::<usize>();
            let targets = batching::targets(train, chunk, self.setup.spec, &batch);
            let (grads, chunk_parts, chunk_objective) = if tc.pcgrad && targets.len() >= 2 {
                let (g, p, o, n) =
                    self.pcgrad_grads(&batch, &targets, &weights, &mut dropout, &mut pc_rng)?;
                projections += n;
                (g, p, o)
            } else {
                match self
                    .model
                    .loss(&batch, &targets, &weights, Some(&mut dropout))?
                {
                    Some((loss, p)) => {
                        let o = f64::from(loss.to_scalar::<f32>()?);
                        (self.grads_of(&loss)?, p, o)
                    }
                    None => continue,
                }
            };
            for (task, &l) in &chunk_parts {
                let value = if poison { f32::NAN } else { l };
                if !value.is_finite() {
                    return Err(Error::NonFinite {
                        step,
                        what: format!("the loss of task `{task}`"),
                        value: f64::from(value),
                    });
                }
                let e = parts.entry(task.clone()).or_default();
                e.0 += share * f64::from(l);
                e.1 += share;
            }
            if !chunk_objective.is_finite() {
                return Err(Error::NonFinite {
                    step,
                    what: "the weighted loss".into(),
                    value: chunk_objective,
                });
            }
            objective += share * chunk_objective;
            add_scaled(&mut total, grads, share)?;
        }
        if parts.is_empty() {
            return Ok(None);
        }
        let parts: BTreeMap<String, f32> = parts
            .into_iter()
            .map(|(t, (sum, w))| (t, (sum / w) as f32))
            .collect();
        // Uncertainty: the s_t part of the objective and its gradient.
        let n_model = self.n_model;
        for (k, lv) in self.log_vars.iter().enumerate() {
            let Some(&l) = parts.get(&lv.task) else {
                continue;
            };
            let term = uncertainty_term(scalar(&lv.var)?, f64::from(l), lv.regression);
            objective += 0.5 * scalar(&lv.var)?;
            total[n_model + k] = Some(Tensor::new(&[term.grad_s as f32], &self.device)?);
        }
        let grad_norm = match tc.grad_clip {
            Some(clip) => optim::clip_grad_norm(&mut total, clip)?,
            None => optim::grad_norm(&total)?,
        };
        if !grad_norm.is_finite() {
            return Err(Error::NonFinite {
                step,
                what: "the gradient norm".into(),
                value: grad_norm,
            });
        }
        let head_lr = tc.learning_rate * lr_factor;
        let encoder_lr = tc.encoder_learning_rate.unwrap_or(tc.learning_rate) * lr_factor;
        self.opt.step(&total, |g| match g {
            Group::Encoder => encoder_lr,
            Group::Heads | Group::LossWeights => head_lr,
        })?;
        Ok(Some(StepOut {
            parts,
            objective,
            tokens,
            chunks: chunks.len(),
            projections,
            grad_norm,
        }))
    }

    /// PCGrad on one batch: one loss and backward pass per task (same
    /// dropout masks for all), projected and summed (see [`pcgrad`]).
    fn pcgrad_grads(
        &self,
        batch: &mtl_model::Batch,
        targets: &BTreeMap<String, Targets>,
        weights: &LossWeights,
        dropout: &mut StdRng,
        order: &mut StdRng,
    ) -> Result<(Grads, BTreeMap<String, f32>, f64, usize)> {
        let start = dropout.clone();
        let mut per_task: Vec<Grads> = Vec::new();
        let mut parts = BTreeMap::new();
        let mut objective = 0f64;
        for (task, target) in targets {
            let mut rng = start.clone();
            let one = BTreeMap::from([(task.clone(), target.clone())]);
            let Some((loss, p)) = self.model.loss(batch, &one, weights, Some(&mut rng))? else {
                continue;
            };
            objective += f64::from(loss.to_scalar::<f32>()?);
            parts.extend(p);
            per_task.push(self.grads_of(&loss)?);
            *dropout = rng;
        }
        let n = self.opt.params().len();
        let present: Vec<bool> = (0..n)
            .map(|i| per_task.iter().any(|g| g[i].is_some()))
            .collect();
        let sizes: Vec<usize> = self
            .opt
            .params()
            .iter()
            .map(|p| p.var.elem_count())
            .collect();
        let flat: Vec<Vec<f32>> = per_task
            .iter()
            .map(|g| flatten(g, &sizes))
            .collect::<Result<_>>()?;
        let (sum, projections) = pcgrad::combine(&flat, order);
        let mut out: Grads = vec![None; n];
        let mut offset = 0;
        for (i, p) in self.opt.params().iter().enumerate() {
            let size = sizes[i];
            if present[i] {
                out[i] = Some(Tensor::from_slice(
                    &sum[offset..offset + size],
                    p.var.shape(),
                    &self.device,
                )?);
            }
            offset += size;
        }
        Ok((out, parts, objective, projections))
    }

    fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut t = self.opt.state_tensors();
        if let Some(best) = &self.best_weights {
            for (p, w) in self.opt.params()[..self.n_model].iter().zip(best) {
                t.insert(format!("best.{}", p.name), w.clone());
            }
        }
        for lv in &self.log_vars {
            t.insert(format!("log_var.{}", lv.task), lv.var.as_tensor().clone());
        }
        Ok(t)
    }

    fn write_checkpoint(&self, ck: &Checkpointing, log: &Path) -> Result<()> {
        let state = State {
            format: STATE_FORMAT,
            fingerprint: ck.fingerprint.clone(),
            total_steps: self.total_steps,
            optimizer_steps: self.opt.steps(),
            counters: self.c.clone(),
            sampler: self.sampler.state().clone(),
            dwa: self.dwa.clone(),
        };
        let tensors = self.state_tensors()?;
        let save_model = |dir: &Path| (ck.save_model)(dir, &self.varmap);
        checkpoint::write(
            &ck.dir,
            checkpoint::Contents {
                state: &state,
                tensors: &tensors,
                log,
                save_model: &save_model,
            },
        )
    }

    /// Continues from the checkpoint in `ck.dir` if there is one; returns
    /// the step it resumed at.
    fn resume(&mut self, ck: &Checkpointing, log_path: &Path) -> Result<Option<usize>> {
        let Some(loaded) = checkpoint::read::<State>(&ck.dir, &self.device)? else {
            return Ok(None);
        };
        let state_path = ck.dir.join(checkpoint::STATE_JSON);
        let bad = |message: String| Error::Data {
            path: state_path.clone(),
            message,
        };
        let s = &loaded.state;
        if s.format != STATE_FORMAT {
            return Err(bad(format!(
                "checkpoint format {} is not {STATE_FORMAT}; delete {} or run without --resume",
                s.format,
                ck.dir.display()
            )));
        }
        if s.fingerprint != ck.fingerprint {
            return Err(bad(format!(
                "this checkpoint belongs to another config or input (fingerprint {} ≠ {}); \
                 delete {} or run without --resume",
                short(&s.fingerprint),
                short(&ck.fingerprint),
                ck.dir.display()
            )));
        }
        if s.total_steps != self.total_steps {
            return Err(bad(format!(
                "planned {} steps, this run {}",
                s.total_steps, self.total_steps
            )));
        }
        let weights = loaded.weights();
        self.varmap.load(&weights).map_err(|e| Error::Data {
            path: weights.clone(),
            message: e.to_string(),
        })?;
        self.opt
            .load_state(&loaded.tensors, s.optimizer_steps)
            .map_err(&bad)?;
        let tensor = |key: String| {
            loaded
                .tensors
                .get(&key)
                .cloned()
                .ok_or_else(|| bad(format!("no `{key}` in {}", checkpoint::STATE_TENSORS)))
        };
        for lv in &self.log_vars {
            lv.var.set(&tensor(format!("log_var.{}", lv.task))?)?;
        }
        if s.counters.best.is_some() {
            self.best_weights = Some(
                self.opt.params()[..self.n_model]
                    .iter()
                    .map(|p| tensor(format!("best.{}", p.name)))
                    .collect::<Result<_>>()?,
            );
        }
        let loaded_log = loaded.log();
        let State {
            counters,
            sampler,
            dwa,
            ..
        } = loaded.state;
        self.sampler.restore(sampler).map_err(&bad)?;
        self.dwa = dwa;
        self.c = counters;
        let log = std::fs::read(&loaded_log).unwrap_or_default();
        mtl_core::fsio::atomic_write(log_path, &log)?;
        Ok(Some(self.c.step))
    }
}

fn short(fp: &str) -> &str {
    &fp[..12.min(fp.len())]
}

/// `acc += share · g`, parameter by parameter.
fn add_scaled(acc: &mut Grads, g: Grads, share: f64) -> Result<()> {
    for (a, g) in acc.iter_mut().zip(g) {
        let Some(g) = g else { continue };
        let g = if share == 1.0 {
            g
        } else {
            g.affine(share, 0.0)?
        };
        *a = Some(match a.take() {
            Some(prev) => (prev + g)?,
            None => g,
        });
    }
    Ok(())
}

/// One task's gradients as one vector (zeros where it has none).
fn flatten(g: &Grads, sizes: &[usize]) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(sizes.iter().sum());
    for (g, &size) in g.iter().zip(sizes) {
        match g {
            Some(t) => out.extend(t.flatten_all()?.to_vec1::<f32>()?),
            None => out.extend(std::iter::repeat_n(0.0, size)),
        }
    }
    Ok(out)
}

/// `log.jsonl`, one JSON object a line.
struct Log {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl Log {
    fn append(path: &Path) -> Result<Self> {
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| mtl_core::CoreError::io(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: std::io::BufWriter::new(f),
        })
    }

    fn write(&mut self, v: serde_json::Value) -> Result<()> {
        writeln!(self.out, "{v}").map_err(|e| mtl_core::CoreError::io(&self.path, e).into())
    }

    fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| mtl_core::CoreError::io(&self.path, e).into())
    }
}
