use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] mtl_core::CoreError),
    #[error(transparent)]
    Model(#[from] mtl_model::Error),
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("{path}")]
    Polars {
        path: PathBuf,
        #[source]
        source: polars::prelude::PolarsError,
    },
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },
    /// A NaN or infinite loss or gradient: the run stops; the last
    /// checkpoint (written at the last evaluation) is left in place.
    #[error(
        "training diverged at step {step}: {what} is {value} (lower train.learning_rate or set \
         train.grad_clip); the last checkpoint, if any, is kept"
    )]
    NonFinite {
        step: usize,
        what: String,
        value: f64,
    },
    #[error("no training examples: {0}")]
    Empty(String),
    /// The model and the label set disagree about a task while scoring dev.
    #[error("dev scoring of task `{task}`: {message}")]
    Scoring { task: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
