//! Artifact layout and Parquet schemas: the column names every stage agrees
//! on, and checked Parquet I/O. ARCHITECTURE.md documents the same tables.
//!
//! | artifact | columns |
//! |---|---|
//! | `clean/<dataset>.parquet` | `id` str, `dataset` str, `source_split` str?, `source_file` str, `source_line` u32, `group` str?, `text` str, `words` list[str], `n_chars` u32, `n_words` u32, `feat_<name>` f32 for each of [`FEATURES`], `label_<task>`: str? (classification), list[str]? (tagging, spans: one per word; multilabel: any number), f64? (regression) |
//! | `clean/quarantine.parquet` | `dataset` str, `source_file` str, `source_line` u32, `reason` str (a short code such as `unparseable`), `detail` str, `raw` str |
//! | `split/{train,dev,test}.parquet` | the clean columns of every dataset, fused; a task's label is null on rows that do not carry it (the task mask) |
//! | `split/features.json` | [`crate::features::FeatureSet`]: per-feature train statistics, per-task mutual-information ranking and the selected side inputs |
//! | `tokenize/{train,dev,test}.parquet` | `id` str, `input_ids` list[u32], `word_ids` list[i32] (-1 = special token), `n_words` u32, `length` u32, `feat_<name>` f32 for each feature any task selected, `y_<task>`: i32 (classification, -1 = no label), list[i32]? (tagging, spans: -100 = not scored; multilabel: the label ids, null = no label), f32? (regression, null = no label); with `truncation = "window"` also `window` u32 (0 = first window of the example; windows of one example share its `id`, `word_ids` index the example's words, and each word is scored in exactly one window); with `char_ids`, `char_ids` list[list[u32]] (one list per word of the example; ids from `tokenize/chars.json`, 0 = padding, 1 = unknown) |

use std::path::Path;

use polars::prelude::*;

use crate::error::{CoreError, Result};

pub const SPLITS: [&str; 3] = ["train", "dev", "test"];

/// The numeric features clean computes for every kept row, by name; the
/// column is `feat_<name>` ([`col::feature`]).
pub const FEATURES: [&str; 9] = [
    "n_chars",
    "n_words",
    "mean_word_len",
    "upper_ratio",
    "digit_ratio",
    "punct_ratio",
    "n_urls",
    "n_mentions",
    "n_hashtags",
];

/// Ignore index for sub-token positions that carry no label.
pub const IGNORE_INDEX: i32 = -100;
/// Sentence-level target meaning "this row has no label for this task".
pub const NO_LABEL: i32 = -1;

pub mod col {
    pub const ID: &str = "id";
    pub const DATASET: &str = "dataset";
    pub const SOURCE_SPLIT: &str = "source_split";
    pub const SOURCE_FILE: &str = "source_file";
    pub const SOURCE_LINE: &str = "source_line";
    pub const GROUP: &str = "group";
    pub const TEXT: &str = "text";
    pub const WORDS: &str = "words";
    pub const N_CHARS: &str = "n_chars";
    pub const N_WORDS: &str = "n_words";
    pub const REASON: &str = "reason";
    pub const DETAIL: &str = "detail";
    pub const RAW: &str = "raw";
    pub const INPUT_IDS: &str = "input_ids";
    pub const WORD_IDS: &str = "word_ids";
    pub const LENGTH: &str = "length";
    pub const WINDOW: &str = "window";
    pub const CHAR_IDS: &str = "char_ids";

    /// Label column of a task in clean and split tables.
    pub fn label(task: &str) -> String {
        format!("label_{task}")
    }

    /// Column of a numeric feature (one of [`super::FEATURES`]).
    pub fn feature(name: &str) -> String {
        format!("feat_{name}")
    }

    /// Integer target column of a task in tokenize tables.
    pub fn target(task: &str) -> String {
        format!("y_{task}")
    }

    /// Gold heads of a dependency task in tokenize tables: at a word's
    /// first sub-token, the position of its head word's first sub-token
    /// (0, the `[CLS]` position, for the root); `IGNORE_INDEX` elsewhere.
    pub fn heads(task: &str) -> String {
        format!("h_{task}")
    }

    /// The CoNLL-U HEAD column that clean writes and split passes through:
    /// per word, its head's 1-based word number, 0 for the root.
    pub const CONLLU_HEAD: &str = "conllu_head";
}

/// Attaches the artifact's path to a polars error, so that every message
/// about a table names its file.
pub trait PolarsAt<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> PolarsAt<T> for PolarsResult<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| CoreError::Parquet {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Writes a DataFrame as Parquet (zstd) through a temporary name.
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    let tmp = crate::fsio::tmp_sibling(path);
    let res = (|| -> std::result::Result<(), PolarsError> {
        let file = std::fs::File::create(&tmp)?;
        ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .finish(df)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|e| CoreError::Parquet {
        path: path.to_path_buf(),
        source: e,
    })
}

pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| CoreError::Parquet {
            path: path.to_path_buf(),
            source: e,
        })
}

/// A column that must exist with the given dtype; the error names the file.
pub fn column<'a>(
    df: &'a DataFrame,
    path: &Path,
    name: &str,
    dtype: &DataType,
) -> Result<&'a Column> {
    let c = df.column(name).map_err(|_| CoreError::Schema {
        path: path.to_path_buf(),
        column: name.to_string(),
        message: "missing".into(),
    })?;
    if c.dtype() != dtype {
        return Err(CoreError::Schema {
            path: path.to_path_buf(),
            column: name.to_string(),
            message: format!("expected {dtype}, found {}", c.dtype()),
        });
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parquet_round_trip_and_schema_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut df = df!("id" => ["a", "b"], "n" => [1u32, 2]).unwrap();
        write_parquet(&mut df, &path).unwrap();
        let back = read_parquet(&path).unwrap();
        assert!(back.equals(&df));
        assert!(column(&back, &path, "id", &DataType::String).is_ok());
        let err = column(&back, &path, "n", &DataType::String)
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.parquet") && err.contains("`n`"), "{err}");
        let err = column(&back, &path, "zz", &DataType::String)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
