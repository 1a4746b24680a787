//! The eval stage: scores the trained multi-task model on the tokenized
//! dev/test splits and writes `metrics.json` and `report.md`, with a
//! majority-class baseline beside every headline score.
//!
//! It never trains, never changes the model or upstream artifacts, and never
//! tokenizes text: it reads the tokenize stage's Parquet tables and the train
//! stage's model bundle as they are, so its scores describe exactly what
//! those stages produced. The metric functions in [`metrics`] are pure and
//! know nothing about models or files.

mod data;
mod error;
pub mod metrics;
mod predict;
pub mod report;
mod score;
mod stage;
mod truncated;

pub use error::{Error, Result};
pub use metrics::MetricError;
pub use metrics::spans::{Entity, entities};
pub use report::{Metrics, render_markdown, render_table};
pub use stage::{REPORT_MD, STAGE_VERSION, run};
