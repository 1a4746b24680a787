use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] mtl_core::CoreError),
    #[error(transparent)]
    Model(#[from] mtl_model::Error),
    #[error(transparent)]
    Clean(#[from] mtl_clean::Error),
    #[error(transparent)]
    Tokenize(#[from] mtl_tokenize::Error),
    #[error("{path}:{line}: {message}")]
    Input {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{path}: the output folder is locked by {holder}: another mtl-predict job is writing \
         to it; wait for it to end, or delete the lock file if that process is not mtl-predict"
    )]
    Locked { path: PathBuf, holder: String },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
