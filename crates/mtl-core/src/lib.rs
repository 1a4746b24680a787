//! The contracts every mtl stage shares: the pipeline config, task types and
//! label vocabularies, the artifact layout and Parquet schemas, manifests and
//! fingerprints, and atomic writes.
//!
//! This crate never does a stage's work and never depends on a stage crate;
//! stages depend on it. Change it with care: a change here is a change in the
//! format between stages (bump the affected stage versions).

pub mod align;
pub mod artifact;
pub mod chars;
pub mod cli;
pub mod config;
mod error;
pub mod features;
pub mod fsio;
pub mod hash;
pub mod manifest;
pub mod rng;
pub mod stage;
pub mod task;

pub use chars::CharVocab;
pub use cli::{Outcome, StageArgs};
pub use config::PipelineConfig;
pub use error::{CoreError, Result};
pub use features::FeatureSet;
pub use fsio::StagingDir;
pub use manifest::{InputRef, Manifest, ManifestBuilder};
pub use stage::Stage;
pub use task::{LabelSet, TaskKind, TaskLabels};
