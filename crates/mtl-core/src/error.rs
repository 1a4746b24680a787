use std::path::PathBuf;

/// Errors raised by the shared contracts. Every variant names the file (and,
/// where it can, the key or line) so that a user can fix the input.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid TOML: {message}")]
    ConfigSyntax { path: PathBuf, message: String },
    #[error("{path}: key `{key}`: {message}")]
    ConfigValue {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{path}: invalid JSON")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: polars::prelude::PolarsError,
    },
    #[error("{path}: column `{column}`: {message}")]
    Schema {
        path: PathBuf,
        column: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Artifact { path: PathBuf, message: String },
}

impl CoreError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CoreError::Io {
            path: path.into(),
            source,
        }
    }

    pub fn artifact(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        CoreError::Artifact {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
