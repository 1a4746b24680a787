//! The cleaning rules as polars queries over one chunk's rows table: clean
//! every word, rebuild the text, reject rows that cannot be trained on, and
//! compute the near-duplicate key. [`crate::dedup`] then drops duplicates
//! and repeated ids across the whole dataset, and [`finish`] builds the
//! kept table in the clean artifact's schema.

use mtl_core::artifact::{FEATURES, col};
use mtl_core::config::{CleanOptions, TaskConfig};
use polars::prelude::*;

use crate::features::feature_exprs;
use crate::reason;
use crate::table::ROW;
use crate::words::{EMPTIED_AT, EMPTIED_TOKEN, N_EMPTIED, N_RAW_WORDS};

/// The near-duplicate key of a valid row (see [`check`]).
pub(crate) const KEY: &str = "_key";

/// Everything but letters and digits: removed to build the near-duplicate key.
const NON_ALNUM: &str = r"[^\p{L}\p{N}]";

/// A row the rules rejected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dropped {
    /// Index of the row in its chunk.
    pub row: usize,
    pub reason: &'static str,
    pub detail: String,
}

/// The rows of one chunk after the per-row rules.
pub(crate) struct Checked {
    /// The rows that passed, in row order: the table's columns, the
    /// cleaned `text`, `words` and counts, and, when deduplicating, the
    /// near-duplicate key [`KEY`].
    pub valid: DataFrame,
    pub dropped: Vec<Dropped>,
}

/// Applies every rule that looks at one row alone to a table from
/// [`crate::table::rows_table`]. Duplicates and ids need
/// the rows of earlier chunks too: [`crate::dedup`] decides those, and
/// [`finish`] builds the kept table.
pub(crate) fn check(
    table: DataFrame,
    tasks: &[&TaskConfig],
    opts: &CleanOptions,
) -> PolarsResult<Checked> {
    let (why, detail) = check_rows(tasks, opts);
    let checked = table.lazy().with_column(why.alias(col::REASON)).collect()?;
    let mut dropped = Vec::new();
    // Details are built for the rejected rows only: most rows pass.
    let mut valid = take_dropped(checked, detail, &mut dropped)?;
    if opts.dedup {
        valid = valid.with_column(near_key().alias(KEY));
    }
    Ok(Checked {
        valid: valid.collect()?,
        dropped,
    })
}

/// The kept table: the `keep` rows of [`Checked::valid`] with their
/// features, in the clean artifact's schema. `extra` names reader-specific
/// columns that go through unchanged.
pub(crate) fn finish(
    valid: &DataFrame,
    keep: &BooleanChunked,
    tasks: &[&TaskConfig],
    extra: &[&str],
) -> PolarsResult<DataFrame> {
    valid
        .filter(keep)?
        .lazy()
        .with_columns(feature_exprs())
        .select(output_columns(tasks, extra))
        .collect()
}

/// The `reason` and `detail` expressions: the first rule a row breaks, in
/// order, and what about it.
fn check_rows(tasks: &[&TaskConfig], opts: &CleanOptions) -> (Expr, Expr) {
    let present = |t: &TaskConfig| col(col::label(&t.name)).is_not_null();
    let any = |exprs: Vec<Expr>| exprs.into_iter().reduce(Expr::or).unwrap_or(lit(false));
    let token_tasks: Vec<&TaskConfig> = tasks
        .iter()
        .copied()
        .filter(|t| t.kind.is_token_level())
        .collect();

    let mut rules: Vec<(Expr, &'static str, Expr)> = Vec::new();
    for t in &token_tasks {
        let n_tags = col(col::label(&t.name)).list().len();
        rules.push((
            present(t).and(n_tags.clone().neq(col(N_RAW_WORDS))),
            reason::TAG_COUNT_MISMATCH,
            concat_str(
                [
                    lit(format!("task `{}`: ", t.name)),
                    n_tags.cast(DataType::String),
                    lit(" tags for "),
                    col(N_RAW_WORDS).cast(DataType::String),
                    lit(" words"),
                ],
                "",
                false,
            ),
        ));
    }
    rules.push((
        any(token_tasks.iter().map(|t| present(t)).collect()).and(col(N_EMPTIED).gt(lit(0))),
        reason::TOKEN_EMPTIED,
        concat_str(
            [
                lit("word `"),
                col(EMPTIED_TOKEN),
                lit("` at position "),
                col(EMPTIED_AT).cast(DataType::String),
                lit(" (0-based) is empty after cleaning; dropping it would misalign the token labels"),
            ],
            "",
            false,
        ),
    ));
    rules.push((
        col(col::N_WORDS).eq(lit(0)),
        reason::EMPTY,
        lit("no text left after cleaning"),
    ));
    let n_chars = || col(col::N_CHARS).cast(DataType::String);
    if opts.min_chars > 1 {
        rules.push((
            col(col::N_CHARS).lt(lit(opts.min_chars as u64)),
            reason::TOO_SHORT,
            concat_str(
                [
                    n_chars(),
                    lit(format!(" chars < min_chars = {}", opts.min_chars)),
                ],
                "",
                false,
            ),
        ));
    }
    if let Some(max) = opts.max_chars {
        rules.push((
            col(col::N_CHARS).gt(lit(max as u64)),
            reason::TOO_LONG,
            concat_str(
                [n_chars(), lit(format!(" chars > max_chars = {max}"))],
                "",
                false,
            ),
        ));
    }
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    rules.push((
        any(tasks.iter().map(|t| present(t)).collect()).not(),
        reason::NO_LABELS,
        lit(if names.is_empty() {
            "the dataset has no tasks".to_string()
        } else {
            format!("no label for any of: {}", names.join(", "))
        }),
    ));

    let mut why = null_str();
    let mut detail = null_str();
    for (cond, code, text) in rules.into_iter().rev() {
        let cond = cond.fill_null(lit(false));
        why = when(cond.clone()).then(lit(code)).otherwise(why);
        detail = when(cond).then(text).otherwise(detail);
    }
    (why, detail)
}

/// The near-duplicate key: the split, then the text lowercased with
/// everything but letters and digits removed. A text made only of
/// punctuation keys on itself, or every such text would collapse into one.
fn near_key() -> Expr {
    let norm =
        col(col::TEXT)
            .str()
            .to_lowercase()
            .str()
            .replace_all(lit(NON_ALNUM), lit(""), false);
    let norm = when(norm.clone().str().len_chars().eq(lit(0)))
        .then(concat_str([lit("\u{2}"), col(col::TEXT)], "", false))
        .otherwise(norm);
    concat_str(
        [col(col::SOURCE_SPLIT).fill_null(lit("")), norm],
        "\u{1f}",
        false,
    )
}

fn output_columns(tasks: &[&TaskConfig], extra: &[&str]) -> Vec<Expr> {
    let mut out: Vec<Expr> = [
        col::ID,
        col::DATASET,
        col::SOURCE_SPLIT,
        col::SOURCE_FILE,
        col::SOURCE_LINE,
        col::GROUP,
        col::TEXT,
        col::WORDS,
        col::N_CHARS,
        col::N_WORDS,
    ]
    .into_iter()
    .map(col)
    .collect();
    out.extend(tasks.iter().map(|t| col(col::label(&t.name))));
    out.extend(extra.iter().map(|c| col(*c)));
    out.extend(FEATURES.iter().map(|f| col(col::feature(f))));
    out
}

/// Moves the rows that have a `reason` into `dropped`, with their
/// `detail`; returns the rest.
fn take_dropped(
    df: DataFrame,
    detail: Expr,
    dropped: &mut Vec<Dropped>,
) -> PolarsResult<LazyFrame> {
    let rejected = df
        .clone()
        .lazy()
        .filter(col(col::REASON).is_not_null())
        .select([col(ROW), col(col::REASON), detail.alias(col::DETAIL)])
        .collect()?;
    let rows = rejected.column(ROW)?.idx()?;
    let reasons = rejected.column(col::REASON)?.str()?;
    let details = rejected.column(col::DETAIL)?.str()?;
    for ((row, code), detail) in rows.iter().zip(reasons.iter()).zip(details.iter()) {
        let code = code.unwrap_or_default();
        let reason = reason::intern(code)
            .ok_or_else(|| polars_err!(ComputeError: "unknown quarantine reason `{code}`"))?;
        let row = row.ok_or_else(|| polars_err!(ComputeError: "null row index"))?;
        dropped.push(Dropped {
            row: row as usize,
            reason,
            detail: detail.unwrap_or_default().to_string(),
        });
    }
    Ok(df.lazy().filter(col(col::REASON).is_null()))
}

fn null_str() -> Expr {
    lit(Null {}).cast(DataType::String)
}
