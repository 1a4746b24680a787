#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(#[from] mtl_core::CoreError),
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
