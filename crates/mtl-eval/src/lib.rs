//! The eval stage: scores the trained multi-task model on the tokenized
//! dev/test splits and writes `metrics.json`, `report.md` and a
//! self-contained `report.html` (SVG charts: training curves, scores against
//! baselines, confusion matrices, label distributions, parsed dev sentences
//! over their gold trees), with a majority
//! baseline and a 95% bootstrap interval beside every headline score. Heads
//! that take side inputs get the `feat_*` columns of the tokenize tables,
//! standardized as in training.
//!
//! Every kind reports all its metrics (classification accuracy, macro/micro/
//! weighted F1, macro precision and recall, per-class P/R/F1 and the
//! confusion matrix; tagging word accuracy; spans seqeval entity P/R/F1 for
//! IOB2 and BIOES, and word accuracy; multilabel micro/macro/samples F1,
//! subset accuracy, hamming loss; regression Pearson, Spearman, MSE, RMSE,
//! MAE). The headline is the task's `metric` in the config
//! ([`metrics::headline`]), by default: classification macro-F1 against the
//! majority label; tagging word accuracy and spans entity F1 against the
//! majority tag; multilabel micro-F1 against predicting every label carried
//! by at least half of the labelled training texts (else the most frequent
//! label); regression Pearson's r against predicting the training mean,
//! whose r is undefined and reported as 0. Intervals are percentile
//! bootstraps over the scored examples ([`metrics::bootstrap`]).
//!
//! Single-task scores, when some process has written them to
//! `runs/<pipeline>/baselines.json` ([`baselines`] documents the schema;
//! `cargo xtask run --baselines` writes it), appear beside the multi-task
//! ones in both reports, with the multi-task gain Δp and, when the file
//! records them, the costs of the single-task models against this model's
//! own (`metrics.json` `cost`: parameters, training and inference time).
//!
//! Windowed tables (`tokenize.truncation = "window"`) are scored per
//! example, not per window: the windows of an example merge back first
//! (token tasks from the window that scores each word, sentence tasks from
//! window 0), exactly as `mtl-predict` merges them.
//!
//! It never trains, never changes the model or upstream artifacts, and never
//! tokenizes text: it reads the tokenize stage's Parquet tables and the train
//! stage's model bundle as they are, so its scores describe exactly what
//! those stages produced. The metric functions in [`metrics`] are pure and
//! know nothing about models or files.

pub mod baselines;
mod data;
mod error;
pub mod html;
/// The metric functions live in `mtl-metrics`, shared with train and predict.
pub use mtl_metrics as metrics;
mod predict;
pub mod report;
mod score;
mod stage;
pub mod svg;
pub mod trainlog;
mod truncated;
mod windows;

pub use error::{Error, Result};
pub use metrics::MetricError;
pub use metrics::spans::{Entity, entities};
pub use predict::RowPreds;
pub use report::{Metrics, render_comparison, render_markdown, render_markdown_with, render_table};
pub use stage::{
    REPORT_HTML, REPORT_MD, STAGE_VERSION, TablePredictions, default_baselines_path, predict_table,
    run, run_on_device, run_with_baselines,
};
