//! The short codes written to `quarantine.parquet`'s `reason` column and
//! counted under `dropped` in `report.json`.

/// The line is not valid UTF-8.
pub const INVALID_UTF8: &str = "invalid_utf8";
/// The line is not a JSON object, or a CoNLL-U line is malformed.
pub const UNPARSEABLE: &str = "unparseable";
/// An id column is configured but the row has no usable id.
pub const MISSING_ID: &str = "missing_id";
/// The text field is not a string.
pub const BAD_TEXT: &str = "bad_text";
/// A label has the wrong JSON type for its task.
pub const BAD_LABEL: &str = "bad_label";
/// A token task has a different number of tags than the text has words.
pub const TAG_COUNT_MISMATCH: &str = "tag_count_mismatch";
/// Cleaning emptied a word of a row that carries token labels.
pub const TOKEN_EMPTIED: &str = "token_emptied";
/// Nothing is left of the text after cleaning.
pub const EMPTY: &str = "empty";
pub const TOO_SHORT: &str = "too_short";
pub const TOO_LONG: &str = "too_long";
/// The row has no label for any task of its dataset.
pub const NO_LABELS: &str = "no_labels";
/// Same cleaned text and labels as an earlier kept row.
pub const DUPLICATE: &str = "duplicate";
/// Same text up to case and punctuation, and same labels.
pub const NEAR_DUPLICATE: &str = "near_duplicate";
/// Same text up to case and punctuation, but different labels.
pub const CONFLICTING_DUPLICATE: &str = "conflicting_duplicate";
/// Another kept row of the dataset already has this id.
pub const DUPLICATE_ID: &str = "duplicate_id";
/// A CSV/TSV record or a CoNLL column-file line has a different number of
/// fields than the columns.
pub const WRONG_FIELD_COUNT: &str = "wrong_field_count";
/// A CoNLL-U sentence read by a dependency task is not one tree: a HEAD
/// outside the sentence or `_`, no root or several, or a cycle.
pub const BAD_TREE: &str = "bad_tree";

pub const ALL: [&str; 17] = [
    INVALID_UTF8,
    UNPARSEABLE,
    MISSING_ID,
    BAD_TEXT,
    BAD_LABEL,
    TAG_COUNT_MISMATCH,
    TOKEN_EMPTIED,
    EMPTY,
    TOO_SHORT,
    TOO_LONG,
    NO_LABELS,
    DUPLICATE,
    NEAR_DUPLICATE,
    CONFLICTING_DUPLICATE,
    DUPLICATE_ID,
    WRONG_FIELD_COUNT,
    BAD_TREE,
];

/// The constant for a code that came back from a polars column.
pub(crate) fn intern(code: &str) -> Option<&'static str> {
    ALL.iter().copied().find(|r| *r == code)
}
