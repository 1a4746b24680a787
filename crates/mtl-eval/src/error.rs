use std::path::PathBuf;

use crate::metrics::MetricError;

/// Everything that can stop the eval stage. Errors about input name the
/// file, and where they can the column and the row id.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] mtl_core::CoreError),
    #[error("{path}: cannot use the model bundle")]
    Model {
        path: PathBuf,
        // Boxed: the model error holds whole core and tensor errors, and
        // this variant should not make every Result large.
        #[source]
        source: Box<mtl_model::Error>,
    },
    #[error("{path}: column `{column}`, row `{id}`: {message}")]
    Row {
        path: PathBuf,
        column: String,
        id: String,
        message: String,
    },
    #[error("{path}: task `{task}`: {message}")]
    Task {
        path: PathBuf,
        task: String,
        message: String,
    },
    #[error("task `{task}`")]
    Metric {
        task: String,
        #[source]
        source: MetricError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
