//! `cargo xtask bench train`: training throughput of the `bilstm` encoder
//! on the EWT pipeline (four tagging tasks), `mtl-train` as a release
//! binary side by side with the same model, data, batching and
//! hyperparameters in PyTorch (`bench/peers/train_torch.py`), both on the
//! same number of CPU threads.
//!
//! Under `bench/out/train/`: `pipeline.toml` (`pipelines/ewt.toml` with its
//! runs under `runs/` here and `train.epochs` set), the clean, split and
//! tokenize stages run by the pipeline runner into `runs/ewt/` (cached
//! between runs), mtl's training in `runs/ewt/train/` and its scores in
//! `runs/ewt/eval/`, the peer's in `runs/ewt/train-pytorch/`, each child's
//! stdout and stderr in `logs/`, and the table as `results.json`.
//!
//! Both tools count what `mtl-train` counts: tokens are the unpadded
//! sub-tokens (special tokens included) of every batch that took a step,
//! over the seconds of the whole training loop (its per-epoch dev
//! evaluations and checkpoints included, loading and saving the final
//! model not). Each tool times its own loop; wall time and peak RSS are
//! measured from outside, as for the other benchmarks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    let v: serde_json::Value = serde_json::from_str(metrics)?;
    let tasks = v["tasks"].as_object().context("no `tasks` object")?;
    tasks
        .iter()
        .filter(|(_, t)| !t["splits"]["test"].is_null())
        .map(|(name, t)| {
            let acc = t["splits"]["test"]["metrics"]["accuracy"]
                .as_f64()
                .with_context(|| format!("no `tasks.{name}.splits.test.metrics.accuracy`"))?;
            Ok((name.clone(), acc))
        })
        .collect()
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
            "{}: {} ({} train rows, {} dev rows), batch size {}, {} thread(s) per tool\n\
             {} CPUs, {}, load average {} at start, {} at end\n\n",
            self.pipeline,
            self.input,
            self.train_rows,
            self.dev_rows,
            self.batch_size,
            self.threads,
            self.cpus,
            self.os,
            self.load_average_start.as_deref().unwrap_or("unknown"),
            self.load_average_end.as_deref().unwrap_or("unknown"),
        );
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
                "{}: test {test}; loss {} first step, {} last epoch; {} parameters; wall {:.1} s\n",
                t.tool,
                loss(t.first_loss),
                loss(t.last_epoch_loss),
                t.parameters,
                t.wall_s,
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
        out
    }
}

/// The pipeline `original` (read from `original_dir`) rewritten for the
/// benchmark: its runs under `runs_dir`, relative dataset files made
/// absolute (the config moves) and `train.epochs = epochs`; everything
/// else as it is.
pub fn bench_config(
    original: &str,
    original_dir: &Path,
    runs_dir: &Path,
    epochs: usize,
) -> Result<String> {
    let epochs = i64::try_from(epochs).context("epochs out of range")?;
    let mut doc: toml::Table = toml::from_str(original).context("parsing TOML")?;
    for (section, key) in NOT_MIRRORED {
        if let Some(t) = doc.get_mut(*section).and_then(toml::Value::as_table_mut) {
            t.remove(*key);
        }
    }
    let original = toml::to_string(&doc).context("writing TOML")?;
    rewrite_pipeline(
        &original,
        original_dir,
        runs_dir,
        "train",
        "train",
        |train| {
            train.insert("epochs".into(), epochs.into());
            Ok(())
        },
    )
}

/// Settings of the shipped recipe that the PyTorch peer does not mirror
/// (it has no character CNN, word dropout or early stopping): the
/// benchmark leaves them out of both sides and says so, so that the two
/// tools train the same model. `tokenize.char_ids` stays: it only adds a
/// column that neither side reads without `model.char_cnn`.
pub const NOT_MIRRORED: &[(&str, &str)] = &[
    ("model", "char_cnn"),
    ("train", "word_dropout"),
    ("train", "patience"),
];

/// Fails, naming the setting, where the pipeline uses something the peer
/// does not mirror.
pub fn check_peer_mirrors(cfg: &PipelineConfig) -> Result<()> {
    let src = cfg.source.path.display();
    if cfg.model.encoder != EncoderKind::Bilstm {
        bail!("{src}: the PyTorch peer mirrors `model.encoder = \"bilstm\"` only");
    }
    for t in &cfg.tasks {
        if t.kind != TaskKind::Tagging || t.crf {
            bail!(
                "{src}: task `{}`: the PyTorch peer mirrors tagging tasks without CRF only",
                t.name
            );
        }
    }
    // Read through serde so that this compiles with or without the key.
    let model = serde_json::to_value(&cfg.model).context("the [model] section")?;
    if !model["char_cnn"].is_null() {
        bail!("{src}: `model.char_cnn` is set, which the PyTorch peer does not mirror");
    }
    let tc = &cfg.train;
    let unsupported = [
        ("train.weighting", tc.weighting != Weighting::Static),
        ("train.pcgrad", tc.pcgrad),
        ("train.max_tokens", tc.max_tokens.is_some()),
        ("train.eval_every", tc.eval_every.is_some()),
        ("train.patience", tc.patience.is_some()),
        ("train.word_dropout", tc.word_dropout > 0.0),
        ("tokenize.pad_to", cfg.tokenize.pad_to.is_some()),
    ];
    if let Some((key, _)) = unsupported.iter().find(|(_, set)| *set) {
        bail!("{src}: `{key}` is set, which the PyTorch peer does not mirror");
    }
    Ok(())
}

/// What the peer needs: the tokenize tables, the model's sizes (from the
/// bundle mtl-train wrote, `model/model.json`), the task weights and class
/// weights, and the training settings.
pub fn peer_spec(
    cfg: &PipelineConfig,
    model_json: &serde_json::Value,
    labels: &LabelSet,
    tokenized: &Path,
    threads: usize,
) -> Result<serde_json::Value> {
    let enc = &model_json["spec"]["encoder"];
    if enc["kind"].as_str() != Some("bilstm") || !enc["char_cnn"].is_null() {
        bail!("model.json: the PyTorch peer mirrors a bilstm encoder without char_cnn only");
    }
    let size = |key: &str| {
        enc[key]
            .as_u64()
            .with_context(|| format!("no `spec.encoder.{key}` in model.json"))
    };
    let encoder = json!({
        "vocab_size": size("vocab_size")?,
        "embedding_dim": size("embedding_dim")?,
        "hidden_dim": size("hidden_dim")?,
        "layers": size("layers")?,
        "dropout": enc["dropout"].as_f64().context("no `spec.encoder.dropout` in model.json")?,
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

/// Builds the stages, prepares the tokenized data, trains with both
/// tools, prints progress and writes `results.json`.
pub fn train(opts: &TrainBench) -> Result<TrainResults> {
    if opts.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    let root = workspace_root();
    let dir = train_dir(&root);
    let say = progress(opts.quiet);
    let load_start = load_average();
    let data = data_dir(opts.data_dir.as_deref(), &root)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let config = write_pipeline(&root, PIPELINE, &dir, |text, original_dir, runs| {
        bench_config(text, original_dir, runs, opts.epochs)
    })?;
    let cfg = PipelineConfig::load(&config, Some(&data))?;
    say(format!(
        "{PIPELINE} without {}: the PyTorch peer does not mirror them",
        NOT_MIRRORED
            .iter()
            .map(|(s, k)| format!("{s}.{k}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if !opts.skip_peer {
        check_peer_mirrors(&cfg)?;
    }
    let threads = cfg
        .train
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));

    say("building the stage binaries (release) ...".into());
    let bin_dir = build_binaries(&Stage::ALL, opts.quiet)?;
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
    let test = read_report(&eval.join("metrics.json"), test_accuracy)?;
    let mut tools = vec![ToolResult::new(MTL_TRAIN, &report, test, &m)];

    if let Some(python) = &python {
        let model_path = ours.join("model").join("model.json");
        let model_json: serde_json::Value = mtl_core::fsio::read_json(&model_path)?;
        let labels = LabelSet::read(&tokenized.join(LabelSet::FILE))?;
        let spec = peer_spec(&cfg, &model_json, &labels, &tokenized, threads)
            .with_context(|| format!("the peer's spec from {}", model_path.display()))?;
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
    }

    let mut results = TrainResults {
        pipeline: cfg.pipeline.name.clone(),
        input: rel(&root, &tokenized),
        train_rows: manifest_rows(&tokenized, "train")?,
        dev_rows: manifest_rows(&tokenized, "dev")?,
        epochs: opts.epochs,
        batch_size: cfg.train.batch_size,
        threads,
        cpus: cpus(),
        os: os(),
        load_average_start: load_start,
        load_average_end: load_average(),
        tasks: cfg.tasks.iter().map(|t| t.name.clone()).collect(),
        tools,
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
        let out =
            bench_config(&text, &root.join("pipelines"), &dir.path().join("runs"), 2).unwrap();
        let path = dir.path().join("pipeline.toml");
        std::fs::write(&path, &out).unwrap();
        let data = Path::new("/data");
        let cfg = PipelineConfig::load(&path, Some(data)).unwrap();
        let orig = PipelineConfig::load(&original, Some(data)).unwrap();
        assert_eq!(cfg.train.epochs, 2);
        assert_eq!(cfg.run_dir(), dir.path().join("runs/ewt"));
        assert_eq!(cfg.train.batch_size, orig.train.batch_size);
        assert_eq!(cfg.model.hidden_dim, orig.model.hidden_dim);
        assert!(cfg.model.char_cnn.is_none() && cfg.train.patience.is_none());
        assert_eq!(cfg.train.word_dropout, 0.0);
        // Clean, split and tokenize read the same sections: same
        // fingerprints, so the cached stages stay valid whatever --epochs.
        for stage in [Stage::Clean, Stage::Split, Stage::Tokenize] {
            assert_eq!(
                mtl_core::manifest::fingerprint(stage, 1, &cfg, &[]),
                mtl_core::manifest::fingerprint(stage, 1, &orig, &[]),
                "{stage}"
            );
        }
        check_peer_mirrors(&cfg).unwrap();
    }

    #[test]
    fn the_peer_spec_has_the_bundle_sizes_and_refuses_what_it_cannot_mirror() {
        let root = workspace_root();
        let mut cfg = PipelineConfig::load(&root.join(PIPELINE), Some(Path::new("/d"))).unwrap();
        // The shipped recipe as it is names what the peer lacks ...
        let err = check_peer_mirrors(&cfg).unwrap_err().to_string();
        assert!(err.contains("model.char_cnn"), "{err}");
        // ... and bench_config leaves those settings out.
        cfg.model.char_cnn = None;
        cfg.train.word_dropout = 0.0;
        cfg.train.patience = None;
        let model_json: serde_json::Value = serde_json::from_str(
            r#"{"spec": {"encoder": {"kind": "bilstm", "vocab_size": 8000,
                "embedding_dim": 100, "hidden_dim": 128, "layers": 2, "dropout": 0.1},
                "tasks": [{"name": "upos", "num_labels": 17}, {"name": "xpos", "num_labels": 49},
                          {"name": "ufeats", "num_labels": 230}, {"name": "deprel", "num_labels": 51}]}}"#,
        )
        .unwrap();
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
        let spec = peer_spec(&cfg, &model_json, &labels, Path::new("/tok"), 2).unwrap();
        assert_eq!(spec["encoder"]["hidden_dim"], 128);
        assert_eq!(spec["tasks"][2]["name"], "ufeats");
        assert_eq!(spec["tasks"][2]["num_labels"], 230);
        assert_eq!(spec["tasks"][0]["class_weights"], json!([1.0, 2.0]));
        assert!(spec["tasks"][1]["class_weights"].is_null());
        assert_eq!(spec["train"]["schedule"], "linear");
        assert_eq!(spec["train"]["sampling"], "proportional");
        assert_eq!(spec["train"]["batch_size"], 32);
        assert_eq!(spec["data"]["dev"], "/tok/dev.parquet");
        assert_eq!(spec["threads"], 2);

        cfg.train.pcgrad = true;
        let err = check_peer_mirrors(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("train.pcgrad") && err.contains("ewt.toml"),
            "{err}"
        );
        cfg.train.pcgrad = false;
        cfg.tasks[1].crf = true;
        let err = check_peer_mirrors(&cfg).unwrap_err().to_string();
        assert!(err.contains("task `xpos`"), "{err}");
    }
}
