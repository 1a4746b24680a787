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
    #[error("training diverged at step {step}: loss is {value} (lower train.learning_rate?)")]
    NonFinite { step: usize, value: f32 },
    #[error("no training examples: {0}")]
    Empty(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
