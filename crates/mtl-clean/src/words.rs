//! Every row's words cleaned one by one ([`crate::text::clean_tokens`], the
//! same cleaning as inference) and put back together: the columns the
//! rules check and the kept table holds.
//!
//! `text` is always the non-empty cleaned words joined by one space: the
//! word list defines the text, and any other spacing would make `n_chars`
//! and the words disagree.

use mtl_core::artifact::col;
use mtl_core::config::CleanOptions;
use polars::prelude::*;

use crate::read::Row;
use crate::text::clean_tokens;

/// Words before cleaning, per row.
pub(crate) const N_RAW_WORDS: &str = "_n_raw_words";
/// Words that cleaning emptied, per row.
pub(crate) const N_EMPTIED: &str = "_n_emptied";
/// Position (0-based) of the first emptied word, if any.
pub(crate) const EMPTIED_AT: &str = "_emptied_at";
/// The first emptied word as it was before cleaning.
pub(crate) const EMPTIED_TOKEN: &str = "_emptied_token";

/// `words` (list of str), `text` (str), `n_words`, `n_chars` (u32) and
/// the `_`-prefixed columns above, one row per row of `rows`.
pub(crate) fn cleaned_columns(rows: &[Row], opts: &CleanOptions) -> PolarsResult<Vec<Column>> {
    let n = rows.len();
    let tokens: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.raw_words.iter().map(String::as_str))
        .collect();
    let cleaned = clean_tokens(&tokens, opts)?;

    let mut words = ListStringChunkedBuilder::new(col::WORDS.into(), n, tokens.len());
    let mut texts = StringChunkedBuilder::new(col::TEXT.into(), n);
    let mut emptied_token = StringChunkedBuilder::new(EMPTIED_TOKEN.into(), n);
    let mut n_words = Vec::with_capacity(n);
    let mut n_chars = Vec::with_capacity(n);
    let mut n_raw = Vec::with_capacity(n);
    let mut n_emptied = Vec::with_capacity(n);
    let mut emptied_at = Vec::with_capacity(n);
    let count = |x: usize| u32::try_from(x).map_err(|_| polars_err!(ComputeError: "{x} words"));
    let mut text = String::new();
    let mut start = 0;
    for row in rows {
        let raw = &row.raw_words;
        let mine = &cleaned[start..start + raw.len()];
        start += raw.len();
        text.clear();
        let mut kept = 0;
        let mut first_emptied = None;
        let mut emptied = 0;
        for (i, w) in mine.iter().enumerate() {
            if w.is_empty() {
                emptied += 1;
                first_emptied.get_or_insert(i);
                continue;
            }
            if kept > 0 {
                text.push(' ');
            }
            text.push_str(w);
            kept += 1;
        }
        words.append_values_iter(mine.iter().map(|w| w.as_ref()).filter(|w| !w.is_empty()));
        texts.append_value(&text);
        n_words.push(count(kept)?);
        n_chars.push(count(text.chars().count())?);
        n_raw.push(count(raw.len())?);
        n_emptied.push(count(emptied)?);
        emptied_at.push(first_emptied.map(count).transpose()?);
        match first_emptied {
            Some(i) => emptied_token.append_value(&raw[i]),
            None => emptied_token.append_null(),
        }
    }
    Ok(vec![
        words.finish().into_column(),
        texts.finish().into_column(),
        Column::new(col::N_WORDS.into(), n_words),
        Column::new(col::N_CHARS.into(), n_chars),
        Column::new(N_RAW_WORDS.into(), n_raw),
        Column::new(N_EMPTIED.into(), n_emptied),
        Column::new(EMPTIED_AT.into(), emptied_at),
        emptied_token.finish().into_column(),
    ])
}
