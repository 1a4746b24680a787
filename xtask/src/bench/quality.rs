//! `cargo xtask bench quality`: trains each shipped real pipeline (those
//! whose datasets live under `$DATA_DIR`) with the pipeline runner, and
//! writes the quality tables a user compares with other tools: each task's
//! test headline with its 95% bootstrap interval, the dev score, training
//! time and peak memory, optionally the single-task baselines and Δp
//! (`--baselines`, through [`crate::baselines`]) and the peers run on this
//! machine (`--peers`: spaCy on EWT, `bench/peers/spacy_ewt.sh`), beside
//! published reference numbers ([`PUBLISHED`], each with its source).
//!
//! It reuses the orchestration, never `cargo xtask run` as a process:
//! [`pipeline::run`] (or [`baselines::run`]) per pipeline, so every stage
//! keeps its fingerprint cache. `--reuse` goes further and takes the runs
//! already in `runs/<p>/` without calling a stage at all when their
//! manifests are fresh ([`fresh_run`]).
//!
//! Outputs: a Markdown page (default `docs/benchmarks.md`; when the file
//! exists, only the part between [`BEGIN`] and [`END`] is replaced, or the
//! part is appended) and `bench/out/quality/results.json` (git-ignored).
//! `--smoke` runs the whole path on a 300-row slice of the sample with a
//! tiny model and 20 steps, writing into a temporary folder, and checks the
//! peer script statically (`bash -n`, what it installs and imports) instead
//! of running it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use mtl_core::manifest::fingerprint;
use mtl_core::{Manifest, PipelineConfig, Stage};
use mtl_eval::Metrics;
use mtl_eval::baselines::{Comparison, SingleTaskScores, lower_is_better, relative_gain};
use serde::{Deserialize, Serialize};

use super::measure;
use super::tokenize::data_dir;
use super::{MIB, cpus, load_average, os, progress, rel};
use crate::baselines;
use crate::pipeline::{self, RunOptions, StageRun, workspace_root};

/// The spaCy peer of the EWT pipeline.
pub const SPACY_SCRIPT: &str = "bench/peers/spacy_ewt.sh";
/// What the peer script must install.
pub const SPACY_PIN: &str = "spacy==3.8.*";
/// The default page.
pub const DEFAULT_PAGE: &str = "docs/benchmarks.md";
/// What marks the generated part of the page.
pub const BEGIN: &str =
    "<!-- BEGIN cargo xtask bench quality: generated, edits in here are overwritten -->";
pub const END: &str = "<!-- END cargo xtask bench quality -->";

/// `bench/out/quality` of the workspace.
pub fn quality_dir(root: &Path) -> PathBuf {
    root.join("bench/out/quality")
}

#[derive(Debug, Clone, Default)]
pub struct QualityBench {
    /// Pipeline names (`ewt` = `pipelines/ewt.toml`) or config paths;
    /// empty: every `pipelines/*.toml` reading `$DATA_DIR`.
    pub pipelines: Vec<String>,
    /// For `$DATA_DIR`; else `$MTL_DATA_DIR`, else `../shared/datasets`.
    pub data_dir: Option<PathBuf>,
    /// Also the single-task baselines and Δp.
    pub baselines: bool,
    /// Also the peers of the pipelines that have one.
    pub peers: bool,
    /// The page [default: `docs/benchmarks.md`; with `smoke`, in the
    /// smoke folder].
    pub out: Option<PathBuf>,
    /// The results [default: `bench/out/quality/results.json`; with
    /// `smoke`, beside the page].
    pub json: Option<PathBuf>,
    /// Take fresh runs as they are instead of calling the stages.
    pub reuse: bool,
    /// A tiny pipeline instead of the real ones, in `work_dir`.
    pub smoke: bool,
    /// Where the smoke pipeline, its data and runs go [default: a new
    /// temporary folder, kept].
    pub work_dir: Option<PathBuf>,
    /// The stage binaries; `None` builds them (once, when a stage must run).
    pub bin_dir: Option<PathBuf>,
    /// The command line, for the page.
    pub command: String,
    pub quiet: bool,
}

/// What a run of the benchmark wrote.
#[derive(Debug)]
pub struct Outcome {
    pub results: QualityResults,
    /// The generated Markdown (what went between the markers).
    pub markdown: String,
    pub page: PathBuf,
    pub json: PathBuf,
}

/// `results.json`. Scores are as in `metrics.json` (fractions for the
/// 0..1 metrics); the page shows those as percentages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityResults {
    pub command: String,
    /// `YYYY-MM-DD HH:MM UTC`.
    pub date: String,
    pub machine: Machine,
    /// `git describe`-like: the commit, `+dirty` with uncommitted changes.
    pub commit: Option<String>,
    pub data_dir: Option<String>,
    pub smoke: bool,
    pub pipelines: Vec<PipelineResult>,
    /// Pipelines that failed; the others are still reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Failed>,
    /// Static checks of peer scripts (`--smoke --peers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_checks: Vec<PeerCheck>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    pub config: String,
    pub error: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: Option<String>,
    pub mem_total_bytes: Option<u64>,
    pub os: String,
    /// 1, 5 and 15 minute load averages when the benchmark started.
    pub load_average: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineResult {
    pub name: String,
    pub config: String,
    pub run_dir: String,
    /// Taken from `runs/` as it was (`--reuse`, fresh): no stage called.
    pub reused: bool,
    pub stages_run: usize,
    pub stages_cached: usize,
    pub tasks: Vec<TaskRow>,
    /// Scores of several tasks together (TweetEval's stance).
    pub aggregates: Vec<AggregateRow>,
    pub train: TrainSummary,
    pub baselines: Option<BaselinesSummary>,
    pub published: Vec<PublishedRow>,
    pub peers: Vec<PeerResult>,
    /// `cargo xtask run ...` for this pipeline alone.
    pub reproduce: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub value: f64,
    pub ci: Option<[f64; 2]>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRow {
    pub task: String,
    pub kind: String,
    pub metric: String,
    pub test: Option<Score>,
    /// Examples (sentences for token tasks) scored on test.
    pub test_n: Option<u64>,
    pub dev: Option<Score>,
    /// The single-task model's test and dev score (`--baselines`).
    pub single_test: Option<Score>,
    pub single_dev: Option<Score>,
    /// `relative_gain` of multi over single on test, percent.
    pub gain_test: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateRow {
    pub name: String,
    pub metric: String,
    /// The tasks averaged.
    pub of: Vec<String>,
    pub test: Option<f64>,
    pub dev: Option<f64>,
    pub single_test: Option<f64>,
}

/// From `train/report.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainSummary {
    pub seconds: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    pub tokens_per_second: Option<f64>,
    pub best_epoch: Option<u64>,
    pub epochs: Option<u64>,
    pub steps: Option<u64>,
    pub parameters: Option<u64>,
    pub stopped_early: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselinesSummary {
    pub description: Option<String>,
    /// Per split: Δp in percent, over how many of the tasks.
    pub delta_p: BTreeMap<String, DeltaP>,
    /// The k single-task models together.
    pub models: Option<u32>,
    pub train_seconds: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeltaP {
    pub value: f64,
    pub tasks: usize,
    pub of: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedRow {
    pub system: String,
    pub source: String,
    pub note: String,
    /// Per task (or aggregate), as a fraction.
    pub scores: BTreeMap<String, f64>,
    /// Decimals of the percentages as published.
    pub decimals: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerResult {
    /// Column title, e.g. `spaCy 3.8.7`.
    pub name: String,
    /// Its JSON report.
    pub report: String,
    /// Per task, as a fraction (mapped from the peer's own names).
    pub scores: BTreeMap<String, f64>,
    /// What has no task column (LAS, UAS), as a fraction.
    pub extra: BTreeMap<String, f64>,
    pub train_seconds: Option<f64>,
    /// The whole script, measured from outside (venv and convert included);
    /// absent when the report was reused.
    pub wall_seconds: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    /// Trained on a slice only: not a result.
    pub sentences: Option<u64>,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerCheck {
    pub script: String,
    pub checks: Vec<String>,
}

/// A published result, shown beside ours; not run here.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub pipeline: &'static str,
    pub system: &'static str,
    pub source: &'static str,
    pub note: &'static str,
    /// Per task or aggregate, in percent as published.
    pub scores: &'static [(&'static str, f64)],
    /// Decimals of the percentages as published.
    pub decimals: usize,
}

const TWEETEVAL_SOURCE: &str = "Barbieri et al., TweetEval, Findings of EMNLP 2020, Table 2 \
    (test); the same rows are the leaderboard of the TweetEval README \
    (`shared/datasets/tweeteval/README.md`)";

/// Published test results on the pipelines' datasets, by pipeline
/// [`family`] (`ewt` covers `ewt-minilm` too).
pub const PUBLISHED: &[Published] = &[
    Published {
        pipeline: "ewt",
        system: "Stanza 1.x",
        source: "Qi et al. 2020, Stanza (ACL demos), \
            stanfordnlp.github.io/stanza/performance.html; the numbers our issue quotes, \
            not re-checked here",
        note: "UD 2.x English EWT, test, gold tokenization; UFeats is the whole feature bundle",
        scores: &[("upos", 95.40), ("xpos", 95.12), ("ufeats", 96.11)],
        decimals: 2,
    },
    Published {
        pipeline: "tweeteval",
        system: "BiLSTM",
        source: TWEETEVAL_SOURCE,
        note: "the README names the row `LSTM`",
        scores: &[
            ("emoji", 24.7),
            ("emotion", 66.0),
            ("hate", 52.6),
            ("irony", 62.8),
            ("offensive", 71.7),
            ("stance", 59.4),
        ],
        decimals: 1,
    },
    Published {
        pipeline: "tweeteval",
        system: "FastText",
        source: TWEETEVAL_SOURCE,
        note: "",
        scores: &[
            ("emoji", 25.8),
            ("emotion", 65.2),
            ("hate", 50.6),
            ("irony", 63.1),
            ("offensive", 73.4),
            ("stance", 65.4),
        ],
        decimals: 1,
    },
    Published {
        pipeline: "tweeteval",
        system: "RoBERTa-base",
        source: TWEETEVAL_SOURCE,
        note: "pretrained on 160 GB of text, then fine-tuned per task; its 71.3 is \
            sentiment (not trained here), its stance is 68.0",
        scores: &[
            ("emoji", 30.9),
            ("emotion", 76.1),
            ("hate", 46.6),
            ("irony", 59.7),
            ("offensive", 79.5),
            ("stance", 68.0),
        ],
        decimals: 1,
    },
    Published {
        pipeline: "wnut17",
        system: "best shared-task system",
        source: "Derczynski et al. 2017, Results of the WNUT2017 Shared Task on Novel and \
            Emerging Entity Recognition (W-NUT workshop); also `shared/datasets/README.md`",
        note: "test entity F1; its surface F1 is 40.24",
        scores: &[("entities", 41.86)],
        decimals: 2,
    },
];

/// Several tasks scored as one, as the published numbers are: TweetEval's
/// stance is the mean over its five targets of the mean of F1(against)
/// and F1(favor), which is each `stance_*` task's headline.
#[derive(Debug, Clone, Copy)]
pub struct Aggregate {
    pub pipeline: &'static str,
    pub name: &'static str,
    pub prefix: &'static str,
    pub metric: &'static str,
}

pub const AGGREGATES: &[Aggregate] = &[Aggregate {
    pipeline: "tweeteval",
    name: "stance",
    prefix: "stance_",
    metric: "mean over targets of f1_of(against, favor)",
}];

/// The spaCy report key behind each EWT task's column.
pub const SPACY_EWT_TASKS: &[(&str, &str)] = &[
    ("upos", "pos_acc"),
    ("xpos", "tag_acc"),
    ("ufeats", "morph_acc"),
    // The `deps` task's headline is LAS, spaCy's `dep_las` on the same
    // gold words.
    ("deps", "dep_las"),
];
/// Shown under the table: the parser's other scores.
pub const SPACY_EWT_EXTRA: &[(&str, &str)] =
    &[("UAS", "dep_uas"), ("relation accuracy", "dep_label_acc")];

/// Runs the benchmark and writes the page and `results.json`.
pub fn run(opts: &QualityBench) -> Result<Outcome> {
    let root = workspace_root();
    let say = progress(opts.quiet);
    let machine = machine();
    let work = if opts.smoke {
        Some(match &opts.work_dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                d.clone()
            }
            None => tempfile::Builder::new()
                .prefix("mtl-bench-quality-smoke-")
                .tempdir()
                .context("creating a temporary folder")?
                .keep(),
        })
    } else {
        None
    };
    let (configs, data) = match &work {
        Some(w) => (vec![write_smoke_pipeline(&root, w)?], None),
        None => (
            select_pipelines(&root, &opts.pipelines)?,
            Some(data_dir(opts.data_dir.as_deref(), &root)?),
        ),
    };
    let out_dir = work.clone().unwrap_or_else(|| quality_dir(&root));
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    let mut bin_dir = opts.bin_dir.clone();
    let mut spacy: Option<PeerResult> = None;
    let mut pipelines = Vec::new();
    let mut failed = Vec::new();
    for config in &configs {
        let one = run_one(
            opts,
            &root,
            config,
            data.as_deref(),
            &mut bin_dir,
            &mut spacy,
            &say,
        );
        match one {
            Ok(r) => pipelines.push(r),
            // The others still run; the page says what failed.
            Err(e) => {
                say(format!("{} failed: {e:#}", rel(&root, config)));
                failed.push(Failed {
                    config: rel(&root, config),
                    error: format!("{e:#}"),
                });
            }
        }
    }

    let mut peer_checks = Vec::new();
    if opts.peers && opts.smoke {
        let script = root.join(SPACY_SCRIPT);
        let checks = check_peer_script(&script)?;
        peer_checks.push(PeerCheck {
            script: SPACY_SCRIPT.into(),
            checks,
        });
    }

    let results = QualityResults {
        command: opts.command.clone(),
        date: utc_now(),
        machine,
        commit: git_commit(&root),
        data_dir: data.as_ref().map(|d| d.display().to_string()),
        smoke: opts.smoke,
        pipelines,
        failed,
        peer_checks,
    };
    let markdown = render(&results);
    let page = match (&opts.out, &work) {
        (Some(p), _) => p.clone(),
        (None, Some(w)) => w.join("benchmarks.md"),
        (None, None) => root.join(DEFAULT_PAGE),
    };
    let json = match (&opts.json, &work) {
        (Some(p), _) => p.clone(),
        (None, Some(_)) => page.with_file_name("results.json"),
        (None, None) => out_dir.join("results.json"),
    };
    write_page(&page, &markdown)?;
    if let Some(dir) = json.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    mtl_core::fsio::write_json(&json, &results)?;
    if !results.failed.is_empty() {
        bail!(
            "{} of {} pipelines failed ({}); the others are in {} and {}",
            results.failed.len(),
            configs.len(),
            results
                .failed
                .iter()
                .map(|f| f.config.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            page.display(),
            json.display()
        );
    }
    Ok(Outcome {
        results,
        markdown,
        page,
        json,
    })
}

/// Runs (or, with `--reuse`, takes) one pipeline and reads its results;
/// builds the stage binaries the first time a stage must run, and runs the
/// spaCy peer at most once.
fn run_one(
    opts: &QualityBench,
    root: &Path,
    config: &Path,
    data: Option<&Path>,
    bin_dir: &mut Option<PathBuf>,
    spacy: &mut Option<PeerResult>,
    say: &dyn Fn(String),
) -> Result<PipelineResult> {
    let cfg = PipelineConfig::load(config, data)?;
    let name = cfg.pipeline.name.clone();
    say(format!("\n== {name} ({}) ==", rel(root, config)));
    let mut reused = false;
    if opts.reuse {
        match fresh_run(&cfg, opts.baselines) {
            Ok(()) => {
                say(format!(
                    "{}: fresh, taken as it is",
                    cfg.run_dir().display()
                ));
                reused = true;
            }
            Err(why) => say(format!("not reused: {why}; running it")),
        }
    }
    let mut stage_runs: Vec<StageRun> = Vec::new();
    if !reused {
        let bins = match bin_dir {
            Some(d) => d.clone(),
            None => {
                say("building the stage binaries (release) ...".into());
                let d = pipeline::build_stage_binaries(opts.quiet)?;
                *bin_dir = Some(d.clone());
                d
            }
        };
        let run_opts = RunOptions {
            pipeline: config.to_path_buf(),
            data_dir: data.map(Path::to_path_buf),
            force: false,
            from: None,
            until: None,
            bin_dir: Some(bins),
            quiet: opts.quiet,
        };
        if opts.baselines {
            let b = baselines::run(&run_opts)?;
            stage_runs.extend(b.all_runs().cloned());
        } else {
            stage_runs = pipeline::run(&run_opts)?;
        }
    }
    let mut result = collect(root, &cfg, config, data, opts.baselines)?;
    result.reused = reused;
    result.stages_cached = stage_runs.iter().filter(|r| r.cached).count();
    result.stages_run = stage_runs.len() - result.stages_cached;
    if opts.peers && !opts.smoke && family(&name) == "ewt" {
        if spacy.is_none() {
            let data = data.context("the spaCy peer needs the data directory")?;
            *spacy = Some(spacy_peer(root, data, opts.reuse, say)?);
        }
        result.peers.extend(spacy.clone());
    }
    Ok(result)
}

/// The dataset family of a pipeline name: `ewt` for `ewt` and
/// `ewt-minilm`. Published numbers, aggregates and peers go by it.
pub fn family(pipeline: &str) -> &str {
    pipeline.split('-').next().unwrap_or(pipeline)
}

/// The configs to run: the names or paths given, else every
/// `pipelines/*.toml` with a dataset under `$DATA_DIR`.
pub fn select_pipelines(root: &Path, given: &[String]) -> Result<Vec<PathBuf>> {
    if !given.is_empty() {
        return given
            .iter()
            .map(|g| {
                let p = if g.ends_with(".toml") || g.contains('/') {
                    PathBuf::from(g)
                } else {
                    root.join("pipelines").join(format!("{g}.toml"))
                };
                if p.is_file() {
                    Ok(p)
                } else {
                    bail!("no pipeline `{g}` ({} does not exist)", p.display())
                }
            })
            .collect();
    }
    let dir = root.join("pipelines");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            if reads_data_dir(&text).with_context(|| format!("reading {}", path.display()))? {
                out.push(path);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        bail!("no pipeline in {} reads $DATA_DIR", dir.display());
    }
    Ok(out)
}

/// Whether a pipeline config has a dataset file under `$DATA_DIR`: a real
/// dataset, not the shipped sample.
pub fn reads_data_dir(config: &str) -> Result<bool> {
    let doc: toml::Table = toml::from_str(config).context("parsing TOML")?;
    let datasets = doc.get("datasets").and_then(toml::Value::as_array);
    Ok(datasets.into_iter().flatten().any(|ds| {
        ds.get("files")
            .and_then(toml::Value::as_table)
            .is_some_and(|f| {
                f.values()
                    .any(|v| v.as_str().is_some_and(|s| s.starts_with("$DATA_DIR")))
            })
    }))
}

/// Whether `runs/<p>/` holds a complete, current run of `cfg`: every
/// stage's manifest is there, its fingerprint is the one the current config
/// gives with its recorded inputs (so no config section a stage reads has
/// changed), each input is the upstream manifest's fingerprint (the chain
/// holds), the raw dataset files still hash to what clean read, and every
/// output is intact. With `baselines`, `baselines.json` must cover every
/// task. Not seen: a stage version bumped in code since (the stages
/// themselves would re-run). `Err` says why not.
pub fn fresh_run(cfg: &PipelineConfig, baselines: bool) -> Result<(), String> {
    let run_dir = cfg.run_dir();
    let mut fps: BTreeMap<String, String> = BTreeMap::new();
    for stage in Stage::ALL {
        let dir = run_dir.join(stage.name());
        let m = Manifest::read(&dir)
            .map_err(|_| format!("no `{stage}` output in {}", dir.display()))?;
        if m.stage != stage {
            return Err(format!("{} holds `{}`", dir.display(), m.stage));
        }
        for input in &m.inputs {
            if let Some(fp) = fps.get(&input.name) {
                if *fp != input.fingerprint {
                    return Err(format!(
                        "`{stage}` was made from another `{}` output",
                        input.name
                    ));
                }
            } else if input.name == "baselines" {
                let path = mtl_eval::default_baselines_path(&dir);
                let now = mtl_core::hash::sha256_file(&path).ok();
                if now.as_deref() != Some(input.fingerprint.as_str()) {
                    return Err(format!("{} changed since eval", path.display()));
                }
            } else if stage == Stage::Clean
                && let Some(path) = raw_input(cfg, &input.name)
            {
                let now = mtl_core::hash::sha256_file(&path).ok();
                if now.as_deref() != Some(input.fingerprint.as_str()) {
                    return Err(format!("{} changed since clean", path.display()));
                }
            }
        }
        let fp = fingerprint(stage, m.stage_version, cfg, &m.inputs);
        if Manifest::fresh(&dir, &fp).is_none() {
            return Err(format!(
                "`{stage}` in {} is stale (config changed) or its outputs changed",
                dir.display()
            ));
        }
        fps.insert(stage.name().to_string(), m.fingerprint);
    }
    let eval_dir = run_dir.join(Stage::Eval.name());
    let path = mtl_eval::default_baselines_path(&eval_dir);
    let eval = Manifest::read(&eval_dir).map_err(|e| e.to_string())?;
    let scored_with = eval.inputs.iter().any(|i| i.name == "baselines");
    if path.is_file() && !scored_with {
        return Err(format!("eval has not seen {}", path.display()));
    }
    if baselines {
        let scores = SingleTaskScores::read(&path)
            .map_err(|_| format!("no single-task scores in {}", path.display()))?;
        if let Some(t) = cfg
            .tasks
            .iter()
            .find(|t| !scores.tasks.contains_key(&t.name))
        {
            return Err(format!("{} has no `{}`", path.display(), t.name));
        }
    }
    Ok(())
}

/// The raw file of a clean input named `<dataset>/<split>`.
fn raw_input(cfg: &PipelineConfig, name: &str) -> Option<PathBuf> {
    let (ds, split) = name.split_once('/')?;
    let d = cfg.datasets.iter().find(|d| d.name == ds)?;
    let f = &d.files;
    let raw = match split {
        "all" => f.all.as_deref(),
        "train" => f.train.as_deref(),
        "dev" => f.dev.as_deref(),
        "test" => f.test.as_deref(),
        _ => None,
    }?;
    cfg.resolve_path("datasets.files", raw).ok()
}

/// Reads one pipeline's results out of its run folder.
pub fn collect(
    root: &Path,
    cfg: &PipelineConfig,
    config: &Path,
    data: Option<&Path>,
    with_baselines: bool,
) -> Result<PipelineResult> {
    let run_dir = cfg.run_dir();
    let eval_dir = run_dir.join(Stage::Eval.name());
    let metrics = Metrics::read(&eval_dir)
        .with_context(|| format!("reading the metrics in {}", eval_dir.display()))?;
    let single = if with_baselines {
        let path = mtl_eval::default_baselines_path(&eval_dir);
        Some(SingleTaskScores::read(&path).with_context(|| format!("reading {}", path.display()))?)
    } else {
        None
    };
    let split_score = |t: &mtl_eval::report::TaskMetrics, split: &str| {
        t.splits.get(split).map(|s| Score {
            value: s.score,
            ci: s.ci,
        })
    };
    let mut tasks = Vec::new();
    for task in &cfg.tasks {
        let Some(t) = metrics.tasks.get(&task.name) else {
            bail!(
                "{}: no task `{}`",
                eval_dir.join(Metrics::FILE).display(),
                task.name
            );
        };
        let s = single.as_ref().and_then(|s| s.tasks.get(&task.name));
        let single_split = |split: &str| {
            let s = s?;
            match s.splits.get(split) {
                Some(x) => Some(Score {
                    value: x.score,
                    ci: x.ci,
                }),
                None if s.split.as_deref() == Some(split) => Some(Score {
                    value: s.score,
                    ci: s.ci,
                }),
                None => None,
            }
        };
        let test = split_score(t, "test");
        let single_test = single_split("test");
        let gain_test = match (test, single_test) {
            (Some(m), Some(s)) => relative_gain(m.value, s.value, lower_is_better(&t.metric)),
            _ => None,
        };
        tasks.push(TaskRow {
            task: task.name.clone(),
            kind: t.kind.name().to_string(),
            metric: t.metric.clone(),
            test,
            test_n: t.splits.get("test").map(|s| s.n),
            dev: split_score(t, "dev"),
            single_test,
            single_dev: single_split("dev"),
            gain_test,
        });
    }
    let name = cfg.pipeline.name.as_str();
    let aggregates = AGGREGATES
        .iter()
        .filter(|a| a.pipeline == family(name))
        .filter_map(|a| aggregate(a, &tasks))
        .collect();
    let train = read_train_summary(&run_dir.join(Stage::Train.name()).join("report.json"))?;
    let baselines = single.as_ref().map(|s| {
        let c = Comparison::new(&metrics, s);
        BaselinesSummary {
            description: s.description.clone(),
            delta_p: c
                .delta_p
                .iter()
                .map(|(split, d)| {
                    (
                        split.clone(),
                        DeltaP {
                            value: d.value,
                            tasks: d.tasks,
                            of: d.of,
                        },
                    )
                })
                .collect(),
            models: c.single_cost.map(|c| c.models),
            train_seconds: c.single_cost.map(|c| c.train_seconds),
        }
    });
    let published = PUBLISHED
        .iter()
        .filter(|p| p.pipeline == family(name))
        .map(|p| PublishedRow {
            system: p.system.into(),
            source: p.source.into(),
            note: p.note.into(),
            scores: p
                .scores
                .iter()
                .map(|(t, v)| (t.to_string(), v / 100.0))
                .collect(),
            decimals: p.decimals,
        })
        .collect();
    let mut reproduce = format!("cargo xtask run {}", rel(root, config));
    if let Some(d) = data {
        reproduce.push_str(&format!(" --data-dir {}", rel(root, d)));
    }
    if with_baselines {
        reproduce.push_str(" --baselines");
    }
    Ok(PipelineResult {
        name: name.to_string(),
        config: rel(root, config),
        run_dir: rel(root, &run_dir),
        reused: false,
        stages_run: 0,
        stages_cached: 0,
        tasks,
        aggregates,
        train,
        baselines,
        published,
        peers: Vec::new(),
        reproduce,
    })
}

/// The mean of the tasks starting with `a.prefix`, on each split where all
/// of them have a score; `None` without such a task.
pub fn aggregate(a: &Aggregate, tasks: &[TaskRow]) -> Option<AggregateRow> {
    let parts: Vec<&TaskRow> = tasks
        .iter()
        .filter(|t| t.task.starts_with(a.prefix))
        .collect();
    if parts.is_empty() {
        return None;
    }
    let mean = |get: &dyn Fn(&TaskRow) -> Option<Score>| {
        let v: Option<Vec<f64>> = parts.iter().map(|t| get(t).map(|s| s.value)).collect();
        v.map(|v| v.iter().sum::<f64>() / v.len() as f64)
    };
    Some(AggregateRow {
        name: a.name.into(),
        metric: a.metric.into(),
        of: parts.iter().map(|t| t.task.clone()).collect(),
        test: mean(&|t| t.test),
        dev: mean(&|t| t.dev),
        single_test: mean(&|t| t.single_test),
    })
}

fn read_train_summary(path: &Path) -> Result<TrainSummary> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
}

/// The spaCy report (`bench/peers/spacy_ewt.sh`).
#[derive(Debug, Clone, Deserialize)]
pub struct SpacyReport {
    pub version: String,
    pub scores: BTreeMap<String, f64>,
    #[serde(default)]
    pub sentences: Option<u64>,
    #[serde(default)]
    pub train_seconds: Option<f64>,
    #[serde(default)]
    pub seconds: Option<f64>,
    #[serde(default)]
    pub max_epochs: Option<u64>,
    #[serde(default)]
    pub max_steps: Option<u64>,
    #[serde(default)]
    pub max_minutes: Option<f64>,
}

/// Runs the spaCy peer (or, with `reuse`, takes its report when there is
/// one) and maps its scores onto the EWT tasks.
fn spacy_peer(root: &Path, data: &Path, reuse: bool, say: &dyn Fn(String)) -> Result<PeerResult> {
    let dir = quality_dir(root);
    let report = dir.join("spacy_ewt.json");
    let mut measured = None;
    if reuse && report.is_file() {
        say(format!("spaCy peer: reusing {}", rel(root, &report)));
    } else {
        let logs = dir.join("logs");
        say(format!(
            "running the spaCy peer {SPACY_SCRIPT} (about 30 minutes of both cores; log in {}) ...",
            rel(root, &logs)
        ));
        let mut cmd = Command::new("bash");
        cmd.arg(root.join(SPACY_SCRIPT))
            .arg("--data-dir")
            .arg(data)
            .arg("--out")
            .arg(&report);
        measured = Some(measure::run_checked(&mut cmd, &logs, "spacy_ewt")?);
    }
    let text = std::fs::read_to_string(&report)
        .with_context(|| format!("reading {}", report.display()))?;
    let spacy: SpacyReport =
        serde_json::from_str(&text).with_context(|| format!("reading {}", report.display()))?;
    let mut peer = spacy_result(&spacy, &rel(root, &report));
    if let Some(m) = measured {
        peer.wall_seconds = Some(m.wall.as_secs_f64());
        peer.peak_rss_bytes = Some(m.peak_rss_bytes);
    }
    Ok(peer)
}

/// The spaCy report as a peer column of the EWT table.
pub fn spacy_result(r: &SpacyReport, report: &str) -> PeerResult {
    let pick = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .filter_map(|(ours, theirs)| r.scores.get(*theirs).map(|v| (ours.to_string(), *v)))
            .collect::<BTreeMap<_, _>>()
    };
    let mut budget = Vec::new();
    if let Some(e) = r.max_epochs {
        budget.push(format!("max {e} epochs"));
    }
    if let Some(s) = r.max_steps {
        budget.push(format!("max {s} steps"));
    }
    if let Some(m) = r.max_minutes {
        budget.push(format!("max {m} minutes"));
    }
    if budget.is_empty() {
        budget.push("the config's own budget".into());
    }
    PeerResult {
        name: format!("spaCy {}", r.version),
        report: report.into(),
        scores: pick(SPACY_EWT_TASKS),
        extra: pick(SPACY_EWT_EXTRA),
        train_seconds: r.train_seconds,
        wall_seconds: r.seconds,
        peak_rss_bytes: None,
        sentences: r.sentences,
        description: format!(
            "trained here by `{SPACY_SCRIPT}`: tagger, morphologizer and parser \
             (`spacy init config --optimize efficiency`, CPU, no pretrained vectors), selected \
             on dev, gold tokenization, {}; UPOS = pos_acc, XPOS = tag_acc, UFeats = morph_acc, \
             deps = dep_las (spaCy's LAS leaves punctuation out and compares whole \
             relations, subtypes included; the CoNLL 2018 LAS of mtl scores every word on \
             the universal relation)",
            budget.join(", ")
        ),
    }
}

/// Checks the peer script without running it: it parses (`bash -n`), its
/// pip line installs the pinned spaCy, the Python it runs imports spaCy
/// and the standard library only, and it writes every key the benchmark
/// reads. Returns what was checked.
pub fn check_peer_script(path: &Path) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let out = Command::new("bash")
        .arg("-n")
        .arg(path)
        .output()
        .context("running bash -n")?;
    if !out.status.success() {
        bail!(
            "bash -n {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    let mut checks = vec!["parses (bash -n)".to_string()];
    checks.extend(check_peer_text(&text).with_context(|| path.display().to_string())?);
    Ok(checks)
}

/// The text checks of [`check_peer_script`].
pub fn check_peer_text(text: &str) -> Result<Vec<String>> {
    const STDLIB: &[&str] = &["json", "os", "sys", "time", "pathlib", "re", "math"];
    let code = || text.lines().map(str::trim).filter(|l| !l.starts_with('#'));
    let mut checks = Vec::new();
    let pins: Vec<&str> = code().filter(|l| l.contains("SPACY_PIN=")).collect();
    let installs = code().any(|l| l.contains("pip install") && l.contains("\"$SPACY_PIN\""));
    if !installs || !pins.iter().any(|l| l.contains(&format!("'{SPACY_PIN}'"))) {
        bail!("its pip line does not install {SPACY_PIN}");
    }
    checks.push(format!("pip installs {SPACY_PIN}"));
    let mut imports = Vec::new();
    for l in code() {
        let module = l
            .strip_prefix("import ")
            .or_else(|| l.strip_prefix("from "))
            .and_then(|rest| rest.split([' ', ',', '.']).next());
        if let Some(m) = module.filter(|m| !m.is_empty()) {
            if m != "spacy" && !STDLIB.contains(&m) {
                bail!("its Python imports `{m}`, which the venv does not install");
            }
            if !imports.contains(&m) {
                imports.push(m);
            }
        }
    }
    if !imports.contains(&"spacy") {
        bail!("its Python never imports spacy");
    }
    imports.sort();
    checks.push(format!(
        "imports only what it installs: {}",
        imports.join(", ")
    ));
    for cmd in [
        "-m spacy convert",
        "-m spacy init config",
        "-m spacy train",
        "-m spacy evaluate",
    ] {
        if !text.contains(cmd) {
            bail!("it never runs `python {cmd}`");
        }
    }
    for arg in ["--converter conllu", "-n 10", "--gold-preproc"] {
        if !text.contains(arg) {
            bail!("it never passes `{arg}`");
        }
    }
    checks.push("runs spacy convert (conllu, -n 10), init config, train, evaluate".into());
    for (_, key) in SPACY_EWT_TASKS.iter().chain(SPACY_EWT_EXTRA) {
        if !text.contains(&format!("\"{key}\"")) {
            bail!("its report has no `{key}`");
        }
    }
    checks.push("reports every score the EWT table reads".into());
    Ok(checks)
}

/// The smoke pipeline: the first 300 rows of the sample, three tasks, a
/// tiny model and 20 steps, under `work`. Returns the config.
pub fn write_smoke_pipeline(root: &Path, work: &Path) -> Result<PathBuf> {
    let sample = root.join("data/sample/reviews.jsonl");
    let text = std::fs::read_to_string(&sample)
        .with_context(|| format!("reading {}", sample.display()))?;
    let data = work.join("reviews.jsonl");
    let slice: Vec<&str> = text.lines().take(300).collect();
    mtl_core::fsio::atomic_write(&data, (slice.join("\n") + "\n").as_bytes())?;
    let config = work.join("smoke.toml");
    let body = format!(
        r#"# Written by `cargo xtask bench quality --smoke`: the first 300 rows of
# the sample, a tiny model, 20 steps.

[pipeline]
name = "smoke"
seed = 5
runs_dir = "{runs}"

[[datasets]]
name = "reviews"
format = "jsonl"
files = {{ all = "{data}" }}
id = "id"

[[tasks]]
name = "sentiment"
dataset = "reviews"
column = "sentiment"
type = "classification"

[[tasks]]
name = "topic"
dataset = "reviews"
column = "topic"
type = "classification"

[[tasks]]
name = "entities"
dataset = "reviews"
column = "ner"
type = "spans"

# A 300-row slice can meet a rare tag only in dev or test.
[split.unknown_labels]
policy = "map-to"
label = "O"

[tokenize]
vocab_size = 400
max_length = 48

[model]
embedding_dim = 16
hidden_dim = 16

[train]
epochs = 2
max_steps = 20
batch_size = 16
learning_rate = 0.01
"#,
        runs = toml_str(&work.join("runs"))?,
        data = toml_str(&data)?,
    );
    mtl_core::fsio::atomic_write(&config, body.as_bytes())?;
    Ok(config)
}

fn toml_str(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))?;
    Ok(s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Writes `markdown` between [`BEGIN`] and [`END`] in `page`: replacing
/// what is there, appended to a page without the markers, or as a new page.
pub fn write_page(page: &Path, markdown: &str) -> Result<()> {
    let existing = match std::fs::read_to_string(page) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", page.display())),
    };
    let text = splice(existing.as_deref(), markdown);
    if let Some(dir) = page.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    mtl_core::fsio::atomic_write(page, text.as_bytes())?;
    Ok(())
}

/// The page with `markdown` as its generated part (see [`write_page`]).
pub fn splice(existing: Option<&str>, markdown: &str) -> String {
    let region = format!("{BEGIN}\n\n{}\n{END}\n", markdown.trim_end());
    let Some(text) = existing else {
        return format!("# Benchmarks\n\n{region}");
    };
    if let (Some(b), Some(e)) = (text.find(BEGIN), text.find(END))
        && b < e
    {
        let after = &text[e + END.len()..];
        let after = after.strip_prefix('\n').unwrap_or(after);
        return format!("{}{region}{after}", &text[..b]);
    }
    let sep = if text.ends_with("\n\n") {
        ""
    } else if text.ends_with('\n') {
        "\n"
    } else {
        "\n\n"
    };
    format!("{text}{sep}{region}")
}

/// The generated Markdown: the header, then a section per pipeline.
pub fn render(r: &QualityResults) -> String {
    let mut s = String::new();
    s.push_str("## Quality\n\n");
    if r.smoke {
        s.push_str(
            "**Smoke run**: a 300-row slice of the sample, a tiny model and 20 steps; \
             the numbers mean nothing, only the code path is checked.\n\n",
        );
    }
    s.push_str(&format!("Produced by `{}` on {}.\n\n", r.command, r.date));
    let m = &r.machine;
    let mut machine = format!("{} CPUs", m.cpus);
    if let Some(model) = &m.cpu_model {
        machine.push_str(&format!(" ({model})"));
    }
    if let Some(mem) = m.mem_total_bytes {
        machine.push_str(&format!(
            ", {:.1} GiB RAM",
            mem as f64 / (1u64 << 30) as f64
        ));
    }
    machine.push_str(&format!(", {}", m.os));
    if let Some(l) = &m.load_average {
        machine.push_str(&format!(", load average {l} at the start"));
    }
    s.push_str(&format!("Machine: {machine}.\n"));
    if let Some(c) = &r.commit {
        s.push_str(&format!("mtl commit: `{c}`.\n"));
    }
    s.push_str(
        "\nScores are in percent (correlations as r) on each dataset's official test \
         split, with the 95% percentile bootstrap interval of `mtl-eval` (resampling \
         texts, or sentences for token tasks); dev is the split the model was selected on. \
         Published columns are copied from the papers named under each table, not re-run; \
         peer columns were trained on this machine.\n",
    );
    for p in &r.pipelines {
        s.push('\n');
        s.push_str(&render_pipeline(p));
    }
    for f in &r.failed {
        s.push_str(&format!(
            "\n### {} failed\n\n```text\n{}\n```\n",
            f.config,
            f.error.trim_end()
        ));
    }
    for c in &r.peer_checks {
        s.push_str(&format!(
            "\nPeer script `{}` checked without running it: {}.\n",
            c.script,
            c.checks.join("; ")
        ));
    }
    s
}

/// One pipeline's section: the table, then training, Δp, peers, sources.
pub fn render_pipeline(p: &PipelineResult) -> String {
    let with_single = p.baselines.is_some();
    let mut header: Vec<String> = ["task", "metric", "test [95% CI]", "dev"]
        .map(String::from)
        .to_vec();
    if with_single {
        header.extend(["single-task test [95% CI]".into(), "MTL gain".into()]);
    }
    for peer in &p.peers {
        let slice = peer
            .sentences
            .map_or(String::new(), |n| format!(", {n}-sentence slice"));
        header.push(format!("{} (here{slice})", peer.name));
    }
    for pb in &p.published {
        header.push(format!("{} (published)", pb.system));
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for t in &p.tasks {
        let mut row = vec![
            format!("`{}`", t.task),
            t.metric.clone(),
            score_ci(t.test, &t.metric),
            t.dev.map_or("–".into(), |d| value(d.value, &t.metric)),
        ];
        if with_single {
            row.push(score_ci(t.single_test, &t.metric));
            row.push(t.gain_test.map_or("–".into(), |g| format!("{g:+.1}%")));
        }
        for peer in &p.peers {
            row.push(peer.scores.get(&t.task).map_or("–".into(), |v| pct(*v)));
        }
        for pb in &p.published {
            row.push(
                pb.scores
                    .get(&t.task)
                    .map_or("–".into(), |v| published(*v, pb.decimals)),
            );
        }
        rows.push(row);
    }
    for a in &p.aggregates {
        let metric = "f1";
        let mut row = vec![
            format!("*{} (mean of {})*", a.name, a.of.len()),
            a.metric.clone(),
            a.test.map_or("–".into(), |v| value(v, metric)),
            a.dev.map_or("–".into(), |v| value(v, metric)),
        ];
        if with_single {
            row.push(a.single_test.map_or("–".into(), |v| value(v, metric)));
            row.push(String::new());
        }
        for _ in &p.peers {
            row.push("–".into());
        }
        for pb in &p.published {
            row.push(
                pb.scores
                    .get(&a.name)
                    .map_or("–".into(), |v| published(*v, pb.decimals)),
            );
        }
        rows.push(row);
    }

    let mut s = format!("### {}\n\n", p.name);
    s.push_str(&format!(
        "Config `{}`, runs in `{}`{}.\n\n",
        p.config,
        p.run_dir,
        if p.reused {
            " (taken as they were: `--reuse`, manifests fresh)".to_string()
        } else {
            format!(" ({} stages run, {} cached)", p.stages_run, p.stages_cached)
        }
    ));
    s.push_str(&markdown_table(&header, &rows));
    s.push('\n');
    for a in &p.aggregates {
        s.push_str(&format!(
            "*{}*: the mean of {}, as the published {} is computed; no interval.\n\n",
            a.name,
            a.of.iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", "),
            a.name
        ));
    }
    s.push_str(&format!("Training: {}.\n\n", train_line(&p.train)));
    if let Some(b) = &p.baselines {
        let mut parts: Vec<String> = ["test", "dev"]
            .iter()
            .filter_map(|split| {
                b.delta_p.get(*split).map(|d| {
                    format!(
                        "{:+.2}% on {split} ({} of {} tasks)",
                        d.value, d.tasks, d.of
                    )
                })
            })
            .collect();
        if parts.is_empty() {
            parts.push("not computed".into());
        }
        s.push_str(&format!(
            "Multi-task vs single-task: Δp {} (the mean relative gain per task, \
             LibMTL's definition; MTL gain is each task's term on test).",
            parts.join(", ")
        ));
        if let (Some(k), Some(secs)) = (b.models, b.train_seconds) {
            s.push_str(&format!(
                " The {k} single-task models trained in {} together.",
                duration(secs)
            ));
        }
        if let Some(d) = &b.description {
            s.push_str(&format!(" Single-task models: {d}."));
        }
        s.push_str("\n\n");
    }
    for peer in &p.peers {
        let mut line = format!("{}: {}", peer.name, peer.description);
        if !peer.extra.is_empty() {
            let extra: Vec<String> = peer
                .extra
                .iter()
                .map(|(k, v)| format!("{k} {}", pct(*v)))
                .collect();
            line.push_str(&format!("; also {}", extra.join(", ")));
        }
        if let Some(t) = peer.train_seconds {
            line.push_str(&format!("; training {}", duration(t)));
        }
        if let Some(w) = peer.wall_seconds {
            line.push_str(&format!(", whole script {}", duration(w)));
        }
        if let Some(b) = peer.peak_rss_bytes {
            line.push_str(&format!(", peak RSS {:.0} MiB", b as f64 / MIB));
        }
        if let Some(n) = peer.sentences {
            line.push_str(&format!(
                "; **trained and scored on the first {n} sentences only: not a result**"
            ));
        }
        line.push_str(&format!(" (report `{}`).\n\n", peer.report));
        s.push_str(&line);
    }
    for pb in &p.published {
        let note = if pb.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", pb.note)
        };
        s.push_str(&format!("- {}: {}{note}.\n", pb.system, pb.source));
    }
    if !p.published.is_empty() {
        s.push('\n');
    }
    s.push_str(&format!("This pipeline alone: `{}`.\n", p.reproduce));
    s
}

fn train_line(t: &TrainSummary) -> String {
    let mut parts = Vec::new();
    if let Some(secs) = t.seconds {
        parts.push(duration(secs));
    }
    let mut epochs = Vec::new();
    if let Some(e) = t.epochs {
        epochs.push(format!("{e} epochs"));
    }
    if let Some(b) = t.best_epoch {
        epochs.push(format!("best epoch {b}"));
    }
    if t.stopped_early == Some(true) {
        epochs.push("stopped early".into());
    }
    if let Some(s) = t.steps {
        epochs.push(format!("{s} steps"));
    }
    if !epochs.is_empty() {
        parts.push(format!("({})", epochs.join(", ")));
    }
    let mut line = parts.join(" ");
    if let Some(tps) = t.tokens_per_second {
        line.push_str(&format!(", {} tokens/s", thousands(tps.round() as u64)));
    }
    if let Some(b) = t.peak_rss_bytes {
        line.push_str(&format!(", peak RSS {:.0} MiB", b as f64 / MIB));
    }
    if let Some(n) = t.parameters {
        line.push_str(&format!(", {} parameters", thousands(n)));
    }
    if line.is_empty() {
        "no report".into()
    } else {
        line
    }
}

fn markdown_table(header: &[String], rows: &[Vec<String>]) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let mut s = line(header);
    let rule: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, _)| if i < 2 { "---".into() } else { "---:".into() })
        .collect();
    s.push_str(&line(&rule));
    for r in rows {
        s.push_str(&line(r));
    }
    s
}

/// Whether a headline is a 0..1 score shown in percent (correlations and
/// errors are shown as they are).
pub fn is_fraction(metric: &str) -> bool {
    !matches!(metric, "pearson" | "spearman" | "mse" | "rmse" | "mae")
}

fn value(v: f64, metric: &str) -> String {
    if is_fraction(metric) {
        pct(v)
    } else {
        format!("{v:.3}")
    }
}

fn pct(v: f64) -> String {
    format!("{:.2}", v * 100.0)
}

/// A published fraction in percent with the decimals it was published with.
fn published(v: f64, decimals: usize) -> String {
    format!("{:.decimals$}", v * 100.0)
}

/// `95.12 [94.80, 95.41]`.
pub fn score_ci(s: Option<Score>, metric: &str) -> String {
    match s {
        None => "–".into(),
        Some(Score { value: v, ci: None }) => format!("{} [no CI]", value(v, metric)),
        Some(Score {
            value: v,
            ci: Some([lo, hi]),
        }) => format!(
            "{} [{}, {}]",
            value(v, metric),
            value(lo, metric),
            value(hi, metric)
        ),
    }
}

fn duration(secs: f64) -> String {
    if secs < 120.0 {
        format!("{secs:.1} s")
    } else if secs < 7200.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{:.2} h", secs / 3600.0)
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// This machine: CPUs this process may use, the CPU model and total
/// memory (Linux `/proc`), the OS, the load.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Machine {
        cpus: cpus(),
        cpu_model: cpu_model(&cpuinfo),
        mem_total_bytes: mem_total(&meminfo),
        os: os(),
        load_average: load_average(),
    }
}

/// `model name` of `/proc/cpuinfo`.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "model name").then(|| v.trim().to_string())
    })
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix("MemTotal:")?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        Some(kb * 1024)
    })
}

/// The current commit, `+dirty` with uncommitted changes; `None` outside git.
fn git_commit(root: &Path) -> Option<String> {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}+dirty") } else { head })
}

/// Now, `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc(secs)
}

/// `secs` after the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
pub fn utc(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to a
/// proleptic Gregorian date.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `args` as one shell line, quoting what needs it.
pub fn shell_line(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=,:@%+".contains(c));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_704_067_200 + 3600 + 120), "2024-01-01 01:02 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_740_787_200), "2025-03-01 00:00 UTC");
    }

    #[test]
    fn machine_facts_come_from_proc() {
        let cpuinfo =
            "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) Processor")
        );
        assert_eq!(cpu_model("processor : 0\n"), None);
        let meminfo = "MemTotal:       24683584 kB\nMemFree:        20563772 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_683_584 * 1024));
    }

    #[test]
    fn the_real_pipelines_are_the_ones_reading_data_dir() {
        let root = workspace_root();
        let names: Vec<String> = select_pipelines(&root, &[])
            .unwrap()
            .iter()
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        for real in ["ewt", "tweeteval", "wnut17"] {
            assert!(names.iter().any(|n| n == real), "{names:?}");
        }
        assert!(!names.iter().any(|n| n.starts_with("sample")), "{names:?}");
        let picked = select_pipelines(&root, &["wnut17".into()]).unwrap();
        assert_eq!(picked, [root.join("pipelines/wnut17.toml")]);
        assert!(select_pipelines(&root, &["nope".into()]).is_err());
    }

    /// Every published number names a task (or aggregate) of its pipeline.
    #[test]
    fn published_rows_name_tasks_of_the_shipped_pipelines() {
        let root = workspace_root();
        for p in PUBLISHED {
            let cfg =
                PipelineConfig::load(&root.join(format!("pipelines/{}.toml", p.pipeline)), None)
                    .unwrap();
            for (task, v) in p.scores {
                let known = cfg.task(task).is_some()
                    || AGGREGATES
                        .iter()
                        .any(|a| a.pipeline == p.pipeline && a.name == *task);
                assert!(known, "{}: {} names no task `{task}`", p.pipeline, p.system);
                assert!((0.0..=100.0).contains(v));
            }
        }
        for (task, _) in SPACY_EWT_TASKS {
            let cfg = PipelineConfig::load(&root.join("pipelines/ewt.toml"), None).unwrap();
            assert!(cfg.task(task).is_some(), "{task}");
        }
        let te = PipelineConfig::load(&root.join("pipelines/tweeteval.toml"), None).unwrap();
        let stance = te
            .tasks
            .iter()
            .filter(|t| t.name.starts_with("stance_"))
            .count();
        assert_eq!(stance, 5);
    }

    fn row(task: &str, test: f64, single: Option<f64>) -> TaskRow {
        TaskRow {
            task: task.into(),
            kind: "classification".into(),
            metric: "macro_f1".into(),
            test: Some(Score {
                value: test,
                ci: Some([test - 0.01, test + 0.01]),
            }),
            test_n: Some(100),
            dev: Some(Score {
                value: test + 0.02,
                ci: None,
            }),
            single_test: single.map(|v| Score { value: v, ci: None }),
            single_dev: None,
            gain_test: single.and_then(|s| relative_gain(test, s, false)),
        }
    }

    #[test]
    fn stance_is_the_mean_of_the_five_targets() {
        let tasks = vec![
            row("emoji", 0.2, Some(0.1)),
            row("stance_abortion", 0.5, Some(0.4)),
            row("stance_atheism", 0.6, Some(0.4)),
            row("stance_climate", 0.4, Some(0.4)),
            row("stance_feminist", 0.5, Some(0.4)),
            row("stance_hillary", 0.5, None),
        ];
        let a = aggregate(&AGGREGATES[0], &tasks).unwrap();
        assert_eq!(a.of.len(), 5);
        assert!((a.test.unwrap() - 0.5).abs() < 1e-12);
        assert!((a.dev.unwrap() - 0.52).abs() < 1e-12);
        // One target without a single-task score: no mean.
        assert_eq!(a.single_test, None);
        assert!(aggregate(&AGGREGATES[0], &tasks[..1]).is_none());
    }

    fn tweeteval_result() -> PipelineResult {
        let tasks = vec![
            row("emoji", 0.2345, Some(0.2)),
            row("stance_abortion", 0.5, Some(0.4)),
            row("stance_atheism", 0.6, Some(0.4)),
        ];
        let aggregates = vec![aggregate(&AGGREGATES[0], &tasks).unwrap()];
        let published = PUBLISHED
            .iter()
            .filter(|p| p.pipeline == "tweeteval")
            .map(|p| PublishedRow {
                system: p.system.into(),
                source: p.source.into(),
                note: p.note.into(),
                scores: p
                    .scores
                    .iter()
                    .map(|(t, v)| (t.to_string(), v / 100.0))
                    .collect(),
                decimals: p.decimals,
            })
            .collect();
        PipelineResult {
            name: "tweeteval".into(),
            config: "pipelines/tweeteval.toml".into(),
            run_dir: "runs/tweeteval".into(),
            reused: false,
            stages_run: 5,
            stages_cached: 0,
            tasks,
            aggregates,
            train: TrainSummary {
                seconds: Some(754.2),
                peak_rss_bytes: Some(512 << 20),
                tokens_per_second: Some(12_345.6),
                best_epoch: Some(2),
                epochs: Some(2),
                steps: Some(4000),
                parameters: Some(1_234_567),
                stopped_early: Some(false),
            },
            baselines: Some(BaselinesSummary {
                description: None,
                delta_p: [(
                    "test".to_string(),
                    DeltaP {
                        value: 12.5,
                        tasks: 3,
                        of: 3,
                    },
                )]
                .into(),
                models: Some(3),
                train_seconds: Some(900.0),
            }),
            published,
            peers: Vec::new(),
            reproduce: "cargo xtask run pipelines/tweeteval.toml --baselines".into(),
        }
    }

    #[test]
    fn a_section_has_a_row_per_task_and_the_published_columns() {
        let s = render_pipeline(&tweeteval_result());
        assert!(
            s.contains("| `emoji` | macro_f1 | 23.45 [22.45, 24.45] | 25.45 |"),
            "{s}"
        );
        assert!(
            s.contains("| BiLSTM (published) | FastText (published) | RoBERTa-base (published) |"),
            "{s}"
        );
        // emoji's published numbers, and stance's on the aggregate row.
        assert!(s.contains("| 24.7 | 25.8 | 30.9 |"), "{s}");
        assert!(s.contains("| *stance (mean of 2)* |"), "{s}");
        assert!(
            s.contains("| 55.00 | 57.00 | 40.00 |  | 59.4 | 65.4 | 68.0 |"),
            "{s}"
        );
        assert!(s.contains("+17.2%"), "{s}");
        assert!(s.contains("Δp +12.50% on test (3 of 3 tasks)"), "{s}");
        assert!(s.contains("12.6 min (2 epochs, best epoch 2, 4000 steps), 12,346 tokens/s, peak RSS 512 MiB, 1,234,567 parameters"), "{s}");
        assert!(s.contains("Barbieri et al."), "{s}");
    }

    #[test]
    fn the_spacy_report_fills_the_ewt_columns() {
        let report: SpacyReport = serde_json::from_str(
            r#"{"tool": "spaCy", "version": "3.8.7", "sentences": 200,
                "scores": {"tag_acc": 0.9, "pos_acc": 0.91, "morph_acc": 0.92,
                           "dep_las": 0.7, "dep_uas": 0.75, "dep_label_acc": 0.8},
                "train_seconds": 12.5, "seconds": 30.0, "max_steps": 20}"#,
        )
        .unwrap();
        let peer = spacy_result(&report, "bench/out/quality/spacy_ewt.json");
        assert_eq!(peer.scores["upos"], 0.91);
        assert_eq!(peer.scores["xpos"], 0.9);
        assert_eq!(peer.scores["ufeats"], 0.92);
        assert_eq!(peer.scores["deps"], 0.7);
        assert_eq!(peer.extra["UAS"], 0.75);
        let mut p = tweeteval_result();
        p.name = "ewt".into();
        p.tasks = vec![row("upos", 0.95, None)];
        p.aggregates.clear();
        p.published.clear();
        p.baselines = None;
        p.peers = vec![peer];
        let s = render_pipeline(&p);
        assert!(
            s.contains("| spaCy 3.8.7 (here, 200-sentence slice) |"),
            "{s}"
        );
        assert!(
            s.contains("| `upos` | macro_f1 | 95.00 [94.00, 96.00] | 97.00 | 91.00 |"),
            "{s}"
        );
        assert!(s.contains("UAS 75.00, relation accuracy 80.00"), "{s}");
        assert!(s.contains("not a result"), "{s}");
    }

    #[test]
    fn scores_print_in_percent_except_correlations() {
        let s = Score {
            value: 0.41234,
            ci: Some([0.4, 0.43]),
        };
        assert_eq!(score_ci(Some(s), "entity_f1"), "41.23 [40.00, 43.00]");
        assert_eq!(score_ci(Some(s), "pearson"), "0.412 [0.400, 0.430]");
        assert_eq!(score_ci(None, "accuracy"), "–");
        assert_eq!(published(0.4186, 2), "41.86");
        assert_eq!(published(0.954, 2), "95.40");
        assert_eq!(published(0.247, 1), "24.7");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn the_page_keeps_what_is_outside_the_markers() {
        let fresh = splice(None, "## Quality\n\nv1\n");
        assert!(fresh.starts_with("# Benchmarks\n\n"));
        assert!(fresh.contains(BEGIN) && fresh.contains("v1") && fresh.contains(END));
        let hand = format!("# Mine\n\nintro\n\n{BEGIN}\nold\n{END}\n\noutro\n");
        let again = splice(Some(&hand), "v2");
        assert_eq!(
            again,
            format!("# Mine\n\nintro\n\n{BEGIN}\n\nv2\n{END}\n\noutro\n")
        );
        assert_eq!(splice(Some(&again), "v2"), again);
        let appended = splice(Some("# Mine\nprose"), "v3");
        assert_eq!(appended, format!("# Mine\nprose\n\n{BEGIN}\n\nv3\n{END}\n"));
    }

    #[test]
    fn the_spacy_script_installs_what_it_imports() {
        let checks = check_peer_script(&workspace_root().join(SPACY_SCRIPT)).unwrap();
        assert!(checks.iter().any(|c| c.contains(SPACY_PIN)), "{checks:?}");
        let good = std::fs::read_to_string(workspace_root().join(SPACY_SCRIPT)).unwrap();
        let bad = good.replace("SPACY_PIN='spacy==3.8.*'", "SPACY_PIN='spacy'");
        assert!(check_peer_text(&bad).is_err());
        let bad = good.replace("import spacy\n", "import spacy\nimport torch\n");
        assert!(
            check_peer_text(&bad)
                .unwrap_err()
                .to_string()
                .contains("torch")
        );
        let bad = good.replace("--gold-preproc", "");
        assert!(check_peer_text(&bad).is_err());
    }

    #[test]
    fn command_lines_quote_what_needs_it() {
        let args: Vec<String> = [
            "bench",
            "quality",
            "--pipelines",
            "ewt,wnut17",
            "--out",
            "a b.md",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            shell_line(&args),
            "bench quality --pipelines ewt,wnut17 --out 'a b.md'"
        );
    }
}
