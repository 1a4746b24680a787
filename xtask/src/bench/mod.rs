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
//! `cargo xtask bench tokenize` lives in [`tokenize`], `cargo xtask
//! bench train` in [`train`] and `cargo xtask bench quality` (the scores
//! of the real pipelines beside published ones and peers) in [`quality`];
//! they share the measuring ([`measure`]), the
//! venv, the peer invocation and the plumbing below (building the stages,
//! rewriting and preparing a pipeline), and the tables ([`results`]).

pub mod generate;
pub mod measure;
pub mod quality;
pub mod results;
pub mod tokenize;
pub mod train;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use mtl_core::{PipelineConfig, Stage};
use serde_json::json;

use crate::pipeline::{self, RunOptions, cargo, target_dir, workspace_root};
use measure::Measured;
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
    let say = progress(opts.quiet);
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
    let bin = build_binaries(&[Stage::Clean], opts.quiet)?.join(Stage::Clean.binary());
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
    let m = measure::run_checked(&mut cmd, &logs, MTL_CLEAN)?;
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
        let m = run_peer(&python, PEER_SCRIPT, &spec, &out, &logs, PANDAS)?;
        let counts = Counts::from_report(&out.join("report.json"))?;
        tools.push(ToolResult::new(PANDAS, counts, &m, input_bytes));
    }

    let results = Results::new(&input, input_bytes, tools);
    mtl_core::fsio::write_json(&dir.join("results.json"), &results)?;
    Ok(results)
}

pub(crate) const MIB: f64 = 1024.0 * 1024.0;

pub(crate) fn fresh_dir(path: &Path) -> Result<PathBuf> {
    if path.exists() {
        std::fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))?;
    }
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(path.to_path_buf())
}

/// Prints progress lines on stderr, unless `quiet`.
pub(crate) fn progress(quiet: bool) -> impl Fn(String) {
    move |s| {
        if !quiet {
            eprintln!("{s}");
        }
    }
}

/// The 1, 5 and 15 minute load averages of `/proc/loadavg`, where there is
/// one: other work on the machine makes every number noisier.
pub(crate) fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// CPUs this process may run on.
pub(crate) fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `<os>-<arch>` of this machine.
pub(crate) fn os() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// `p` relative to the workspace `root` where it lies inside it, so that a
/// table does not carry the checkout's location.
pub(crate) fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Writes `dir/pipeline.toml`: the workspace pipeline `config` rewritten by
/// `rewrite`, which is given its text, its folder (what relative paths in
/// it resolve against) and `dir/runs` (where the benchmark keeps its
/// runs). Returns the path.
pub(crate) fn write_pipeline(
    root: &Path,
    config: &str,
    dir: &Path,
    rewrite: impl FnOnce(&str, &Path, &Path) -> Result<String>,
) -> Result<PathBuf> {
    let original = root.join(config);
    let text = std::fs::read_to_string(&original)
        .with_context(|| format!("reading {}", original.display()))?;
    let bench = rewrite(&text, original.parent().unwrap_or(root), &dir.join("runs"))
        .with_context(|| format!("rewriting {config} for the benchmark"))?;
    let path = dir.join("pipeline.toml");
    mtl_core::fsio::atomic_write(&path, bench.as_bytes())?;
    Ok(path)
}

/// The pipeline `original` (read from `original_dir`) rewritten for the
/// benchmark `command`: its runs under `runs_dir`, relative dataset files
/// made absolute (the config moves), and its `[section]` (made if missing)
/// changed by `edit`; everything else as it is.
pub(crate) fn rewrite_pipeline(
    original: &str,
    original_dir: &Path,
    runs_dir: &Path,
    command: &str,
    section: &str,
    edit: impl FnOnce(&mut toml::Table) -> Result<()>,
) -> Result<String> {
    let mut doc: toml::Table = toml::from_str(original).context("parsing TOML")?;
    let pipeline = doc
        .get_mut("pipeline")
        .and_then(toml::Value::as_table_mut)
        .context("no [pipeline]")?;
    pipeline.insert("runs_dir".into(), path_value(runs_dir)?);
    if let Some(datasets) = doc.get_mut("datasets").and_then(toml::Value::as_array_mut) {
        for ds in datasets.iter_mut().filter_map(toml::Value::as_table_mut) {
            let Some(files) = ds.get_mut("files").and_then(toml::Value::as_table_mut) else {
                continue;
            };
            for (_, v) in files.iter_mut() {
                if let Some(s) = v.as_str()
                    && !s.starts_with("$DATA_DIR")
                    && Path::new(s).is_relative()
                {
                    *v = path_value(&original_dir.join(s))?;
                }
            }
        }
    }
    let table = doc
        .entry(section)
        .or_insert_with(|| toml::Table::new().into())
        .as_table_mut()
        .with_context(|| format!("[{section}] is not a table"))?;
    edit(table)?;
    let text = toml::to_string(&doc).context("writing TOML")?;
    Ok(format!(
        "# Written by `cargo xtask bench {command}`; edits are overwritten.\n{text}"
    ))
}

pub(crate) fn path_value(p: &Path) -> Result<toml::Value> {
    Ok(p.to_str()
        .with_context(|| format!("{} is not UTF-8", p.display()))?
        .into())
}

/// Runs the stages of the pipeline `config` up to `until` with the
/// binaries in `bin_dir`, quietly. A stage whose manifest matches skips
/// itself, so the benchmark's input is made once.
pub(crate) fn run_stages(config: &Path, data: &Path, bin_dir: &Path, until: Stage) -> Result<()> {
    pipeline::run(&RunOptions {
        pipeline: config.to_path_buf(),
        data_dir: Some(data.to_path_buf()),
        force: false,
        from: None,
        until: Some(until),
        bin_dir: Some(bin_dir.to_path_buf()),
        quiet: true,
    })?;
    Ok(())
}

/// `stage`'s binary from `bin_dir`, set to read `input` and write `out`
/// (forced) under the pipeline `config`; callers add what else it needs.
pub(crate) fn stage_command(
    bin_dir: &Path,
    stage: Stage,
    config: &Path,
    data: &Path,
    input: &Path,
    out: &Path,
) -> Command {
    let mut cmd = Command::new(bin_dir.join(stage.binary()));
    cmd.arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .arg("--force");
    cmd
}

/// Runs the peer `script` (relative to the workspace) with the venv's
/// `python` as `script --spec <spec> --out <out>`, measured, its output
/// logged as `label` in `logs`; fails with its stderr.
pub(crate) fn run_peer(
    python: &Path,
    script: &str,
    spec: &Path,
    out: &Path,
    logs: &Path,
    label: &str,
) -> Result<Measured> {
    let mut cmd = Command::new(python);
    cmd.arg(workspace_root().join(script))
        .arg("--spec")
        .arg(spec)
        .arg("--out")
        .arg(out);
    let m = measure::run(&mut cmd, logs, label)?;
    measure::check(&m, script)?;
    Ok(m)
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

/// Builds the given stages' binaries in release mode (only what the
/// benchmark runs); returns their folder.
pub(crate) fn build_binaries(stages: &[Stage], quiet: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--bins"]);
    for s in stages {
        cmd.args(["-p", s.binary()]);
    }
    if quiet {
        cmd.arg("--quiet");
    }
    if !cmd.status().context("running cargo build")?.success() {
        bail!("building the stage binaries failed");
    }
    Ok(target_dir()?.join("release"))
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
