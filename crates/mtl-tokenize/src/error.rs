use std::path::PathBuf;

/// Errors of the tokenize stage. Every variant about input names the file
/// and, where there is one, the row id, the task or the config key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] mtl_core::CoreError),

    #[error("{path}: cannot load tokenizer: {message}")]
    LoadTokenizer { path: PathBuf, message: String },

    #[error("{path}: cannot save tokenizer: {message}")]
    SaveTokenizer { path: PathBuf, message: String },

    #[error("training the {kind} tokenizer failed: {message}")]
    Train { kind: String, message: String },

    #[error("encoding failed: {message}")]
    Encode { message: String },

    #[error("{path}: row {row} (id `{id}`): {message}")]
    Row {
        path: PathBuf,
        row: usize,
        id: String,
        message: String,
    },

    #[error(
        "{path}: row {row} (id `{id}`): task `{task}`: label `{label}` is not in labels.json \
         (the split stage maps or rejects unknown labels, so split and labels.json disagree; re-run `mtl-split`)"
    )]
    UnknownLabel {
        path: PathBuf,
        row: usize,
        id: String,
        task: String,
        label: String,
    },

    #[error("{path}")]
    Polars {
        path: PathBuf,
        #[source]
        source: polars::prelude::PolarsError,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
