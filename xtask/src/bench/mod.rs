//! `cargo xtask bench clean`: the clean stage on a big generated JSONL
//! file, measured from outside as a release binary, side by side with the
//! pandas peer in `bench/peers/` doing the same work on the same file.
//!
//! Everything it writes lives under `bench/out/` (git-ignored): the
//! generated input and config in `bench/out/clean/`, each tool's output in
//! `bench/out/clean/runs/<tool>/`, the results in
//! `bench/out/clean/results.json`, and the peers' virtual environment in
//! `bench/out/venv/`. It never asserts on speed: it measures and reports.
//!
//! `cargo xtask bench tokenize` lives in [`tokenize`] and `cargo xtask
//! bench train` in [`train`]; they share the measuring ([`measure`]) and
//! the venv.

pub mod generate;
pub mod measure;
pub mod results;
pub mod tokenize;
pub mod train;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use mtl_core::{PipelineConfig, Stage};
use serde_json::json;

use crate::pipeline::{cargo, target_dir, workspace_root};
use results::{Counts, Results, ToolResult};

/// The pipeline whose dataset and tasks the benchmark uses.
pub const SAMPLE_PIPELINE: &str = "pipelines/sample.toml";
pub const PEER_SCRIPT: &str = "bench/peers/clean_pandas.py";
pub const PANDAS: &str = "pandas";
pub const MTL_CLEAN: &str = "mtl-clean";

#[derive(Debug, Clone)]
pub struct CleanBench {
    /// Size of the generated input, in MiB.
    pub size_mb: u64,
    /// Measure mtl-clean only.
    pub skip_peer: bool,
    /// Use the input file that is there, whatever made it.
    pub skip_generate: bool,
    /// Print progress.
    pub quiet: bool,
}

impl Default for CleanBench {
    fn default() -> Self {
        Self {
            size_mb: 2048,
            skip_peer: false,
            skip_generate: false,
            quiet: false,
        }
    }
}

/// `bench/out/clean` of the workspace.
pub fn clean_dir(root: &Path) -> PathBuf {
    root.join("bench/out/clean")
}

/// Generates the input (or reuses it), runs both tools, prints the table
/// and writes `results.json`.
pub fn clean(opts: &CleanBench) -> Result<Results> {
    let root = workspace_root();
    let dir = clean_dir(&root);
    let say = |s: String| {
        if !opts.quiet {
            eprintln!("{s}");
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let sample_cfg = PipelineConfig::load(&root.join(SAMPLE_PIPELINE), None)?;
    let ds = sample_cfg
        .datasets
        .first()
        .with_context(|| format!("{SAMPLE_PIPELINE} has no dataset"))?;
    let (_, given) = ds
        .files
        .entries()
        .into_iter()
        .next()
        .with_context(|| format!("{SAMPLE_PIPELINE}: dataset `{}` has no file", ds.name))?;
    let sample = sample_cfg.resolve_path("datasets[0].files", given)?;
    let tag_columns: Vec<String> = sample_cfg
        .tasks_of(&ds.name)
        .filter(|t| t.kind.is_token_level())
        .map(|t| t.column.clone())
        .collect();

    let input = dir.join(format!("reviews-{}mb.jsonl", opts.size_mb));
    if opts.skip_generate {
        if !input.is_file() {
            bail!(
                "--skip-generate: {} does not exist; run once without it",
                input.display()
            );
        }
    } else {
        say(format!(
            "generating {} from {} ...",
            input.display(),
            sample.display()
        ));
        let (_, g) = generate::ensure(&sample, &tag_columns, &dir, opts.size_mb)?;
        say(format!(
            "  {} lines, {:.1} MiB, {} copies of the sample",
            g.lines,
            g.bytes as f64 / MIB,
            g.copies
        ));
    }
    let input_bytes = std::fs::metadata(&input)
        .with_context(|| format!("reading {}", input.display()))?
        .len();
    let config = write_config(&root, &dir, &input)?;
    let cfg = PipelineConfig::load(&config, None)?;

    say("building mtl-clean (release) ...".into());
    let bin = build_clean_binary(opts.quiet)?;
    let runs = dir.join("runs");
    let logs = dir.join("logs");

    let out = fresh_dir(&runs.join(MTL_CLEAN))?;
    say(format!("running {MTL_CLEAN} ..."));
    let mut cmd = Command::new(&bin);
    cmd.arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&out)
        .arg("--force");
    let m = measure::run(&mut cmd, &logs, MTL_CLEAN)?;
    measure::check(&m, MTL_CLEAN)?;
    let counts = Counts::from_report(&out.join("report.json"))?;
    let mut tools = vec![ToolResult::new(MTL_CLEAN, counts, &m, input_bytes)];

    if !opts.skip_peer {
        let python = ensure_venv(
            &root,
            &say,
            &["pandas", "pyarrow"],
            "import pandas, pyarrow",
        )?;
        let spec = write_peer_spec(&cfg, &dir, &input)?;
        let out = fresh_dir(&runs.join(PANDAS))?;
        say(format!("running the {PANDAS} peer ..."));
        let mut cmd = Command::new(&python);
        cmd.arg(root.join(PEER_SCRIPT))
            .arg("--spec")
            .arg(&spec)
            .arg("--out")
            .arg(&out);
        let m = measure::run(&mut cmd, &logs, PANDAS)?;
        measure::check(&m, PEER_SCRIPT)?;
        let counts = Counts::from_report(&out.join("report.json"))?;
        tools.push(ToolResult::new(PANDAS, counts, &m, input_bytes));
    }

    let results = Results::new(&input, input_bytes, tools);
    mtl_core::fsio::write_json(&dir.join("results.json"), &results)?;
    Ok(results)
}

const MIB: f64 = 1024.0 * 1024.0;

pub(crate) fn fresh_dir(path: &Path) -> Result<PathBuf> {
    if path.exists() {
        std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
    }
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(path.to_path_buf())
}

/// `bench.toml`: the sample pipeline with its dataset reading `input`
/// (relative to the config, which sits next to it).
fn write_config(root: &Path, dir: &Path, input: &Path) -> Result<PathBuf> {
    let sample = root.join(SAMPLE_PIPELINE);
    let text = std::fs::read_to_string(&sample)
        .with_context(|| format!("reading {}", sample.display()))?;
    let config = dir.join("bench.toml");
    let file_name = input
        .file_name()
        .and_then(|n| n.to_str())
        .context("input file name is not UTF-8")?;
    let bench = bench_config(&text, file_name)
        .with_context(|| format!("rewriting {} for the benchmark", sample.display()))?;
    mtl_core::fsio::atomic_write(&config, bench.as_bytes())?;
    Ok(config)
}

/// The sample config with its name changed and its first dataset reading
/// `file`; everything else (tasks, cleaning options) as it is.
pub fn bench_config(sample_toml: &str, file: &str) -> Result<String> {
    let mut doc: toml::Table = toml::from_str(sample_toml).context("parsing TOML")?;
    let pipeline = doc
        .get_mut("pipeline")
        .and_then(toml::Value::as_table_mut)
        .context("no [pipeline]")?;
    pipeline.insert("name".into(), "bench-clean".into());
    let ds = doc
        .get_mut("datasets")
        .and_then(toml::Value::as_array_mut)
        .and_then(|a| a.first_mut())
        .and_then(toml::Value::as_table_mut)
        .context("no [[datasets]]")?;
    let mut files = toml::Table::new();
    files.insert("all".into(), file.into());
    ds.insert("files".into(), files.into());
    let text = toml::to_string(&doc).context("writing TOML")?;
    Ok(format!(
        "# Written by `cargo xtask bench clean` from {SAMPLE_PIPELINE}; edits are overwritten.\n{text}"
    ))
}

/// What the peer needs from the config, as the clean stage reads it.
fn write_peer_spec(cfg: &PipelineConfig, dir: &Path, input: &Path) -> Result<PathBuf> {
    let ds = cfg
        .datasets
        .first()
        .context("the bench config has no dataset")?;
    let (_, given) = ds
        .files
        .entries()
        .into_iter()
        .next()
        .context("the bench dataset has no file")?;
    let tasks: Vec<_> = cfg
        .tasks_of(&ds.name)
        .map(|t| {
            json!({
                "name": t.name,
                "column": t.column,
                "token": t.kind.is_token_level(),
                "kind": t.kind.name(),
                "separator": t.separator,
            })
        })
        .collect();
    let spec = json!({
        "dataset": ds.name,
        "input": input,
        "source_file": given,
        "id": ds.id,
        "text": ds.text,
        "group": ds.group,
        "tasks": tasks,
        "clean": ds.clean,
    });
    let path = dir.join("peer-spec.json");
    mtl_core::fsio::write_json(&path, &spec)?;
    Ok(path)
}

/// `bench/out/venv`, shared by the peers, with `packages` installed unless
/// `check` (a Python statement, e.g. an import) already runs; returns its
/// python.
pub(crate) fn ensure_venv(
    root: &Path,
    say: &dyn Fn(String),
    packages: &[&str],
    check: &str,
) -> Result<PathBuf> {
    let venv = root.join("bench/out/venv");
    let python = venv.join("bin/python");
    if !python.is_file() {
        say(format!("creating {} ...", venv.display()));
        let base = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let status = Command::new(&base)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .with_context(|| {
                format!("running {base} -m venv (set PYTHON to choose the interpreter)")
            })?;
        if !status.success() {
            bail!("{base} -m venv {} failed", venv.display());
        }
    }
    let ready = Command::new(&python)
        .args(["-c", check])
        .output()
        .with_context(|| format!("running {}", python.display()))?
        .status
        .success();
    if !ready {
        let list = packages.join(" ");
        say(format!("installing {list} into the venv ..."));
        let status = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(packages)
            .status()
            .context("running pip")?;
        if !status.success() {
            bail!("pip install {list} failed in {}", venv.display());
        }
    }
    Ok(python)
}

/// Builds the `mtl-clean` binary in release mode; returns its path.
fn build_clean_binary(quiet: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "-p", Stage::Clean.binary(), "--bin"])
        .arg(Stage::Clean.binary());
    if quiet {
        cmd.arg("--quiet");
    }
    if !cmd.status().context("running cargo build")?.success() {
        bail!("building {} failed", Stage::Clean.binary());
    }
    Ok(target_dir()?.join("release").join(Stage::Clean.binary()))
}

/// Runs the criterion micro-benchmark of the clean stage library.
pub fn criterion() -> Result<()> {
    let status = cargo()
        .args(["bench", "-p", Stage::Clean.binary(), "--bench", "clean"])
        .status()
        .context("running cargo bench")?;
    if !status.success() {
        bail!("cargo bench -p mtl-clean failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_config_keeps_tasks_and_points_at_the_input() {
        let sample = std::fs::read_to_string(workspace_root().join(SAMPLE_PIPELINE)).unwrap();
        let text = bench_config(&sample, "reviews-5mb.jsonl").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.toml");
        std::fs::write(&path, &text).unwrap();
        let cfg = PipelineConfig::load(&path, None).unwrap();
        let orig = PipelineConfig::load(&workspace_root().join(SAMPLE_PIPELINE), None).unwrap();
        assert_eq!(cfg.pipeline.name, "bench-clean");
        assert_eq!(
            cfg.resolve_path("k", cfg.datasets[0].files.all.as_deref().unwrap())
                .unwrap(),
            dir.path().join("reviews-5mb.jsonl")
        );
        let names = |c: &PipelineConfig| c.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&cfg), names(&orig));
        assert_eq!(cfg.datasets[0].clean, orig.datasets[0].clean);
    }
}
