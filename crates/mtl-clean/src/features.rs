//! The numeric features of a cleaned text ([`FEATURES`], columns
//! `feat_<name>` f32). The stage and inference share [`feature_exprs`], so a
//! model's side inputs at prediction time are computed exactly as the
//! training rows' were.

use std::collections::BTreeMap;

use mtl_core::artifact::{FEATURES, col};
use polars::prelude::*;

use crate::error::{PolarsAt, Result};

/// Every word of a cleaned text: cleaned words never contain whitespace.
const WORD: &str = r"\S+";

/// One expression per feature of [`FEATURES`], in that order, each aliased
/// to its `feat_<name>` column. They read `text`, `n_chars` (u32) and
/// `n_words` (u32), where `text` is the cleaned words joined by one space.
/// An empty text gets 0 for every ratio instead of a division by zero.
pub fn feature_exprs() -> Vec<Expr> {
    let f32 = |e: Expr| e.cast(DataType::Float32);
    let chars = || f32(col(col::N_CHARS));
    let words = || f32(col(col::N_WORDS));
    let per = |num: Expr, den: Expr| {
        when(den.clone().gt(lit(0.0f32)))
            .then(num / den)
            .otherwise(lit(0.0f32))
    };
    let count = |pattern: &str| f32(col(col::TEXT).str().count_matches(lit(pattern), false));
    let share = |pattern: &str| per(count(pattern), chars());
    let exprs = [
        chars(),
        words(),
        // The separating spaces are not part of any word.
        per(chars() - words() + lit(1.0f32), words()),
        share(r"\p{Lu}"),
        share(r"\p{Nd}"),
        share(r"\p{P}"),
        // Masked or not: `<url>` and raw URLs both count.
        count(r"<url>|(?i:https?://|www\.)\S+"),
        count(r"(?:^|\s)@\w+"),
        count(r"(?:^|\s)#\w+"),
    ];
    exprs
        .into_iter()
        .zip(FEATURES)
        .map(|(e, name)| e.alias(col::feature(name)))
        .collect()
}

/// The `feat_<name>` columns of cleaned texts (each the cleaned words
/// joined by one space, as the clean table's `text` and
/// `clean_words(..).join(" ")` are), one row per text.
pub fn features_frame(texts: &[&str]) -> Result<DataFrame> {
    let df = DataFrame::new(
        texts.len(),
        vec![Column::new(col::TEXT.into(), texts.to_vec())],
    )
    .ctx("computing features")?;
    let names: Vec<Expr> = FEATURES.iter().map(|f| col(col::feature(f))).collect();
    df.lazy()
        .with_columns([
            col(col::TEXT)
                .str()
                .len_chars()
                .cast(DataType::UInt32)
                .alias(col::N_CHARS),
            col(col::TEXT)
                .str()
                .count_matches(lit(WORD), false)
                .cast(DataType::UInt32)
                .alias(col::N_WORDS),
        ])
        .with_columns(feature_exprs())
        .select(names)
        .collect()
        .ctx("computing features")
}

/// The features of each cleaned text by feature name (`n_chars`, ...,
/// the names of [`FEATURES`]): the values the clean table holds in
/// `feat_<name>` for the same text.
pub fn features_of(texts: &[&str]) -> Result<Vec<BTreeMap<String, f32>>> {
    let df = features_frame(texts)?;
    let mut out = vec![BTreeMap::new(); texts.len()];
    for name in FEATURES {
        let values = df
            .column(&col::feature(name))
            .and_then(|c| c.f32())
            .ctx("computing features")?;
        for (row, v) in out.iter_mut().zip(values.iter()) {
            row.insert(name.to_string(), v.unwrap_or(0.0));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_of_a_text() {
        let f = features_of(&["Hi @bob see <url> #x 42!", ""]).unwrap();
        let a = &f[0];
        assert_eq!(a.len(), FEATURES.len());
        assert_eq!(a["n_chars"], 24.0);
        assert_eq!(a["n_words"], 6.0);
        assert_eq!(a["mean_word_len"], 19.0 / 6.0);
        assert_eq!(a["upper_ratio"], 1.0 / 24.0);
        assert_eq!(a["digit_ratio"], 2.0 / 24.0);
        // `@`, `<`, `>`, `#`, `!` (`<` and `>` are symbols, not punctuation).
        assert_eq!(a["punct_ratio"], 3.0 / 24.0);
        assert_eq!(
            (a["n_urls"], a["n_mentions"], a["n_hashtags"]),
            (1.0, 1.0, 1.0)
        );
        // An empty text has no division by zero.
        assert!(f[1].values().all(|v| *v == 0.0), "{:?}", f[1]);
    }
}
