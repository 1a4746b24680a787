#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] mtl_core::CoreError),
    #[error(
        "{file}:{line}: task `{task}`: label `{label}` is not in the training vocabulary \
         (set [split] unknown_labels = {{ policy = \"map-to\", label = \"...\" }}, or the \
         task's own `unknown_labels`, to map it)"
    )]
    UnknownLabel {
        file: String,
        line: u32,
        task: String,
        label: String,
    },
    #[error("config key `{key}`: fallback `{label}` is not a training label of task `{task}`")]
    BadFallback {
        key: String,
        task: String,
        label: String,
    },
    #[error("{file}:{line}: `source_split` is `{split}`, expected train, dev or test")]
    BadSplit {
        file: String,
        line: u32,
        split: String,
    },
    #[error("{file}:{line}: task `{task}`: target {value} is not a finite number")]
    BadTarget {
        file: String,
        line: u32,
        task: String,
        value: f64,
    },
    #[error("task `{task}` has no labelled training examples")]
    NoTrainingLabels { task: String },
    #[error(
        "{path}: the clean table lacks the feature column(s) {missing}; it was written by an \
         older clean stage: re-run `mtl-clean --force`"
    )]
    MissingFeatures { path: String, missing: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
