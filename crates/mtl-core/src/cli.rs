//! Arguments and outcome shared by every stage binary, so that all of them
//! are called the same way by `cargo xtask run` and by a scheduler.

use std::path::PathBuf;

use crate::config::PipelineConfig;
use crate::error::Result;
use crate::manifest::Manifest;
use crate::stage::Stage;

#[derive(Debug, Clone, clap::Args)]
pub struct StageArgs {
    /// Pipeline config (TOML).
    #[arg(long, short = 'c')]
    pub config: PathBuf,
    /// Data directory substituted for `$DATA_DIR` in dataset paths
    /// [default: $MTL_DATA_DIR].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Previous stage's output folder [default: runs/<pipeline>/<previous stage>].
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Output folder [default: runs/<pipeline>/<stage>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Re-run even if the output's fingerprint is current.
    #[arg(long)]
    pub force: bool,
}

impl StageArgs {
    pub fn load_config(&self) -> Result<PipelineConfig> {
        PipelineConfig::load(&self.config, self.data_dir.as_deref())
    }

    pub fn out_dir(&self, cfg: &PipelineConfig, stage: Stage) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| cfg.run_dir().join(stage.name()))
    }

    /// The input folder: `--input`, else the default folder of `upstream`.
    pub fn input_dir(&self, cfg: &PipelineConfig, upstream: Stage) -> PathBuf {
        self.input
            .clone()
            .unwrap_or_else(|| cfg.run_dir().join(upstream.name()))
    }
}

/// What a stage run did.
#[derive(Debug)]
pub enum Outcome {
    /// The output folder already matched the fingerprint.
    Cached(Manifest),
    Ran(Manifest),
}

impl Outcome {
    pub fn manifest(&self) -> &Manifest {
        match self {
            Outcome::Cached(m) | Outcome::Ran(m) => m,
        }
    }

    /// One line for logs: `clean: cached (3f2a9c1d)` or `clean: ran in 1.42 s`.
    pub fn summary(&self) -> String {
        let m = self.manifest();
        match self {
            Outcome::Cached(_) => format!(
                "{}: cached ({})",
                m.stage,
                &m.fingerprint[..12.min(m.fingerprint.len())]
            ),
            Outcome::Ran(_) => format!(
                "{}: ran in {:.2} s",
                m.stage,
                m.timings_ms.get("total").copied().unwrap_or(0) as f64 / 1000.0
            ),
        }
    }
}
