//! The cleaning rules as polars queries over the rows table: clean every
//! word, rebuild the text, reject rows that cannot be trained on, and
//! drop duplicates. What comes out is the kept table (in the clean
//! artifact's schema) and the dropped rows with their reasons.

use mtl_core::artifact::col;
use mtl_core::config::{CleanOptions, TaskConfig};
use polars::prelude::*;

use crate::reason;
use crate::table::{RAW_WORDS, ROW};
use crate::text::token_expr;

const RAW_TOKEN: &str = "_raw_token";
const TOKEN: &str = "_token";
const TOKEN_INDEX: &str = "_token_index";
const EMPTIED: &str = "_emptied";
const N_EMPTIED: &str = "_n_emptied";
const EMPTIED_AT: &str = "_emptied_at";
const EMPTIED_TOKEN: &str = "_emptied_token";
const N_RAW_WORDS: &str = "_n_raw_words";
/// Prefix of a task's label encoded as one comparable string.
const LABELS: &str = "_labels_";
const KEY: &str = "_key";
const KEPT_ROW: &str = "_kept_row";
const KEPT_ID: &str = "_kept_id";
const KEPT_TEXT: &str = "_kept_text";
const KEPT_LABELS: &str = "_kept_labels_";

/// Everything but letters and digits: removed to build the near-duplicate key.
const NON_ALNUM: &str = r"[^\p{L}\p{N}]";

/// Numeric features of the cleaned text, `feat_*` in the clean table.
pub const FEATURES: [&str; 7] = [
    "feat_mean_word_len",
    "feat_upper_ratio",
    "feat_digit_ratio",
    "feat_punct_ratio",
    "feat_n_urls",
    "feat_n_mentions",
    "feat_n_hashtags",
];

/// A row the rules rejected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dropped {
    pub row: usize,
    pub reason: &'static str,
    /// `None` for conflicting duplicates: the caller writes that detail,
    /// since it needs both rows' labels.
    pub detail: Option<String>,
    /// The row kept in its place, for duplicates.
    pub kept_row: Option<usize>,
}

pub(crate) struct Cleaned {
    pub kept: DataFrame,
    pub dropped: Vec<Dropped>,
}

/// Runs every rule over a table from [`crate::table::rows_table`].
pub(crate) fn clean(
    table: DataFrame,
    tasks: &[&TaskConfig],
    opts: &CleanOptions,
) -> PolarsResult<Cleaned> {
    let checked = check_rows(clean_words(table.lazy(), opts), tasks, opts).collect()?;
    let mut dropped = Vec::new();
    let mut valid = take_dropped(checked, &mut dropped)?;
    if opts.dedup {
        valid = take_dropped(dedup(valid, tasks)?.collect()?, &mut dropped)?;
    }
    // Ids key predictions and splits; a second row with a known id would
    // make both ambiguous.
    let by_id = [col(col::ID)];
    let first = |c: &str| col(c).first().over(by_id.clone());
    let (first_file, first_line, first_row) = (
        first(col::SOURCE_FILE)?,
        first(col::SOURCE_LINE)?,
        first(ROW)?,
    );
    let ided = valid
        .with_columns([
            when(col(col::ID).is_first_distinct())
                .then(null_str())
                .otherwise(lit(reason::DUPLICATE_ID))
                .alias(col::REASON),
            concat_str(
                [
                    lit("id already used at "),
                    first_file,
                    lit(":"),
                    first_line.cast(DataType::String),
                ],
                "",
                false,
            )
            .alias(col::DETAIL),
            first_row.alias(KEPT_ROW),
        ])
        .collect()?;
    let valid = take_dropped(ided, &mut dropped)?;
    dropped.sort_by_key(|d| d.row);

    let kept = with_features(valid)
        .select(output_columns(tasks))
        .collect()?;
    Ok(Cleaned { kept, dropped })
}

/// Cleans each word of the exploded `_raw_words` and puts the non-empty
/// ones back as `words`, with the text, the counts, and where the first
/// emptied word was (a row with token labels cannot lose a word).
///
/// `text` is always the words joined by one space: the word list defines
/// the text, and any other spacing would make `n_chars` and the words
/// disagree.
fn clean_words(rows: LazyFrame, opts: &CleanOptions) -> LazyFrame {
    let non_empty = |c: &str| col(c).str().len_chars().gt(lit(0));
    let words = rows
        .clone()
        .select([col(ROW), col(RAW_WORDS).alias(RAW_TOKEN)])
        .explode(
            cols([RAW_TOKEN]),
            // An empty text still needs its row in the result.
            ExplodeOptions {
                empty_as_null: true,
                keep_nulls: true,
            },
        )
        .with_row_index(TOKEN_INDEX, None)
        .with_column(token_expr(col(RAW_TOKEN), opts).alias(TOKEN))
        .with_column(
            (col(RAW_TOKEN).is_not_null().and(non_empty(TOKEN).not()))
                .fill_null(lit(false))
                .alias(EMPTIED),
        )
        .group_by_stable([col(ROW)])
        .agg([
            col(TOKEN).filter(non_empty(TOKEN)).alias(col::WORDS),
            col(EMPTIED).sum().alias(N_EMPTIED),
            (col(TOKEN_INDEX).filter(col(EMPTIED)).first() - col(TOKEN_INDEX).first())
                .alias(EMPTIED_AT),
            col(RAW_TOKEN)
                .filter(col(EMPTIED))
                .first()
                .alias(EMPTIED_TOKEN),
        ]);
    rows.join(words, [col(ROW)], [col(ROW)], JoinArgs::new(JoinType::Left))
        .sort([ROW], SortMultipleOptions::default())
        .with_columns([
            // Joining the words is the whitespace collapse.
            col(col::WORDS).list().join(lit(" "), true).alias(col::TEXT),
            col(col::WORDS)
                .list()
                .len()
                .cast(DataType::UInt32)
                .alias(col::N_WORDS),
            col(RAW_WORDS)
                .list()
                .len()
                .cast(DataType::UInt32)
                .alias(N_RAW_WORDS),
        ])
        .with_column(
            col(col::TEXT)
                .str()
                .len_chars()
                .cast(DataType::UInt32)
                .alias(col::N_CHARS),
        )
}

/// Adds `reason` and `detail`: the first rule a row breaks, in order.
fn check_rows(rows: LazyFrame, tasks: &[&TaskConfig], opts: &CleanOptions) -> LazyFrame {
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
    rows.with_columns([why.alias(col::REASON), detail.alias(col::DETAIL)])
}

/// Marks every row after the first of its (split, near-duplicate key) group.
/// The key is the text lowercased with everything but letters and digits
/// removed; a text made only of punctuation keys on itself, or every such
/// text would collapse into one.
///
/// A missing label means "not annotated", not a value: two rows conflict
/// only where both carry a label for a task and the labels differ.
fn dedup(rows: LazyFrame, tasks: &[&TaskConfig]) -> PolarsResult<LazyFrame> {
    let norm =
        col(col::TEXT)
            .str()
            .to_lowercase()
            .str()
            .replace_all(lit(NON_ALNUM), lit(""), false);
    let norm = when(norm.clone().str().len_chars().eq(lit(0)))
        .then(concat_str([lit("\u{2}"), col(col::TEXT)], "", false))
        .otherwise(norm);
    let key = concat_str(
        [col(col::SOURCE_SPLIT).fill_null(lit("")), norm],
        "\u{1f}",
        false,
    );
    let group = [col(KEY)];
    let kept = |c: &str| col(c).first().over(group.clone());

    let mut encoded = vec![key.alias(KEY)];
    let mut kept_cols = vec![
        kept(ROW)?.alias(KEPT_ROW),
        kept(col::ID)?.alias(KEPT_ID),
        kept(col::TEXT)?.alias(KEPT_TEXT),
    ];
    let mut identical = lit(true);
    let mut compatible = lit(true);
    let mut one_sided = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let (mine, theirs) = (format!("{LABELS}{i}"), format!("{KEPT_LABELS}{i}"));
        let c = col(col::label(&t.name));
        // Tags compare as one string: equal lists, equal strings.
        encoded.push(
            if t.kind.is_token_level() {
                c.list().join(lit("\u{1}"), false)
            } else {
                c
            }
            .alias(&mine),
        );
        kept_cols.push(kept(&mine)?.alias(&theirs));
        let (a, b) = (col(&mine), col(&theirs));
        identical = identical.and(a.clone().eq_missing(b.clone()));
        compatible = compatible.and(a.clone().eq(b.clone()).fill_null(lit(true)));
        one_sided.push(
            when(a.is_null().neq(b.is_null()))
                .then(lit(format!(" `{}`", t.name)))
                .otherwise(lit("")),
        );
    }
    let note = if one_sided.is_empty() {
        lit("")
    } else {
        when(identical.clone()).then(lit("")).otherwise(concat_str(
            [
                lit(" (labels agree; only one of the two rows has"),
                concat_str(one_sided, "", false),
                lit(")"),
            ],
            "",
            false,
        ))
    };
    let same_text = col(col::TEXT).eq(col(KEPT_TEXT));
    let is_first = col(KEY).is_first_distinct();
    Ok(rows
        .with_columns(encoded)
        .with_columns(kept_cols)
        .with_columns([
            when(is_first.clone())
                .then(null_str())
                .when(same_text.clone().and(compatible.clone()))
                .then(lit(reason::DUPLICATE))
                .when(compatible.clone())
                .then(lit(reason::NEAR_DUPLICATE))
                .otherwise(lit(reason::CONFLICTING_DUPLICATE))
                .alias(col::REASON),
            when(is_first)
                .then(null_str())
                .when(same_text.and(compatible.clone()))
                .then(concat_str(
                    [lit("duplicate of "), col(KEPT_ID), note.clone()],
                    "",
                    false,
                ))
                .when(compatible)
                .then(concat_str(
                    [
                        lit("near-duplicate of "),
                        col(KEPT_ID),
                        lit(": `"),
                        col(KEPT_TEXT),
                        lit("`"),
                        note,
                    ],
                    "",
                    false,
                ))
                .otherwise(null_str())
                .alias(col::DETAIL),
        ]))
}

fn with_features(rows: LazyFrame) -> LazyFrame {
    let f32 = |e: Expr| e.cast(DataType::Float32);
    let chars = || f32(col(col::N_CHARS));
    let count = |pattern: &str| f32(col(col::TEXT).str().count_matches(lit(pattern), false));
    let share = |pattern: &str| count(pattern) / chars();
    // Kept rows have at least one word and one char: no division by zero.
    rows.with_columns([
        ((chars() - f32(col(col::N_WORDS)) + lit(1.0f32)) / f32(col(col::N_WORDS)))
            .alias(FEATURES[0]),
        share(r"\p{Lu}").alias(FEATURES[1]),
        share(r"\p{Nd}").alias(FEATURES[2]),
        share(r"\p{P}").alias(FEATURES[3]),
        // Masked or not: `<url>` and raw URLs both count.
        count(r"<url>|(?i:https?://|www\.)\S+").alias(FEATURES[4]),
        count(r"(?:^|\s)@\w+").alias(FEATURES[5]),
        count(r"(?:^|\s)#\w+").alias(FEATURES[6]),
    ])
}

fn output_columns(tasks: &[&TaskConfig]) -> Vec<Expr> {
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
    out.extend(FEATURES.iter().map(|f| col(*f)));
    out
}

/// Moves the rows that have a `reason` into `dropped`; returns the rest.
fn take_dropped(df: DataFrame, dropped: &mut Vec<Dropped>) -> PolarsResult<LazyFrame> {
    let rejected = df.clone().lazy().filter(col(col::REASON).is_not_null());
    dropped.extend(dropped_rows(rejected)?);
    Ok(df.lazy().filter(col(col::REASON).is_null()))
}

fn dropped_rows(mut rows: LazyFrame) -> PolarsResult<Vec<Dropped>> {
    let has_kept = rows.collect_schema()?.contains(KEPT_ROW);
    let kept = if has_kept {
        col(KEPT_ROW)
    } else {
        lit(Null {}).cast(IDX_DTYPE)
    };
    let df = rows
        .select([
            col(ROW),
            col(col::REASON),
            col(col::DETAIL),
            kept.cast(IDX_DTYPE).alias(KEPT_ROW),
        ])
        .collect()?;
    let rows = df.column(ROW)?.idx()?;
    let reasons = df.column(col::REASON)?.str()?;
    let details = df.column(col::DETAIL)?.str()?;
    let kept = df.column(KEPT_ROW)?.idx()?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let code = reasons.get(i).unwrap_or_default();
        let reason = reason::intern(code)
            .ok_or_else(|| polars_err!(ComputeError: "unknown quarantine reason `{code}`"))?;
        let row = rows
            .get(i)
            .ok_or_else(|| polars_err!(ComputeError: "null row index"))?;
        out.push(Dropped {
            row: row as usize,
            reason,
            detail: details.get(i).map(str::to_string),
            kept_row: kept.get(i).map(|k| k as usize),
        });
    }
    Ok(out)
}

fn null_str() -> Expr {
    lit(Null {}).cast(DataType::String)
}
