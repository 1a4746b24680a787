//! The eval stage: scores the trained multi-task model on the tokenized
//! dev/test splits and writes `metrics.json` and `report.md`, with a
//! majority-class baseline beside every headline score. Heads that take side
//! inputs get the `feat_*` columns of the tokenize tables, standardized as in
//! training.
//!
//! Headlines and baselines per task kind: classification macro-F1 against
//! the majority label; tagging word accuracy and spans entity F1 against the
//! majority tag; multilabel micro-F1 (also macro-F1, samples-F1, subset
//! accuracy, hamming loss) against predicting every label carried by at least
//! half of the labelled training texts (else the most frequent label);
//! regression Pearson's r (also Spearman's ρ, RMSE, MAE) against predicting
//! the training mean, whose r is undefined and reported as 0.
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
pub use predict::RowPreds;
pub use report::{Metrics, render_markdown, render_table};
pub use stage::{REPORT_MD, STAGE_VERSION, TablePredictions, predict_table, run};
