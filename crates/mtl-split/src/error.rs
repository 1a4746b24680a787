use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] mtl_core::CoreError),
    #[error("{path}: {source}")]
    Polars {
        path: PathBuf,
        #[source]
        source: polars::prelude::PolarsError,
    },
    #[error(
        "{file}:{line}: task `{task}`: label `{label}` is not in the training vocabulary \
         (set [split] unknown_labels = {{ policy = \"map-to\", label = \"...\" }} to map it)"
    )]
    UnknownLabel {
        file: String,
        line: u32,
        task: String,
        label: String,
    },
    #[error(
        "config key `split.unknown_labels.label`: fallback `{label}` is not a training label of task `{task}`"
    )]
    BadFallback { task: String, label: String },
    #[error("{file}:{line}: `source_split` is `{split}`, expected train, dev or test")]
    BadSplit {
        file: String,
        line: u32,
        split: String,
    },
    #[error("task `{task}` has no labelled training examples")]
    NoTrainingLabels { task: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the artifact path to polars errors.
pub(crate) trait PolarsContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> PolarsContext<T> for polars::prelude::PolarsResult<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Polars {
            path: path.to_path_buf(),
            source,
        })
    }
}
