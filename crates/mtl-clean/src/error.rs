use std::path::PathBuf;

use polars::prelude::PolarsError;

/// Errors of the clean stage. Bad rows are never errors (they go to the
/// quarantine); these are the problems that stop the stage: a missing file
/// or column, a file whose records cannot be separated, an I/O failure.
/// Each names the file or config key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] mtl_core::CoreError),

    #[error("{config}: key `{key}`: input file {path} not found")]
    MissingInput {
        config: PathBuf,
        key: String,
        path: PathBuf,
    },

    #[error("{config}: key `{key}`: {detail}")]
    BadDataset {
        config: PathBuf,
        key: String,
        detail: String,
    },

    #[error("{path}: no column `{column}` (named by `{key}`); the file has: {available}")]
    MissingColumn {
        path: PathBuf,
        column: String,
        key: String,
        available: String,
    },

    /// A file whose records cannot be told apart, such as a quote that is
    /// never closed.
    #[error("{path}: line {line}: {detail}")]
    Malformed {
        path: PathBuf,
        line: u64,
        detail: String,
    },

    #[error(
        "{config}: key `datasets[{index}].name`: `{name}` is reserved (it names a clean output)"
    )]
    ReservedName {
        config: PathBuf,
        index: usize,
        name: String,
    },

    #[error("{config}: key `{key}`: {detail}")]
    BadTask {
        config: PathBuf,
        key: String,
        detail: String,
    },

    #[error(
        "{path}: a `lines` text file's name must end with `_text.txt` (its labels are read from the `_labels.txt` beside it)"
    )]
    NotATextFile { path: PathBuf },

    #[error("{text}: its {what} file {path} was not found")]
    MissingCompanion {
        text: PathBuf,
        what: &'static str,
        path: PathBuf,
    },

    #[error(
        "{text} has {text_lines} lines but {labels} has {label_lines}: a `lines` dataset needs one label line per text line"
    )]
    LineCountMismatch {
        text: PathBuf,
        text_lines: usize,
        labels: PathBuf,
        label_lines: usize,
    },

    #[error("{path}: line {line}: {detail}")]
    BadMapping {
        path: PathBuf,
        line: usize,
        detail: String,
    },

    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: line {line}: more lines than a u32 can number")]
    TooManyLines { path: PathBuf, line: u64 },

    #[error("{context}")]
    Polars {
        context: String,
        #[source]
        source: PolarsError,
    },

    /// Every row read must be kept or quarantined; anything else is a bug
    /// in this crate, reported instead of writing a table that lost rows.
    #[error(
        "dataset `{dataset}`: rows read ({read}) != kept ({kept}) + quarantined ({dropped}); this is a bug in mtl-clean"
    )]
    Accounting {
        dataset: String,
        read: u64,
        kept: u64,
        dropped: u64,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches what was being done (a dataset, a file) to a polars error.
pub(crate) trait PolarsAt<T> {
    fn ctx(self, context: impl std::fmt::Display) -> Result<T>;
}

impl<T> PolarsAt<T> for std::result::Result<T, PolarsError> {
    fn ctx(self, context: impl std::fmt::Display) -> Result<T> {
        self.map_err(|source| Error::Polars {
            context: context.to_string(),
            source,
        })
    }
}
