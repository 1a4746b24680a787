//! `cargo xtask bench train`: training throughput of the `bilstm` encoder
//! on the shipped EWT recipe (its tagging tasks, character CNN, word
//! dropout, early stopping), `mtl-train` as a release binary side by side
//! with the same model, data, batching and hyperparameters in PyTorch
//! (`bench/peers/train_torch.py`), both on the same number of CPU threads.
//!
//! Under `bench/out/train/`: `pipeline.toml` (`pipelines/ewt.toml` with its
//! runs under `runs/` here and `train.epochs` set), the clean, split and
//! tokenize stages run by the pipeline runner into `runs/ewt/` (cached
//! between runs), mtl's training in `runs/ewt/train/` and its scores in
//! `runs/ewt/eval/`, the peer's in `runs/ewt/train-pytorch/`, each child's
//! stdout and stderr in `logs/`, the peer's input as `peer-spec.json`, and
//! the table as `results.json`.
//!
//! Both tools count what `mtl-train` counts: tokens are the unpadded
//! sub-tokens (special tokens included) of every batch that took a step,
//! over the seconds of the whole training loop (its per-epoch dev
//! evaluations and checkpoints included, loading and saving the final
//! model not). Each tool times its own loop; wall time and peak RSS are
//! measured from outside, as for the other benchmarks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use mtl_core::config::{EncoderKind, Weighting};
use mtl_core::{LabelSet, PipelineConfig, Stage, TaskKind};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::measure::{self, Measured};
use super::results::{read_report, table};
use super::tokenize::data_dir;
use super::{
    build_binaries, cpus, ensure_venv, fresh_dir, load_average, os, progress, rel,
    rewrite_pipeline, run_peer, run_stages, stage_command, write_pipeline,
};
use crate::pipeline::workspace_root;

pub const PIPELINE: &str = "pipelines/ewt.toml";
pub const PEER_SCRIPT: &str = "bench/peers/train_torch.py";
pub const MTL_TRAIN: &str = "mtl-train";
pub const PYTORCH: &str = "pytorch";
const PEER_PACKAGES: [&str; 3] = ["torch", "pyarrow", "numpy"];
const PEER_CHECK: &str = "import torch, pyarrow, numpy";
/// `mtl_train::sampling::BUCKET_BATCHES`: batches' worth of rows sorted by
/// length together.
const BUCKET_BATCHES: usize = 32;
/// The batch size of mtl-train's dev evaluation (`trainer.rs`).
const EVAL_BATCH_SIZE: usize = 64;

#[derive(Debug, Clone)]
pub struct TrainBench {
    /// For the pipeline's `$DATA_DIR`; else `$MTL_DATA_DIR`, else
    /// `../shared/datasets` next to the workspace.
    pub data_dir: Option<PathBuf>,
    /// Replaces the pipeline's `train.epochs`.
    pub epochs: usize,
    pub skip_peer: bool,
    pub quiet: bool,
}

impl Default for TrainBench {
    fn default() -> Self {
        Self {
            data_dir: None,
            epochs: 1,
            skip_peer: false,
            quiet: false,
        }
    }
}

/// `bench/out/train` of the workspace.
pub fn train_dir(root: &Path) -> PathBuf {
    root.join("bench/out/train")
}

/// What the benchmark reads from a training report: mtl-train's
/// `report.json` and the peer's share these keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TrainReport {
    pub parameters: u64,
    pub steps: u64,
    pub epochs: u64,
    pub seconds: f64,
    pub tokens_per_second: f64,
    pub best_dev_score: BTreeMap<String, f64>,
    pub first_loss: Option<f64>,
    pub last_epoch_loss: Option<f64>,
    /// `train.patience` ended the run before its last epoch.
    #[serde(default)]
    pub stopped_early: bool,
    /// The peer's; mtl's report gives the rate and the seconds only.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// The peer's, with its best weights; mtl's come from mtl-eval.
    #[serde(default)]
    pub test_score: BTreeMap<String, f64>,
}

impl TrainReport {
    pub fn from_file(path: &Path) -> Result<Self> {
        read_report(path, Self::from_json)
    }

    pub fn from_json(text: &str) -> Result<Self> {
        Ok(serde_json::from_str(text)?)
    }

    pub fn tokens(&self) -> u64 {
        self.tokens
            .unwrap_or_else(|| (self.tokens_per_second * self.seconds).round() as u64)
    }
}

/// Per task, the test split's accuracy from mtl-eval's `metrics.json`.
pub fn test_accuracy(metrics: &str) -> Result<BTreeMap<String, f64>> {
    split_accuracy(metrics, "test")
}

/// Per task scored on `split`, its accuracy from mtl-eval's `metrics.json`.
pub fn split_accuracy(metrics: &str, split: &str) -> Result<BTreeMap<String, f64>> {
    let v: serde_json::Value = serde_json::from_str(metrics)?;
    let tasks = v["tasks"].as_object().context("no `tasks` object")?;
    tasks
        .iter()
        .filter(|(_, t)| !t["splits"][split].is_null())
        .map(|(name, t)| {
            let acc = t["splits"][split]["metrics"]["accuracy"]
                .as_f64()
                .with_context(|| format!("no `tasks.{name}.splits.{split}.metrics.accuracy`"))?;
            Ok((name.clone(), acc))
        })
        .collect()
}

/// The largest accuracy difference, over every task and split, at which
/// the peer running mtl-train's weights still counts as the same function:
/// the two sum in other orders, which may flip an argmax between two
/// near-equal scores on a few of the tens of thousands of words. A model
/// that differs in any part misses by points (a zero padding character
/// instead of mtl's learned one costs about 10).
pub const SAME_FUNCTION_TOLERANCE: f64 = 1e-3;

/// The peer's model with mtl-train's trained weights loaded
/// (`train_torch.py --bundle`), scored on dev and test against mtl-eval's
/// scores of the same weights: equal parameter counts say the two models
/// have the same shapes, equal accuracies that they compute the same
/// function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SameFunction {
    /// The peer's trainable parameters, mtl's weights loaded into them.
    pub parameters: u64,
    /// Largest `|peer - mtl-eval|` accuracy over every task on dev and test.
    pub max_difference: f64,
    /// `split task` scored by one side only.
    pub unmatched: Vec<String>,
}

impl SameFunction {
    /// The comparison of the peer's `bundle.json` (`{split}_score` per
    /// split) with mtl-eval's accuracies per split.
    pub fn compare(
        peer: &serde_json::Value,
        mtl: &BTreeMap<&str, BTreeMap<String, f64>>,
    ) -> Result<Self> {
        let parameters = peer["parameters"]
            .as_u64()
            .context("bundle.json: no `parameters`")?;
        let mut max_difference = 0f64;
        let mut unmatched = Vec::new();
        for (split, ours) in mtl {
            let theirs: BTreeMap<String, f64> =
                serde_json::from_value(peer[format!("{split}_score")].clone())
                    .with_context(|| format!("bundle.json: `{split}_score`"))?;
            for task in ours.keys().chain(theirs.keys()) {
                match (ours.get(task), theirs.get(task)) {
                    (Some(a), Some(b)) => max_difference = max_difference.max((a - b).abs()),
                    _ => unmatched.push(format!("{split} {task}")),
                }
            }
        }
        unmatched.sort();
        unmatched.dedup();
        Ok(Self {
            parameters,
            max_difference,
            unmatched,
        })
    }

    /// Every task scored by both sides, within [`SAME_FUNCTION_TOLERANCE`].
    pub fn holds(&self) -> bool {
        self.unmatched.is_empty() && self.max_difference <= SAME_FUNCTION_TOLERANCE
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    pub tool: String,
    pub epochs: u64,
    pub steps: u64,
    pub tokens: u64,
    /// The tool's own training-loop seconds.
    pub train_s: f64,
    pub tokens_per_s: f64,
    /// The whole process, from outside.
    pub wall_s: f64,
    pub peak_rss_mib: f64,
    pub parameters: u64,
    pub first_loss: Option<f64>,
    pub last_epoch_loss: Option<f64>,
    /// Best dev accuracy per task (the one model selection kept).
    pub dev: BTreeMap<String, f64>,
    /// Test accuracy per task with those weights; empty if not scored.
    pub test: BTreeMap<String, f64>,
    /// `train.patience` ended the run early: its epochs and tokens are
    /// fewer than the budget's.
    #[serde(default)]
    pub stopped_early: bool,
    /// This tool's tokens/s over the peer's; `None` without a peer run.
    pub ratio: Option<f64>,
}

impl ToolResult {
    pub fn new(
        tool: &str,
        report: &TrainReport,
        test: BTreeMap<String, f64>,
        m: &Measured,
    ) -> Self {
        ToolResult {
            tool: tool.into(),
            epochs: report.epochs,
            steps: report.steps,
            tokens: report.tokens(),
            train_s: report.seconds,
            tokens_per_s: report.tokens_per_second,
            wall_s: m.wall.as_secs_f64(),
            peak_rss_mib: m.peak_rss_mib(),
            parameters: report.parameters,
            first_loss: report.first_loss,
            last_epoch_loss: report.last_epoch_loss,
            dev: report.best_dev_score.clone(),
            test,
            stopped_early: report.stopped_early,
            ratio: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainResults {
    pub pipeline: String,
    pub input: String,
    pub train_rows: u64,
    pub dev_rows: u64,
    pub epochs: usize,
    /// `train.max_steps` of a short run ([`Setup::max_steps`]).
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// What [`bench_config`] left out of the recipe on both sides, because
    /// the peer does not mirror it.
    #[serde(default)]
    pub left_out: Vec<String>,
    pub batch_size: usize,
    /// CPU threads each tool computes on.
    pub threads: usize,
    pub cpus: usize,
    pub os: String,
    /// `/proc/loadavg` before and after: other work on the machine makes
    /// every number noisier.
    pub load_average_start: Option<String>,
    pub load_average_end: Option<String>,
    /// Task order of the table (the pipeline's).
    pub tasks: Vec<String>,
    pub tools: Vec<ToolResult>,
    /// With the peer: its model running mtl-train's trained weights.
    #[serde(default)]
    pub same_function: Option<SameFunction>,
}

impl TrainResults {
    /// Fills in each tool's ratio to the peer.
    pub fn rate(&mut self) {
        let peer = self
            .tools
            .iter()
            .find(|t| t.tool == PYTORCH)
            .map(|t| t.tokens_per_s);
        for t in &mut self.tools {
            t.ratio = peer.map(|p| t.tokens_per_s / p.max(1e-9));
        }
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "{}: {} ({} train rows, {} dev rows), batch size {}{}, {} thread(s) per tool\n\
             {} CPUs, {}, load average {} at start, {} at end\n",
            self.pipeline,
            self.input,
            self.train_rows,
            self.dev_rows,
            self.batch_size,
            self.max_steps
                .map_or_else(String::new, |n| format!(", at most {n} steps")),
            self.threads,
            self.cpus,
            self.os,
            self.load_average_start.as_deref().unwrap_or("unknown"),
            self.load_average_end.as_deref().unwrap_or("unknown"),
        );
        if !self.left_out.is_empty() {
            out.push_str(&format!(
                "left out of both tools, which the PyTorch peer does not mirror: {}\n",
                self.left_out.join(", ")
            ));
        }
        out.push('\n');
        let mut header: Vec<String> = [
            "tool",
            "epochs",
            "steps",
            "tokens",
            "train s",
            "tokens/s",
            "peak RSS MiB",
        ]
        .map(String::from)
        .to_vec();
        header.extend(self.tasks.iter().map(|t| format!("dev {t}")));
        header.push("ratio".into());
        let acc = |m: &BTreeMap<String, f64>, t: &str| {
            m.get(t)
                .map_or_else(|| "-".to_string(), |a| format!("{a:.4}"))
        };
        let rows: Vec<Vec<String>> = self
            .tools
            .iter()
            .map(|t| {
                let mut r = vec![
                    t.tool.clone(),
                    t.epochs.to_string(),
                    t.steps.to_string(),
                    t.tokens.to_string(),
                    format!("{:.1}", t.train_s),
                    format!("{:.0}", t.tokens_per_s),
                    format!("{:.0}", t.peak_rss_mib),
                ];
                r.extend(self.tasks.iter().map(|task| acc(&t.dev, task)));
                r.push(t.ratio.map_or_else(|| "-".into(), |x| format!("{x:.2}x")));
                r
            })
            .collect();
        out.push_str(&table(&header, &rows));
        out.push('\n');
        for t in &self.tools {
            let test = if t.test.is_empty() {
                "not scored".to_string()
            } else {
                self.tasks
                    .iter()
                    .map(|task| format!("{task} {}", acc(&t.test, task)))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let loss = |l: Option<f64>| l.map_or_else(|| "-".into(), |l| format!("{l:.3}"));
            out.push_str(&format!(
                "{}: test {test}; loss {} first step, {} last epoch; {} parameters; wall {:.1} s{}\n",
                t.tool,
                loss(t.first_loss),
                loss(t.last_epoch_loss),
                t.parameters,
                t.wall_s,
                if t.stopped_early {
                    "; stopped early (train.patience)"
                } else {
                    ""
                },
            ));
        }
        let params: Vec<u64> = self.tools.iter().map(|t| t.parameters).collect();
        if params.len() > 1 {
            if params.windows(2).all(|w| w[0] == w[1]) {
                out.push_str("same number of trainable parameters\n");
            } else {
                out.push_str("trainable parameters DIFFER: not the same model\n");
            }
        }
        if let Some(s) = &self.same_function {
            let verdict = if s.holds() {
                "the same function"
            } else {
                "NOT the same function"
            };
            out.push_str(&format!(
                "{PYTORCH} with {MTL_TRAIN}'s trained weights ({} parameters): dev and test \
                 accuracy at most {:.6} from mtl-eval's on every task{}: {verdict}\n",
                s.parameters,
                s.max_difference,
                if s.unmatched.is_empty() {
                    String::new()
                } else {
                    format!(" but {} scored by one side only", s.unmatched.join(", "))
                },
            ));
        }
        out
    }
}

/// The pipeline `original` (read from `original_dir`) rewritten for the
/// benchmark: its runs under `runs_dir`, relative dataset files made
/// absolute (the config moves), `train.epochs = epochs`, `train.max_steps`
/// set where `max_steps` is given, and what the peer does not mirror left
/// out: the settings of [`NOT_MIRRORED`] and the tasks that fail
/// [`task_mirrored`]; everything else as it is. Also returns what it left
/// out, `model.char_cnn` or `task `deps` (dependency)`, for the report.
pub fn bench_config(
    original: &str,
    original_dir: &Path,
    runs_dir: &Path,
    epochs: usize,
    max_steps: Option<usize>,
) -> Result<(String, Vec<String>)> {
    let epochs = i64::try_from(epochs).context("epochs out of range")?;
    let max_steps = max_steps
        .map(i64::try_from)
        .transpose()
        .context("max_steps out of range")?;
    let mut doc: toml::Table = toml::from_str(original).context("parsing TOML")?;
    let mut left_out = Vec::new();
    for (section, key) in NOT_MIRRORED {
        if let Some(t) = doc.get_mut(*section).and_then(toml::Value::as_table_mut)
            && t.remove(*key).is_some()
        {
            left_out.push(format!("{section}.{key}"));
        }
    }
    if let Some(tasks) = doc.get_mut("tasks").and_then(toml::Value::as_array_mut) {
        tasks.retain(|t| {
            // A task whose kind does not parse stays, for the config's own
            // validation to name.
            let Some(kind) = t
                .get("type")
                .and_then(|k| k.clone().try_into::<TaskKind>().ok())
            else {
                return true;
            };
            let crf = t.get("crf").and_then(toml::Value::as_bool).unwrap_or(false);
            let keep = task_mirrored(kind, crf);
            if !keep {
                let name = t.get("name").and_then(toml::Value::as_str).unwrap_or("?");
                let crf = if crf { ", crf" } else { "" };
                left_out.push(format!("task `{name}` ({}{crf})", kind.name()));
            }
            keep
        });
        if tasks.is_empty() {
            bail!("the PyTorch peer mirrors none of the pipeline's tasks");
        }
    }
    let original = toml::to_string(&doc).context("writing TOML")?;
    let text = rewrite_pipeline(
        &original,
        original_dir,
        runs_dir,
        "train",
        "train",
        |train| {
            train.insert("epochs".into(), epochs.into());
            if let Some(n) = max_steps {
                train.insert("max_steps".into(), n.into());
            }
            Ok(())
        },
    )?;
    Ok((text, left_out))
}

/// Whether the peer mirrors a task: tagging without a CRF, a linear head
/// per sub-token under cross-entropy. Other tasks of the recipe (a
/// dependency parser, a CRF) are left out of both tools by
/// [`bench_config`] and named in the report, so that the benchmark still
/// times the recipe's encoder and its tagging heads.
pub fn task_mirrored(kind: TaskKind, crf: bool) -> bool {
    kind == TaskKind::Tagging && !crf
}

/// Settings of the shipped recipe that the PyTorch peer does not mirror,
/// as `(section, key)`: the benchmark leaves them out of both sides, so
/// that the two tools train the same model, and says so when it starts.
/// Empty: the peer mirrors every setting of `pipelines/ewt.toml`, the
/// character CNN, word dropout and `patience` included. A setting added to
/// the recipe before the peer mirrors it goes here; settings that another
/// recipe might use and the peer cannot mirror are refused by
/// [`check_peer_mirrors`] instead.
pub const NOT_MIRRORED: &[(&str, &str)] = &[];

/// Fails, naming the setting, where the pipeline uses something the peer
/// does not mirror.
pub fn check_peer_mirrors(cfg: &PipelineConfig) -> Result<()> {
    let src = cfg.source.path.display();
    if cfg.model.encoder != EncoderKind::Bilstm {
        bail!("{src}: the PyTorch peer mirrors `model.encoder = \"bilstm\"` only");
    }
    for t in &cfg.tasks {
        if !task_mirrored(t.kind, t.crf) {
            bail!(
                "{src}: task `{}`: the PyTorch peer mirrors tagging tasks without CRF only",
                t.name
            );
        }
    }
    let tc = &cfg.train;
    // `patience` is mirrored: both tools score dev at the end of every
    // epoch and stop after that many evaluations without a better mean.
    // `eval_every` would move those evaluations between steps, which the
    // peer's loop does not do.
    let unsupported = [
        ("train.weighting", tc.weighting != Weighting::Static),
        ("train.pcgrad", tc.pcgrad),
        ("train.max_tokens", tc.max_tokens.is_some()),
        ("train.eval_every", tc.eval_every.is_some()),
        ("tokenize.pad_to", cfg.tokenize.pad_to.is_some()),
    ];
    if let Some((key, _)) = unsupported.iter().find(|(_, set)| *set) {
        bail!("{src}: `{key}` is set, which the PyTorch peer does not mirror");
    }
    Ok(())
}

/// `train.word_dropout` as mtl-train applies it (`mtl_train` `word_dropout`
/// and `batching::WordDropout`), read from the bundle's `tokenizer.json`:
/// the id of `tokenize.special_tokens.unk`, which replaces a dropped
/// sub-token, and the ids of the special tokens, which are never dropped.
/// `null` when word dropout is off.
pub fn word_dropout_spec(
    cfg: &PipelineConfig,
    tokenizer: &serde_json::Value,
) -> Result<serde_json::Value> {
    let p = cfg.train.word_dropout;
    if p <= 0.0 {
        return Ok(serde_json::Value::Null);
    }
    let added = tokenizer["added_tokens"]
        .as_array()
        .context("tokenizer.json has no `added_tokens`")?;
    let unk_name = &cfg.tokenize.special_tokens.unk;
    // As the tokenizers crate's `token_to_id`: added tokens first, then the
    // model's vocabulary (a map, or Unigram's list of [piece, score]).
    let vocab = &tokenizer["model"]["vocab"];
    let unk = added
        .iter()
        .find(|t| t["content"].as_str() == Some(unk_name.as_str()))
        .and_then(|t| t["id"].as_u64())
        .or_else(|| vocab[unk_name.as_str()].as_u64())
        .or_else(|| {
            vocab.as_array().and_then(|pieces| {
                pieces
                    .iter()
                    .position(|p| p[0].as_str() == Some(unk_name.as_str()))
                    .map(|i| i as u64)
            })
        })
        .with_context(|| {
            format!(
                "train.word_dropout needs the unknown token `{unk_name}` \
                 (tokenize.special_tokens.unk), which tokenizer.json does not have"
            )
        })?;
    let mut specials = added
        .iter()
        .filter(|t| t["special"].as_bool() == Some(true))
        .map(|t| {
            t["id"]
                .as_u64()
                .context("tokenizer.json: an added token without `id`")
        })
        .collect::<Result<Vec<u64>>>()?;
    specials.sort_unstable();
    Ok(json!({"p": p, "unk": unk, "specials": specials}))
}

/// What the peer needs: the tokenize tables, the model's sizes (from the
/// bundle mtl-train wrote: `model/model.json`, its character CNN
/// included), the task weights and class weights, and the training
/// settings, word dropout's token ids (from the bundle's `tokenizer.json`)
/// and `patience` among them.
pub fn peer_spec(
    cfg: &PipelineConfig,
    model_json: &serde_json::Value,
    tokenizer: &serde_json::Value,
    labels: &LabelSet,
    tokenized: &Path,
    threads: usize,
) -> Result<serde_json::Value> {
    let enc = &model_json["spec"]["encoder"];
    if enc["kind"].as_str() != Some("bilstm") {
        bail!("model.json: the PyTorch peer mirrors a bilstm encoder only");
    }
    let size = |v: &serde_json::Value, key: &str| {
        v[key.rsplit('.').next().unwrap_or(key)]
            .as_u64()
            .with_context(|| format!("no `spec.encoder.{key}` in model.json"))
    };
    let char_cnn = match &enc["char_cnn"] {
        serde_json::Value::Null => serde_json::Value::Null,
        c => json!({
            "vocab_size": size(c, "char_cnn.vocab_size")?,
            "char_dim": size(c, "char_cnn.char_dim")?,
            "filters": size(c, "char_cnn.filters")?,
            "width": size(c, "char_cnn.width")?,
        }),
    };
    if char_cnn.is_null() != cfg.model.char_cnn.is_none() {
        bail!("model.json and the pipeline disagree on `model.char_cnn`");
    }
    let encoder = json!({
        "vocab_size": size(enc, "vocab_size")?,
        "embedding_dim": size(enc, "embedding_dim")?,
        "hidden_dim": size(enc, "hidden_dim")?,
        "layers": size(enc, "layers")?,
        "dropout": enc["dropout"].as_f64().context("no `spec.encoder.dropout` in model.json")?,
        "char_cnn": char_cnn,
    });
    let heads = model_json["spec"]["tasks"]
        .as_array()
        .context("no `spec.tasks` in model.json")?;
    let tasks = cfg
        .tasks
        .iter()
        .map(|t| {
            let num_labels = heads
                .iter()
                .find(|h| h["name"].as_str() == Some(t.name.as_str()))
                .and_then(|h| h["num_labels"].as_u64())
                .with_context(|| format!("model.json has no head for task `{}`", t.name))?;
            let class_weights = labels.get(&t.name)?.class_weights.clone();
            Ok(json!({
                "name": t.name,
                "num_labels": num_labels,
                "weight": t.weight,
                "class_weights": class_weights,
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    let tc = &cfg.train;
    let split = |name: &str| tokenized.join(format!("{name}.parquet"));
    Ok(json!({
        "data": {"train": split("train"), "dev": split("dev"), "test": split("test")},
        "seed": cfg.pipeline.seed,
        "threads": threads,
        "eval_batch_size": EVAL_BATCH_SIZE,
        "encoder": encoder,
        "tasks": tasks,
        "train": {
            "epochs": tc.epochs,
            "max_steps": tc.max_steps,
            "batch_size": tc.batch_size,
            "bucket_batches": BUCKET_BATCHES,
            "learning_rate": tc.learning_rate,
            "encoder_learning_rate": tc.encoder_learning_rate,
            "weight_decay": tc.weight_decay,
            "grad_clip": tc.grad_clip,
            "schedule": tc.schedule,
            "warmup": tc.warmup,
            "sampling": tc.sampling,
            "temperature": tc.temperature,
            "task_caps": tc.task_caps,
            "word_dropout": word_dropout_spec(cfg, tokenizer)?,
            "patience": tc.patience,
        },
    }))
}

/// Rows of a stage's manifest (`rows.<split>`).
fn manifest_rows(dir: &Path, split: &str) -> Result<u64> {
    let path = dir.join(mtl_core::Manifest::FILE);
    let v: serde_json::Value = mtl_core::fsio::read_json(&path)?;
    v["rows"][split]
        .as_u64()
        .with_context(|| format!("{}: no `rows.{split}`", path.display()))
}

/// [`peer_spec`] for the bundle mtl-train wrote in `bundle` (its
/// `model.json` and `tokenizer.json`) over the tokenize output `tokenized`.
pub fn peer_spec_of_run(
    cfg: &PipelineConfig,
    bundle: &Path,
    tokenized: &Path,
    threads: usize,
) -> Result<serde_json::Value> {
    let model_path = bundle.join("model.json");
    let model_json: serde_json::Value = mtl_core::fsio::read_json(&model_path)?;
    let tokenizer: serde_json::Value = mtl_core::fsio::read_json(&bundle.join("tokenizer.json"))?;
    let labels = LabelSet::read(&tokenized.join(LabelSet::FILE))?;
    peer_spec(cfg, &model_json, &tokenizer, &labels, tokenized, threads)
        .with_context(|| format!("the peer's spec from {}", model_path.display()))
}

/// What the benchmark trains and where: `cargo xtask bench train` runs
/// [`Setup::shipped`]; a test points it at a slice of the data and a
/// temporary folder.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The recipe, relative to the workspace or absolute.
    pub pipeline: PathBuf,
    /// The work folder: `pipeline.toml`, `runs/`, `logs/`, `results.json`.
    pub dir: PathBuf,
    /// Sets `train.max_steps` on both sides: a short run that goes through
    /// every code path without measuring anything worth keeping.
    pub max_steps: Option<usize>,
    /// Stage binaries already built in release mode; built here otherwise.
    pub bin_dir: Option<PathBuf>,
}

impl Setup {
    /// [`PIPELINE`] in `bench/out/train` of the workspace, the recipe's own
    /// step budget.
    pub fn shipped() -> Self {
        Self {
            pipeline: PathBuf::from(PIPELINE),
            dir: train_dir(&workspace_root()),
            max_steps: None,
            bin_dir: None,
        }
    }
}

/// Builds the stages, prepares the tokenized data, trains with both
/// tools, prints progress and writes `results.json`.
pub fn train(opts: &TrainBench) -> Result<TrainResults> {
    train_in(opts, &Setup::shipped())
}

/// [`train`] of `setup`'s recipe in `setup`'s folder.
pub fn train_in(opts: &TrainBench, setup: &Setup) -> Result<TrainResults> {
    if opts.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    let root = workspace_root();
    let dir = &setup.dir;
    let say = progress(opts.quiet);
    let load_start = load_average();
    let data = data_dir(opts.data_dir.as_deref(), &root)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let recipe = setup
        .pipeline
        .to_str()
        .context("the pipeline's path is not UTF-8")?;
    let mut left_out = Vec::new();
    let config = write_pipeline(&root, recipe, dir, |text, original_dir, runs| {
        let (text, what) = bench_config(text, original_dir, runs, opts.epochs, setup.max_steps)?;
        left_out = what;
        Ok(text)
    })?;
    let cfg = PipelineConfig::load(&config, Some(&data))?;
    if left_out.is_empty() {
        say(format!(
            "{recipe}: every setting and task is mirrored by the PyTorch peer"
        ));
    } else {
        say(format!(
            "{recipe} without {}: the PyTorch peer does not mirror them",
            left_out.join(", ")
        ));
    }
    if !opts.skip_peer {
        check_peer_mirrors(&cfg)?;
    }
    let threads = cfg
        .train
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    let bin_dir = match &setup.bin_dir {
        Some(b) => b.clone(),
        None => {
            say("building the stage binaries (release) ...".into());
            build_binaries(&Stage::ALL, opts.quiet)?
        }
    };
    let python = if opts.skip_peer {
        None
    } else {
        Some(ensure_venv(&root, &say, &PEER_PACKAGES, PEER_CHECK)?)
    };

    say(format!(
        "{}: clean, split and tokenize (cached after the first run) ...",
        cfg.pipeline.name
    ));
    run_stages(&config, &data, &bin_dir, Stage::Tokenize)?;
    let run_dir = cfg.run_dir();
    let tokenized = run_dir.join(Stage::Tokenize.name());
    let logs = dir.join("logs");

    let ours = run_dir.join(Stage::Train.name());
    say(format!(
        "{MTL_TRAIN}: {} epoch(s) on {threads} thread(s) ...",
        opts.epochs
    ));
    let mut cmd = stage_command(&bin_dir, Stage::Train, &config, &data, &tokenized, &ours);
    // The peer trains on the CPU: so does mtl-train by default.
    cmd.env_remove("MTL_DEVICE")
        // What mtl-train sets from `train.threads` itself, made explicit so
        // that a caller's environment cannot give it another count.
        .env("RAYON_NUM_THREADS", threads.to_string());
    let m = measure::run_checked(&mut cmd, &logs, MTL_TRAIN)?;
    let report = TrainReport::from_file(&ours.join("report.json"))?;

    say("mtl-eval: test accuracy of the trained model ...".into());
    let eval = run_dir.join(Stage::Eval.name());
    let mut cmd = stage_command(&bin_dir, Stage::Eval, &config, &data, &tokenized, &eval);
    cmd.arg("--model").arg(&ours);
    measure::run_checked(&mut cmd, &logs, Stage::Eval.binary())?;
    let metrics = eval.join("metrics.json");
    let test = read_report(&metrics, test_accuracy)?;
    let mut tools = vec![ToolResult::new(MTL_TRAIN, &report, test, &m)];
    let mut same_function = None;

    if let Some(python) = &python {
        let spec = peer_spec_of_run(&cfg, &ours.join("model"), &tokenized, threads)?;
        let spec_path = dir.join("peer-spec.json");
        mtl_core::fsio::write_json(&spec_path, &spec)?;
        let theirs = fresh_dir(&run_dir.join(format!("train-{PYTORCH}")))?;
        say(format!(
            "{PYTORCH}: {} epoch(s) on {threads} thread(s) ...",
            opts.epochs
        ));
        let m = run_peer(python, PEER_SCRIPT, &spec_path, &theirs, &logs, PYTORCH)?;
        let report = TrainReport::from_file(&theirs.join("report.json"))?;
        let test = report.test_score.clone();
        tools.push(ToolResult::new(PYTORCH, &report, test, &m));

        say(format!(
            "{PYTORCH}: {MTL_TRAIN}'s trained weights in the peer's model (not timed) ..."
        ));
        let scored = fresh_dir(&run_dir.join(format!("{PYTORCH}-mtl-weights")))?;
        let mut cmd = Command::new(python);
        cmd.arg(root.join(PEER_SCRIPT))
            .arg("--spec")
            .arg(&spec_path)
            .arg("--out")
            .arg(&scored)
            .arg("--bundle")
            .arg(ours.join("model"));
        measure::run_checked(&mut cmd, &logs, &format!("{PYTORCH}-mtl-weights"))?;
        let peer: serde_json::Value = mtl_core::fsio::read_json(&scored.join("bundle.json"))?;
        let mtl = ["dev", "test"]
            .into_iter()
            .map(|split| Ok((split, read_report(&metrics, |m| split_accuracy(m, split))?)))
            .collect::<Result<BTreeMap<_, _>>>()?;
        same_function = Some(SameFunction::compare(&peer, &mtl)?);
    }

    let mut results = TrainResults {
        pipeline: cfg.pipeline.name.clone(),
        input: rel(&root, &tokenized),
        train_rows: manifest_rows(&tokenized, "train")?,
        dev_rows: manifest_rows(&tokenized, "dev")?,
        epochs: opts.epochs,
        max_steps: setup.max_steps,
        left_out,
        batch_size: cfg.train.batch_size,
        threads,
        cpus: cpus(),
        os: os(),
        load_average_start: load_start,
        load_average_end: load_average(),
        tasks: cfg.tasks.iter().map(|t| t.name.clone()).collect(),
        tools,
        same_function,
    };
    results.rate();
    mtl_core::fsio::write_json(&dir.join("results.json"), &results)?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER_REPORT: &str = r#"{
        "parameters": 1517915, "steps": 393, "epochs": 1, "steps_per_epoch": 393,
        "best_epoch": 1, "best_step": 393,
        "best_dev_score": {"upos": 0.85, "xpos": 0.8, "ufeats": 0.82, "deprel": 0.6},
        "best_dev_mean": 0.7675, "evaluations": 1, "seconds": 100.0, "tokens": 250000,
        "tokens_per_second": 2500.0, "first_loss": 16.1, "last_epoch_loss": 3.2,
        "test_score": {"upos": 0.84, "xpos": 0.79, "ufeats": 0.81, "deprel": 0.61},
        "step_seconds": 95.0, "eval_seconds": 5.0, "load_seconds": 1.0,
        "threads": 2, "torch_version": "2.15.0"}"#;

    #[test]
    fn peer_and_mtl_reports_parse() {
        let peer = TrainReport::from_json(PEER_REPORT).unwrap();
        assert_eq!(peer.tokens(), 250_000);
        assert_eq!(peer.best_dev_score["deprel"], 0.6);
        assert_eq!(peer.test_score["upos"], 0.84);
        // mtl-train's report: no token count, no test scores.
        let mtl = TrainReport::from_json(
            r#"{"parameters": 10, "steps": 3, "epochs": 1, "steps_per_epoch": 3,
                "best_dev_score": {"upos": 0.5}, "seconds": 2.0,
                "tokens_per_second": 1234.5, "first_loss": 3.0, "last_epoch_loss": 2.0,
                "peak_rss_bytes": null}"#,
        )
        .unwrap();
        assert_eq!(mtl.tokens(), 2469);
        assert!(mtl.test_score.is_empty());
        let err = TrainReport::from_json(r#"{"steps": 1}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field"), "{err}");
    }

    #[test]
    fn test_accuracy_comes_from_eval_metrics() {
        let metrics = r#"{"tasks": {
            "upos": {"splits": {"dev": {"metrics": {"accuracy": 0.9}},
                                "test": {"metrics": {"accuracy": 0.8}}}},
            "xpos": {"splits": {"dev": {"metrics": {"accuracy": 0.7}}}}}}"#;
        let t = test_accuracy(metrics).unwrap();
        assert_eq!(t, BTreeMap::from([("upos".to_string(), 0.8)]));
        let bad = r#"{"tasks": {"upos": {"splits": {"test": {"metrics": {}}}}}}"#;
        let err = test_accuracy(bad).unwrap_err().to_string();
        assert!(err.contains("tasks.upos.splits.test"), "{err}");
    }

    fn results() -> TrainResults {
        let peer = TrainReport::from_json(PEER_REPORT).unwrap();
        let mut mtl = peer.clone();
        mtl.tokens = None;
        mtl.tokens_per_second = 1250.0;
        mtl.seconds = 200.0;
        mtl.best_dev_score.remove("deprel");
        let mut r = TrainResults {
            pipeline: "ewt".into(),
            input: "bench/out/train/runs/ewt/tokenize".into(),
            train_rows: 12550,
            dev_rows: 2001,
            epochs: 1,
            max_steps: None,
            left_out: Vec::new(),
            batch_size: 32,
            threads: 2,
            cpus: 2,
            os: "linux-x86_64".into(),
            load_average_start: Some("1.0 1.1 1.2".into()),
            load_average_end: None,
            tasks: ["upos", "xpos", "ufeats", "deprel"]
                .map(String::from)
                .to_vec(),
            tools: vec![
                ToolResult::new(
                    MTL_TRAIN,
                    &mtl,
                    BTreeMap::new(),
                    &Measured::succeeded(210_000, 800),
                ),
                ToolResult::new(
                    PYTORCH,
                    &peer,
                    peer.test_score.clone(),
                    &Measured::succeeded(110_000, 600),
                ),
            ],
            same_function: None,
        };
        r.rate();
        r
    }

    #[test]
    fn ratio_is_over_the_peer() {
        let r = results();
        assert_eq!(r.tools[0].ratio, Some(0.5));
        assert_eq!(r.tools[1].ratio, Some(1.0));
        assert_eq!(r.tools[0].tokens, 250_000);
        assert_eq!(r.tools[0].peak_rss_mib, 800.0);
        let mut alone = r.clone();
        alone.tools.truncate(1);
        alone.rate();
        assert_eq!(alone.tools[0].ratio, None);
    }

    #[test]
    fn table_has_a_column_per_task_in_pipeline_order() {
        let text = results().render();
        let lines: Vec<&str> = text.lines().collect();
        let head = lines.iter().position(|l| l.starts_with("tool")).unwrap();
        let header: Vec<&str> = lines[head].split("  ").filter(|c| !c.is_empty()).collect();
        let header: Vec<&str> = header.iter().map(|c| c.trim()).collect();
        assert_eq!(
            header,
            [
                "tool",
                "epochs",
                "steps",
                "tokens",
                "train s",
                "tokens/s",
                "peak RSS MiB",
                "dev upos",
                "dev xpos",
                "dev ufeats",
                "dev deprel",
                "ratio"
            ],
            "{text}"
        );
        assert!(lines[head + 1].chars().all(|c| c == '-'), "{text}");
        assert_eq!(lines[head + 1].len(), lines[head].len(), "{text}");
        let mtl: Vec<&str> = lines[head + 2].split_whitespace().collect();
        assert_eq!(
            mtl,
            [
                MTL_TRAIN, "1", "393", "250000", "200.0", "1250", "800", "0.8500", "0.8000",
                "0.8200", "-", "0.50x"
            ],
            "{text}"
        );
        assert!(lines[head + 3].starts_with(PYTORCH) && lines[head + 3].ends_with("1.00x"));
        assert!(
            text.contains("mtl-train: test not scored; loss 16.100 first step, 3.200 last epoch"),
            "{text}"
        );
        assert!(
            text.contains("pytorch: test upos 0.8400, xpos 0.7900"),
            "{text}"
        );
        assert!(
            text.contains("same number of trainable parameters"),
            "{text}"
        );
        assert!(text.contains("at start, unknown at end"), "{text}");
    }

    #[test]
    fn bench_config_sets_epochs_and_runs_dir_and_keeps_the_rest() {
        let root = workspace_root();
        let original = root.join(PIPELINE);
        let text = std::fs::read_to_string(&original).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let load = |text: &str, name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            PipelineConfig::load(&path, Some(Path::new("/data"))).unwrap()
        };
        let (out, left_out) = bench_config(&text, &root.join("pipelines"), &runs, 2, None).unwrap();
        let cfg = load(&out, "pipeline.toml");
        let orig = PipelineConfig::load(&original, Some(Path::new("/data"))).unwrap();
        assert_eq!(cfg.train.epochs, 2);
        assert_eq!(cfg.train.max_steps, orig.train.max_steps);
        assert_eq!(cfg.run_dir(), dir.path().join("runs/ewt"));
        assert_eq!(cfg.train.batch_size, orig.train.batch_size);
        assert_eq!(cfg.model.hidden_dim, orig.model.hidden_dim);
        // The shape that ships is the shape measured: no setting is left
        // out, and only the tasks the peer has no head for.
        assert_eq!(cfg.model.char_cnn, orig.model.char_cnn);
        assert_eq!(cfg.train.word_dropout, orig.train.word_dropout);
        assert_eq!(cfg.train.patience, orig.train.patience);
        let (kept, dropped): (Vec<_>, Vec<_>) = orig
            .tasks
            .iter()
            .partition(|t| task_mirrored(t.kind, t.crf));
        let names = |ts: &[&mtl_core::config::TaskConfig]| -> Vec<String> {
            ts.iter().map(|t| t.name.clone()).collect()
        };
        let tasks: Vec<&_> = cfg.tasks.iter().collect();
        assert_eq!(names(&tasks), names(&kept));
        assert_eq!(left_out.len(), dropped.len(), "{left_out:?}");
        check_peer_mirrors(&cfg).unwrap();

        // Clean, split and tokenize read the same sections whatever
        // --epochs: the cached stages stay valid.
        let (out, _) = bench_config(&text, &root.join("pipelines"), &runs, 1, Some(7)).unwrap();
        let short = load(&out, "short.toml");
        assert_eq!((short.train.epochs, short.train.max_steps), (1, Some(7)));
        for stage in [Stage::Clean, Stage::Split, Stage::Tokenize] {
            assert_eq!(
                mtl_core::manifest::fingerprint(stage, 1, &cfg, &[]),
                mtl_core::manifest::fingerprint(stage, 1, &short, &[]),
                "{stage}"
            );
        }

        // A task the peer has no head for is left out of both sides and
        // named; a task whose kind does not parse is kept for the config's
        // own validation to name.
        let extra = format!(
            "{text}\n[[tasks]]\nname = \"upos_crf\"\ndataset = \"ewt\"\ncolumn = \"upos\"\n\
             type = \"tagging\"\ncrf = true\n"
        );
        let (out, left_out) =
            bench_config(&extra, &root.join("pipelines"), &runs, 1, None).unwrap();
        assert!(
            left_out.contains(&"task `upos_crf` (tagging, crf)".to_string()),
            "{left_out:?}"
        );
        let cfg = load(&out, "extra.toml");
        assert!(cfg.tasks.iter().all(|t| t.name != "upos_crf"));
        check_peer_mirrors(&cfg).unwrap();
        let odd = format!(
            "{text}\n[[tasks]]\nname = \"odd\"\ndataset = \"ewt\"\ncolumn = \"upos\"\ntype = \"nonsense\"\n"
        );
        let (out, _) = bench_config(&odd, &root.join("pipelines"), &runs, 1, None).unwrap();
        assert!(out.contains("nonsense"), "{out}");
    }

    /// A trained WordPiece `tokenizer.json` as far as the spec reads it.
    fn tokenizer() -> serde_json::Value {
        json!({
            "added_tokens": [
                {"id": 0, "content": "[PAD]", "special": true},
                {"id": 1, "content": "[UNK]", "special": true},
                {"id": 2, "content": "[CLS]", "special": true},
                {"id": 3, "content": "[SEP]", "special": true},
                {"id": 9, "content": "<url>", "special": false},
            ],
            "model": {"type": "WordPiece", "vocab": {"[PAD]": 0, "[UNK]": 1, "the": 4}},
        })
    }

    fn labels_of(cfg: &PipelineConfig) -> LabelSet {
        let mut labels = LabelSet::default();
        for t in &cfg.tasks {
            labels.tasks.insert(
                t.name.clone(),
                mtl_core::TaskLabels {
                    kind: TaskKind::Tagging,
                    scheme: None,
                    labels: vec!["A".into(), "B".into()],
                    train_counts: vec![1, 1],
                    class_weights: (t.name == "upos").then(|| vec![1.0, 2.0]),
                    target: None,
                },
            );
        }
        labels
    }

    #[test]
    fn the_peer_spec_has_the_bundle_sizes_and_refuses_what_it_cannot_mirror() {
        let root = workspace_root();
        let mut cfg = PipelineConfig::load(&root.join(PIPELINE), Some(Path::new("/d"))).unwrap();
        // The recipe's tagging tasks (bench_config leaves out the others),
        // with the settings the peer once lacked as the recipe has them
        // today, whatever it has later.
        cfg.tasks.retain(|t| task_mirrored(t.kind, t.crf));
        cfg.model.char_cnn = Some(mtl_core::config::CharCnnConfig {
            char_dim: 30,
            filters: 100,
            width: 3,
        });
        cfg.train.word_dropout = 0.1;
        cfg.train.patience = Some(4);
        check_peer_mirrors(&cfg).unwrap();
        let mut model_json: serde_json::Value = serde_json::from_str(
            r#"{"spec": {"encoder": {"kind": "bilstm", "vocab_size": 8000,
                "embedding_dim": 100, "hidden_dim": 128, "layers": 2, "dropout": 0.33,
                "char_cnn": {"vocab_size": 97, "char_dim": 30, "filters": 100, "width": 3}},
                "tasks": [{"name": "upos", "num_labels": 17}, {"name": "xpos", "num_labels": 49},
                          {"name": "ufeats", "num_labels": 230}, {"name": "deprel", "num_labels": 51}]}}"#,
        )
        .unwrap();
        let labels = labels_of(&cfg);
        let tok = tokenizer();
        let spec = peer_spec(&cfg, &model_json, &tok, &labels, Path::new("/tok"), 2).unwrap();
        assert_eq!(spec["encoder"]["hidden_dim"], 128);
        assert_eq!(
            spec["encoder"]["char_cnn"],
            json!({"vocab_size": 97, "char_dim": 30, "filters": 100, "width": 3})
        );
        assert_eq!(spec["tasks"][2]["name"], "ufeats");
        assert_eq!(spec["tasks"][2]["num_labels"], 230);
        assert_eq!(spec["tasks"][0]["class_weights"], json!([1.0, 2.0]));
        assert!(spec["tasks"][1]["class_weights"].is_null());
        assert_eq!(spec["train"]["schedule"], "linear");
        assert_eq!(spec["train"]["sampling"], "proportional");
        assert_eq!(spec["train"]["batch_size"], 32);
        assert_eq!(spec["train"]["patience"], 4);
        // The unknown token replaces; specials, not other added tokens,
        // are never dropped.
        assert_eq!(
            spec["train"]["word_dropout"],
            json!({"p": 0.1, "unk": 1, "specials": [0, 1, 2, 3]})
        );
        assert_eq!(spec["data"]["dev"], "/tok/dev.parquet");
        assert_eq!(spec["threads"], 2);

        // A bundle without the CNN the config asks for is not this model.
        let cnn = model_json["spec"]["encoder"]
            .as_object_mut()
            .unwrap()
            .remove("char_cnn")
            .unwrap();
        let err = peer_spec(&cfg, &model_json, &tok, &labels, Path::new("/tok"), 2)
            .unwrap_err()
            .to_string();
        assert!(err.contains("model.char_cnn"), "{err}");
        model_json["spec"]["encoder"]["char_cnn"] = cnn;

        // Without word dropout and patience: nulls, which the peer reads as off.
        cfg.train.word_dropout = 0.0;
        cfg.train.patience = None;
        let spec = peer_spec(&cfg, &model_json, &tok, &labels, Path::new("/tok"), 2).unwrap();
        assert!(spec["train"]["word_dropout"].is_null() && spec["train"]["patience"].is_null());

        cfg.train.pcgrad = true;
        let err = check_peer_mirrors(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("train.pcgrad") && err.contains("ewt.toml"),
            "{err}"
        );
        cfg.train.pcgrad = false;
        cfg.train.eval_every = Some(100);
        let err = check_peer_mirrors(&cfg).unwrap_err().to_string();
        assert!(err.contains("train.eval_every"), "{err}");
        cfg.train.eval_every = None;
        cfg.tasks[1].crf = true;
        let err = check_peer_mirrors(&cfg).unwrap_err().to_string();
        assert!(err.contains("task `xpos`"), "{err}");
    }

    #[test]
    fn word_dropout_finds_the_unknown_token_as_the_tokenizer_does() {
        let root = workspace_root();
        let mut cfg = PipelineConfig::load(&root.join(PIPELINE), Some(Path::new("/d"))).unwrap();
        cfg.train.word_dropout = 0.1;
        // Unigram's vocabulary is a list of [piece, score]; the unknown
        // token need not be an added one.
        let unigram = json!({
            "added_tokens": [{"id": 2, "content": "[CLS]", "special": true}],
            "model": {"type": "Unigram", "vocab": [["[PAD]", 0.0], ["[UNK]", 0.0], ["[CLS]", 0.0]]},
        });
        let wd = word_dropout_spec(&cfg, &unigram).unwrap();
        assert_eq!(wd, json!({"p": 0.1, "unk": 1, "specials": [2]}));
        cfg.tokenize.special_tokens.unk = "<unk>".into();
        let err = word_dropout_spec(&cfg, &tokenizer())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`<unk>`") && err.contains("special_tokens.unk"),
            "{err}"
        );
    }

    #[test]
    fn an_early_stop_is_reported() {
        let mut r = results();
        assert!(!r.render().contains("stopped early"));
        assert!(!r.render().contains("left out"));
        r.left_out = vec!["task `deps` (dependency)".into()];
        assert!(
            r.render().contains(
                "at end\nleft out of both tools, which the PyTorch peer does not mirror: \
                 task `deps` (dependency)\n\ntool"
            ),
            "{}",
            r.render()
        );
        r.tools[1].stopped_early = true;
        let text = r.render();
        let line = text
            .lines()
            .find(|l| l.starts_with("pytorch: test"))
            .unwrap();
        assert!(line.ends_with("; stopped early (train.patience)"), "{text}");
        // Results written before the key existed still read.
        let mut v = serde_json::to_value(&r).unwrap();
        v["tools"][0]
            .as_object_mut()
            .unwrap()
            .remove("stopped_early");
        v.as_object_mut().unwrap().remove("max_steps");
        let back: TrainResults = serde_json::from_value(v).unwrap();
        assert!(!back.tools[0].stopped_early && back.max_steps.is_none());
    }

    #[test]
    fn the_peer_with_mtls_weights_is_compared_on_every_task_and_split() {
        let mtl = BTreeMap::from([
            (
                "dev",
                BTreeMap::from([("upos".to_string(), 0.94), ("xpos".to_string(), 0.93)]),
            ),
            ("test", BTreeMap::from([("upos".to_string(), 0.95)])),
        ]);
        let peer = json!({"parameters": 2432715,
            "dev_score": {"upos": 0.94, "xpos": 0.9302},
            "test_score": {"upos": 0.95}});
        let s = SameFunction::compare(&peer, &mtl).unwrap();
        assert_eq!(s.parameters, 2_432_715);
        assert!((s.max_difference - 0.0002).abs() < 1e-12, "{s:?}");
        assert!(s.holds());
        let mut r = results();
        r.same_function = Some(s);
        let text = r.render();
        assert!(
            text.contains(
                "pytorch with mtl-train's trained weights (2432715 parameters): dev and test \
                 accuracy at most 0.000200 from mtl-eval's on every task: the same function"
            ),
            "{text}"
        );

        // A model that differs misses by points; a task scored by one
        // side only is no match either.
        let peer = json!({"parameters": 2432715,
            "dev_score": {"upos": 0.84, "xpos": 0.93},
            "test_score": {"upos": 0.95, "deprel": 0.8}});
        let s = SameFunction::compare(&peer, &mtl).unwrap();
        assert!((s.max_difference - 0.1).abs() < 1e-9 && !s.holds(), "{s:?}");
        assert_eq!(s.unmatched, ["test deprel"]);
        r.same_function = Some(s);
        let text = r.render();
        assert!(
            text.contains("but test deprel scored by one side only: NOT the same function"),
            "{text}"
        );
        let err = SameFunction::compare(&json!({"parameters": 1}), &mtl)
            .unwrap_err()
            .to_string();
        assert!(err.contains("dev_score"), "{err}");
    }
}
