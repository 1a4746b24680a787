//! `cargo xtask run`: clean → split → tokenize → train → eval.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mtl_core::{Manifest, PipelineConfig, Stage};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub pipeline: PathBuf,
    pub data_dir: Option<PathBuf>,
    /// Re-run every selected stage.
    pub force: bool,
    /// First stage to run; it and every later stage are forced.
    pub from: Option<Stage>,
    /// Last stage to run.
    pub until: Option<Stage>,
    /// Where the stage binaries are; `None` builds them with cargo first.
    pub bin_dir: Option<PathBuf>,
    /// Print stage output (the CLI does; tests capture it instead).
    pub quiet: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRun {
    pub stage: Stage,
    /// The stage found its output current and did nothing.
    pub cached: bool,
    pub seconds_x100: u64,
}

/// The workspace root: the nearest folder above the current one whose
/// `Cargo.toml` declares `[workspace]`.
///
/// Found at run time on purpose: `env!("CARGO_MANIFEST_DIR")` is baked in at
/// compile time, and with a target folder shared between two clones the
/// binary can carry the other clone's path.
pub fn workspace_root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_default();
    here.ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .map(|t| t.lines().any(|l| l.trim() == "[workspace]"))
                .unwrap_or(false)
        })
        .map(Path::to_path_buf)
        .unwrap_or(here)
}

/// A `cargo` command with the environment a shell would give it.
///
/// `cargo run` and `cargo test` export variables such as
/// `CARGO_MANIFEST_DIR` to the program they start. Some build scripts (ring,
/// under polars) declare `rerun-if-env-changed` on them, so a nested cargo
/// that inherits them sees every dependency as dirty and rebuilds polars and
/// candle from scratch, and the next plain `cargo` call rebuilds them again.
pub(crate) fn cargo() -> Command {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(program);
    const KEEP: [&str; 10] = [
        "CARGO_HOME",
        "CARGO_TARGET_DIR",
        "CARGO_TERM_",
        "CARGO_BUILD_",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_PROFILE_",
        "CARGO_INCREMENTAL",
        "CARGO_LOG",
    ];
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        let set_by_cargo = key == "CARGO"
            || (key.starts_with("CARGO_") && !KEEP.iter().any(|k| key.starts_with(k)));
        if set_by_cargo || key == "OUT_DIR" {
            cmd.env_remove(key);
        }
    }
    // xtask started without `cargo xtask` (a scheduler calling the binary)
    // has no CARGO_TARGET_DIR: build where xtask itself was built, not into
    // a fresh ./target that would rebuild every dependency.
    if std::env::var_os("CARGO_TARGET_DIR").is_none()
        && let Some(dir) = own_target_dir()
    {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    cmd.current_dir(workspace_root());
    cmd
}

/// The target folder holding this xtask binary (`<dir>/release/xtask`),
/// recognised by cargo's `CACHEDIR.TAG`.
fn own_target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?.parent()?;
    dir.join("CACHEDIR.TAG").exists().then(|| dir.to_path_buf())
}

/// Builds every stage binary (and `mtl-predict`) in release mode and
/// returns their folder.
pub fn build_stage_binaries(quiet: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--bins"]);
    for s in Stage::ALL {
        cmd.args(["-p", s.binary()]);
    }
    cmd.args(["-p", "mtl-predict"]);
    if quiet {
        cmd.arg("--quiet");
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("building the stage binaries failed");
    }
    Ok(target_dir()?.join("release"))
}

/// The workspace's target folder, as cargo resolves it.
pub(crate) fn target_dir() -> Result<PathBuf> {
    let meta = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    let v: serde_json::Value =
        serde_json::from_slice(&meta.stdout).context("parsing cargo metadata")?;
    let target = v["target_directory"]
        .as_str()
        .context("cargo metadata has no target_directory")?;
    Ok(PathBuf::from(target))
}

/// Runs the selected stages in order and reports which were cached.
pub fn run(opts: &RunOptions) -> Result<Vec<StageRun>> {
    let cfg = PipelineConfig::load(&opts.pipeline, opts.data_dir.as_deref())?;
    let bin_dir = match &opts.bin_dir {
        Some(d) => d.clone(),
        None => build_stage_binaries(opts.quiet)?,
    };
    let first = opts.from.unwrap_or(Stage::Clean);
    let last = opts.until.unwrap_or(Stage::Eval);
    if first > last {
        bail!("--from {first} comes after --until {last}");
    }
    let call = StageCall {
        bin_dir: &bin_dir,
        config: &opts.pipeline,
        data_dir: opts.data_dir.as_deref(),
        force: opts.force || opts.from.is_some(),
        quiet: opts.quiet,
    };
    let mut runs = Vec::new();
    for stage in Stage::ALL
        .into_iter()
        .filter(|s| (first..=last).contains(s))
    {
        runs.push(call.run(stage, &cfg.run_dir().join(stage.name()), &[])?);
    }
    Ok(runs)
}

/// How to call a stage binary: `--config`, `--data-dir` and `--force`.
#[derive(Debug, Clone)]
pub struct StageCall<'a> {
    pub bin_dir: &'a Path,
    pub config: &'a Path,
    pub data_dir: Option<&'a Path>,
    pub force: bool,
    pub quiet: bool,
}

impl StageCall<'_> {
    /// Runs `stage` with `extra` arguments (`--input`, `--out`, ...); `out`
    /// is the folder it writes, whose manifest tells whether it was cached.
    pub fn run(&self, stage: Stage, out: &Path, extra: &[&std::ffi::OsStr]) -> Result<StageRun> {
        let before = manifest_identity(out);
        let mut cmd = Command::new(self.bin_dir.join(stage.binary()));
        cmd.arg("--config").arg(self.config);
        if let Some(d) = self.data_dir {
            cmd.arg("--data-dir").arg(d);
        }
        if self.force {
            cmd.arg("--force");
        }
        cmd.args(extra);
        let started = Instant::now();
        let output = cmd
            .output()
            .with_context(|| format!("starting {}", stage.binary()))?;
        if !self.quiet {
            print!("{}", String::from_utf8_lossy(&output.stdout));
            eprint!("{}", String::from_utf8_lossy(&output.stderr));
        }
        if !output.status.success() {
            bail!(
                "stage `{stage}` failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        let after = manifest_identity(out);
        Ok(StageRun {
            stage,
            cached: before.is_some() && before == after,
            seconds_x100: (started.elapsed().as_secs_f64() * 100.0) as u64,
        })
    }
}

/// What tells a cached stage from one that ran: a run commits a new folder,
/// so its manifest is a new file even when its bytes are the same (a fast
/// stage re-run within the same second writes identical timings).
fn manifest_identity(out: &Path) -> Option<(Vec<u8>, Option<u64>, Option<std::time::SystemTime>)> {
    let path = out.join(Manifest::FILE);
    let bytes = std::fs::read(&path).ok()?;
    let meta = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    let inode = {
        use std::os::unix::fs::MetadataExt;
        Some(meta.ino())
    };
    #[cfg(not(unix))]
    let inode = None;
    Some((bytes, inode, meta.modified().ok()))
}

/// The per-task score table from `eval/metrics.json`.
pub fn metrics_table(cfg: &PipelineConfig) -> Result<String> {
    let path = cfg.run_dir().join(Stage::Eval.name()).join("metrics.json");
    let metrics: mtl_eval::report::Metrics = mtl_core::fsio::read_json(&path)?;
    Ok(mtl_eval::render_table(&metrics))
}
