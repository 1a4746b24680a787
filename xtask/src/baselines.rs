//! `cargo xtask run PIPELINE --baselines`: the pipeline as usual, then one
//! single-task model per task with the same encoder and budget, then the
//! multi-task eval again, now comparing both ways (Δp and the costs).
//!
//! Each single-task model trains and is scored on the multi-task run's own
//! tokenize output (`runs/<p>/tokenize`), not on a re-run of clean, split
//! and tokenize from its own config: its vocabulary, its dev and test rows
//! and its side inputs are then exactly the multi-task model's. A re-run
//! could differ (stratifying by another task, rows quarantined for another
//! task's labels, a tokenizer fitted on other text), and the comparison
//! would no longer hold the data fixed.
//!
//! "Same budget" means the same `[model]` and `[train]` sections: same
//! encoder and sizes, same epochs, batch size, learning rates, schedule,
//! evaluation and early stopping, and `max_steps` (a cap per model). An
//! epoch is one pass over the training rows that carry a task of the model,
//! so a single-task epoch covers its task's rows only. Where the tasks
//! label disjoint datasets (TweetEval) the k models together take about as
//! many steps as the multi-task one; where they label the same rows (the
//! sample, EWT) each takes as many, k times as many in all. Each model keeps
//! its best dev evaluation, as `mtl-train` does: a single-task model is
//! chosen on its own task, the multi-task model on the mean of all, so the
//! test split is the fairer comparison.
//!
//! Layout, beside the multi-task stages:
//!
//! ```text
//! runs/<p>/baselines/<task>/pipeline.toml   the derived single-task config
//! runs/<p>/baselines/<task>/{train,eval}/   its train and eval stages
//! runs/<p>/baselines.json                   what eval compares with (mtl_eval::baselines)
//! ```
//!
//! Every stage keeps its fingerprint cache, so a second `--baselines` run
//! with nothing changed runs nothing: the single-task stages are cached,
//! `baselines.json` is rewritten byte for byte from their cached outputs,
//! and the multi-task eval, whose fingerprint covers that file, is cached.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mtl_core::{PipelineConfig, Stage};
use mtl_eval::baselines::{Comparison, SingleTaskScore, SingleTaskScores, SplitScore};
use mtl_eval::{Metrics, render_comparison};

use crate::pipeline::{self, RunOptions, StageCall, StageRun};

/// Folder of the single-task runs inside `runs/<p>/`.
pub const DIR: &str = "baselines";

/// The derived config of each single-task run, in its folder.
pub const CONFIG_FILE: &str = "pipeline.toml";

/// What one `--baselines` run did.
#[derive(Debug)]
pub struct BaselinesRun {
    /// The multi-task pipeline's stages, as `cargo xtask run` runs them.
    pub pipeline: Vec<StageRun>,
    /// Per task, its single-task train and eval.
    pub single: BTreeMap<String, Vec<StageRun>>,
    /// The multi-task eval after `baselines.json` was written.
    pub eval: StageRun,
    /// `runs/<p>/baselines.json`.
    pub baselines_path: PathBuf,
    pub scores: SingleTaskScores,
    /// The comparison table, as printed.
    pub comparison: String,
}

impl BaselinesRun {
    /// Every stage run, single-task and final eval included.
    pub fn all_runs(&self) -> impl Iterator<Item = &StageRun> {
        self.pipeline
            .iter()
            .chain(self.single.values().flatten())
            .chain(std::iter::once(&self.eval))
    }
}

/// The single-task config of `task`: `cfg` with that task alone, under
/// `runs/<p>/baselines/<task>` (pipeline name = the task), every relative
/// path made absolute so that the file works from its own folder
/// (`$DATA_DIR` paths stay; the data directory is passed on), training
/// caps of other tasks dropped, and `split.stratify` dropped unless it is
/// this task (split does not run for a baseline; the key must still name a
/// task of the config).
pub fn single_task_config(cfg: &PipelineConfig, task: &str) -> Result<PipelineConfig> {
    let Some(t) = cfg.task(task) else {
        bail!("{}: no task named `{task}`", cfg.source.path.display());
    };
    let mut out = cfg.clone();
    out.pipeline.name = task.to_string();
    out.pipeline.runs_dir = cfg.run_dir().join(DIR);
    out.tasks = vec![t.clone()];
    out.train.task_caps.retain(|name, _| name == task);
    if out.split.stratify.as_deref() != Some(task) {
        out.split.stratify = None;
    }
    for (i, d) in out.datasets.iter_mut().enumerate() {
        let f = &mut d.files;
        for (split, raw) in [
            ("all", &mut f.all),
            ("train", &mut f.train),
            ("dev", &mut f.dev),
            ("test", &mut f.test),
        ] {
            if let Some(raw) = raw.as_mut() {
                *raw = absolute(cfg, &format!("datasets[{i}].files.{split}"), raw)?;
            }
        }
    }
    if let Some(raw) = out.tokenize.pretrained.as_mut() {
        *raw = absolute(cfg, "tokenize.pretrained", raw)?;
    }
    if let Some(raw) = out.model.pretrained.as_mut() {
        *raw = absolute(cfg, "model.pretrained", raw)?;
    }
    Ok(out)
}

/// A config path made absolute against the config's folder, or `raw` as it
/// is when it starts with `$DATA_DIR`.
fn absolute(cfg: &PipelineConfig, key: &str, raw: &str) -> Result<String> {
    if raw.starts_with("$DATA_DIR") {
        return Ok(raw.to_string());
    }
    let p = cfg.resolve_path(key, raw)?;
    // Canonical where it exists (no `pipelines/../`), else just absolute.
    let p = std::fs::canonicalize(&p)
        .or_else(|_| std::path::absolute(&p))
        .with_context(|| format!("{}: key `{key}`", cfg.source.path.display()))?;
    p.to_str().map(String::from).with_context(|| {
        format!(
            "{}: key `{key}`: {} is not UTF-8",
            cfg.source.path.display(),
            p.display()
        )
    })
}

/// The derived config as TOML, with a header saying where it comes from and
/// how its stages are called.
pub fn config_text(single: &PipelineConfig, from: &Path, tokenize_dir: &Path) -> Result<String> {
    let body = toml::to_string(single).context("writing a single-task config as TOML")?;
    let task = single.tasks.first().map_or("", |t| t.name.as_str());
    Ok(format!(
        "# Single-task baseline of `{task}`, derived from {} by\n\
         # `cargo xtask run --baselines`: this task alone, [model] and [train] unchanged.\n\
         # It trains and is scored on the multi-task run's tokenize output:\n\
         #   mtl-train --config THIS --input {tok}\n\
         #   mtl-eval  --config THIS --input {tok}\n\n{body}",
        from.display(),
        tok = tokenize_dir.display(),
    ))
}

/// Runs the pipeline, every single-task baseline, writes `baselines.json`
/// and runs the multi-task eval again. `opts.until` must be eval (or none).
/// `--force` forces the baselines too; `--from train` or earlier re-trains
/// them, `--from eval` re-scores them.
pub fn run(opts: &RunOptions) -> Result<BaselinesRun> {
    if opts.until.is_some_and(|s| s != Stage::Eval) {
        bail!(
            "--baselines compares evaluated models: it runs the pipeline up to eval, not --until"
        );
    }
    let bin_dir = match &opts.bin_dir {
        Some(d) => d.clone(),
        None => pipeline::build_stage_binaries(opts.quiet)?,
    };
    let multi = pipeline::run(&RunOptions {
        bin_dir: Some(bin_dir.clone()),
        ..opts.clone()
    })?;

    let cfg = PipelineConfig::load(&opts.pipeline, opts.data_dir.as_deref())?;
    let run_dir = cfg.run_dir();
    let tokenize_dir = run_dir.join(Stage::Tokenize.name());
    let forced = |stage: Stage| opts.force || opts.from.is_some_and(|f| f <= stage);
    let mut single = BTreeMap::new();
    let mut scores = SingleTaskScores {
        description: Some(description(&cfg)),
        tasks: BTreeMap::new(),
    };
    for task in &cfg.tasks {
        let dir = run_dir.join(DIR).join(&task.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let derived = single_task_config(&cfg, &task.name)?;
        let config = dir.join(CONFIG_FILE);
        mtl_core::fsio::atomic_write(
            &config,
            config_text(&derived, &opts.pipeline, &tokenize_dir)?.as_bytes(),
        )?;
        if !opts.quiet {
            println!("\nsingle-task baseline `{}`", task.name);
        }
        let call = |force: bool| StageCall {
            bin_dir: &bin_dir,
            config: &config,
            data_dir: opts.data_dir.as_deref(),
            force,
            quiet: opts.quiet,
        };
        let train_dir = dir.join(Stage::Train.name());
        let eval_dir = dir.join(Stage::Eval.name());
        let os = |p: &Path| p.as_os_str().to_owned();
        let train = call(forced(Stage::Train)).run(
            Stage::Train,
            &train_dir,
            &[
                OsStr::new("--input"),
                &os(&tokenize_dir),
                OsStr::new("--out"),
                &os(&train_dir),
            ],
        )?;
        let eval = call(forced(Stage::Eval)).run(
            Stage::Eval,
            &eval_dir,
            &[
                OsStr::new("--input"),
                &os(&tokenize_dir),
                OsStr::new("--model"),
                &os(&train_dir),
                OsStr::new("--out"),
                &os(&eval_dir),
            ],
        )?;
        single.insert(task.name.clone(), vec![train, eval]);
        scores
            .tasks
            .insert(task.name.clone(), single_task_score(&eval_dir, &task.name)?);
    }

    let eval_dir = run_dir.join(Stage::Eval.name());
    let baselines_path = mtl_eval::default_baselines_path(&eval_dir);
    mtl_core::fsio::write_json(&baselines_path, &scores)?;
    if !opts.quiet {
        println!("\nmulti-task eval with {}", baselines_path.display());
    }
    // Not forced: its fingerprint covers baselines.json, so it re-runs
    // exactly when the single-task results changed.
    let eval = StageCall {
        bin_dir: &bin_dir,
        config: &opts.pipeline,
        data_dir: opts.data_dir.as_deref(),
        force: false,
        quiet: opts.quiet,
    }
    .run(Stage::Eval, &eval_dir, &[])?;
    let metrics = Metrics::read(&eval_dir)
        .with_context(|| format!("reading the metrics in {}", eval_dir.display()))?;
    let comparison = render_comparison(&Comparison::new(&metrics, &scores));
    Ok(BaselinesRun {
        pipeline: multi,
        single,
        eval,
        baselines_path,
        scores,
        comparison,
    })
}

fn description(cfg: &PipelineConfig) -> String {
    let encoder = serde_json::to_value(cfg.model.encoder)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    format!(
        "one {encoder} model per task with the multi-task run's [model] and [train] settings \
         ({} epochs, batch size {}, over the training rows of its task), trained and scored on \
         the same tokenize output (same tokenizer, same rows)",
        cfg.train.epochs, cfg.train.batch_size
    )
}

/// A single-task run's headline scores and cost, from its `metrics.json`.
fn single_task_score(eval_dir: &Path, task: &str) -> Result<SingleTaskScore> {
    let metrics = Metrics::read(eval_dir)
        .with_context(|| format!("reading the metrics in {}", eval_dir.display()))?;
    let source = eval_dir.join(Metrics::FILE);
    let Some(t) = metrics.tasks.get(task) else {
        bail!("{}: no task `{task}`", source.display());
    };
    Ok(SingleTaskScore {
        metric: Some(t.metric.clone()),
        split: Some(metrics.headline_split.clone()),
        score: t.score,
        ci: t.ci,
        source: Some(source.display().to_string()),
        splits: t
            .splits
            .iter()
            .map(|(s, m)| {
                (
                    s.clone(),
                    SplitScore {
                        score: m.score,
                        ci: m.ci,
                    },
                )
            })
            .collect(),
        cost: metrics.cost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[pipeline]
name = "multi"
runs_dir = "out/runs"

[[datasets]]
name = "reviews"
format = "jsonl"
files = { all = "../data/reviews.jsonl" }

[[datasets]]
name = "tweets"
format = "lines"
files = { train = "$DATA_DIR/tweets/train.txt", dev = "/abs/dev.txt", test = "t.txt" }

[[tasks]]
name = "sentiment"
dataset = "reviews"
column = "sentiment"
type = "classification"
metric = "accuracy"

[[tasks]]
name = "topic"
dataset = "reviews"
column = "topic"
type = "classification"
class_weights = "balanced"
unknown_labels = { policy = "map-to", label = "other" }

[[tasks]]
name = "irony"
dataset = "tweets"
column = "label"
type = "classification"
metric = { f1_of = ["irony"] }

[split]
stratify = "sentiment"

[train]
epochs = 3
task_caps = { sentiment = 10, topic = 20 }
"#;

    fn config() -> PipelineConfig {
        PipelineConfig::from_toml_str(CONFIG, Path::new("/work/pipelines/multi.toml")).unwrap()
    }

    #[test]
    fn a_single_task_config_keeps_one_task_and_makes_paths_absolute() {
        let cfg = config();
        let topic = single_task_config(&cfg, "topic").unwrap();
        assert_eq!(topic.tasks.len(), 1);
        assert_eq!(topic.tasks[0].name, "topic");
        assert_eq!(topic.pipeline.name, "topic");
        assert_eq!(topic.run_dir(), Path::new("out/runs/multi/baselines/topic"));
        assert_eq!(topic.split.stratify, None);
        assert_eq!(topic.train.task_caps, [("topic".to_string(), 20)].into());
        assert_eq!(topic.train.epochs, 3);
        assert_eq!(topic.pipeline.seed, cfg.pipeline.seed);
        // Relative to the config's folder, now absolute; $DATA_DIR kept.
        let files = &topic.datasets[0].files;
        assert_eq!(
            files.all.as_deref(),
            Some("/work/pipelines/../data/reviews.jsonl")
        );
        let tweets = &topic.datasets[1].files;
        assert_eq!(tweets.train.as_deref(), Some("$DATA_DIR/tweets/train.txt"));
        assert_eq!(tweets.dev.as_deref(), Some("/abs/dev.txt"));
        assert_eq!(tweets.test.as_deref(), Some("/work/pipelines/t.txt"));

        // The stratifying task keeps its stratification.
        let sentiment = single_task_config(&cfg, "sentiment").unwrap();
        assert_eq!(sentiment.split.stratify.as_deref(), Some("sentiment"));
        assert!(single_task_config(&cfg, "nope").is_err());
    }

    #[test]
    fn the_written_config_loads_back_from_another_folder() {
        let cfg = config();
        for task in ["sentiment", "topic", "irony"] {
            let single = single_task_config(&cfg, task).unwrap();
            let text = config_text(
                &single,
                Path::new("/work/pipelines/multi.toml"),
                Path::new("out/runs/multi/tokenize"),
            )
            .unwrap();
            assert!(text.starts_with("# Single-task baseline of"), "{text}");
            let path = Path::new("/elsewhere/baselines")
                .join(task)
                .join(CONFIG_FILE);
            let back = PipelineConfig::from_toml_str(&text, &path).unwrap();
            assert_eq!(back.tasks.len(), 1);
            let (a, b) = (&back.tasks[0], &single.tasks[0]);
            assert_eq!(
                (
                    &a.name,
                    a.kind,
                    &a.metric,
                    &a.class_weights,
                    &a.unknown_labels
                ),
                (
                    &b.name,
                    b.kind,
                    &b.metric,
                    &b.class_weights,
                    &b.unknown_labels
                )
            );
            // Every stage fingerprint that reads the config sees the same
            // values as in the derived config.
            for stage in Stage::ALL {
                assert_eq!(
                    stage.config_section(&back),
                    stage.config_section(&single),
                    "{task} {stage}"
                );
            }
            // Same tokenizer, encoder and budget as the multi-task config.
            assert_eq!(
                Stage::Tokenize.config_section(&back),
                Stage::Tokenize.config_section(&cfg)
            );
            assert_eq!(
                serde_json::to_value(&back.model).unwrap(),
                serde_json::to_value(&cfg.model).unwrap()
            );
            let budget = |c: &PipelineConfig| {
                let mut v = serde_json::to_value(&c.train).unwrap();
                v.as_object_mut().unwrap().remove("task_caps");
                v
            };
            assert_eq!(budget(&back), budget(&cfg));
            assert_eq!(back.run_dir(), cfg.run_dir().join(DIR).join(task));
            // Paths no longer depend on where the file is.
            assert_eq!(
                back.resolve_path("k", back.datasets[0].files.all.as_deref().unwrap())
                    .unwrap(),
                cfg.resolve_path("k", cfg.datasets[0].files.all.as_deref().unwrap())
                    .unwrap()
            );
        }
    }
}
