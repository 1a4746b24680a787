//! Building the tokenize tables (schema in [`mtl_core::artifact`]).

use mtl_core::artifact::col;
use polars::chunked_array::builder::AnonymousOwnedListBuilder;
use polars::prelude::*;

use crate::encode::Encoded;

/// A task's integer targets for one split.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Label id per row, [`mtl_core::artifact::NO_LABEL`] where missing.
    Sentence(Vec<i32>),
    /// Label id per sub-token, `None` for rows without the task.
    Token(Vec<Option<Vec<i32>>>),
    /// The row's label ids (sorted, distinct; empty = labelled with no
    /// label), `None` for rows without the task.
    Multilabel(Vec<Option<Vec<i32>>>),
    /// The raw target, `None` for rows without the task.
    Regression(Vec<Option<f32>>),
    /// A dependency task's gold heads per sub-token (written as
    /// `h_<task>`, beside the relations in `y_<task>`): at a word's first
    /// sub-token, the position of its head's first sub-token, 0 for the
    /// root; [`mtl_core::artifact::IGNORE_INDEX`] elsewhere.
    Heads(Vec<Option<Vec<i32>>>),
}

/// The rows of one tokenize table: one per window (one per example
/// without windows), with everything that repeats per example already
/// repeated.
pub struct Rows<'a> {
    pub ids: Vec<&'a str>,
    pub encoded: Vec<&'a Encoded>,
    pub n_words: Vec<u32>,
    /// The `window` column, written with `truncation = "window"`.
    pub window: Option<Vec<u32>>,
    /// The `char_ids` column: per row, one id list per word of the example.
    pub char_ids: Option<Vec<&'a [Vec<u32>]>>,
    /// One `feat_<name>` column per carried feature, in order.
    pub features: Vec<(String, Vec<f32>)>,
    /// One `y_<task>` column per task, in order (and an `h_<task>` after
    /// a dependency task's).
    pub targets: Vec<(String, Targets)>,
}

/// `id`, `input_ids`, `word_ids`, `n_words`, `length`, then `window` and
/// `char_ids` when present, one `feat_<name>` f32 column per carried
/// feature, then one `y_<task>` column per task.
pub fn frame(rows: &Rows) -> PolarsResult<DataFrame> {
    let height = rows.ids.len();
    let total: usize = rows.encoded.iter().map(|e| e.len()).sum();
    let mut input_ids = ListPrimitiveChunkedBuilder::<UInt32Type>::new(
        col::INPUT_IDS.into(),
        height,
        total,
        DataType::UInt32,
    );
    let mut word_ids = ListPrimitiveChunkedBuilder::<Int32Type>::new(
        col::WORD_IDS.into(),
        height,
        total,
        DataType::Int32,
    );
    for e in &rows.encoded {
        input_ids.append_slice(&e.input_ids);
        word_ids.append_slice(&e.word_ids);
    }
    let length: Vec<u32> = rows.encoded.iter().map(|e| e.len() as u32).collect();

    let mut columns: Vec<Column> = vec![
        StringChunked::from_iter_values(col::ID.into(), rows.ids.iter().copied()).into_column(),
        input_ids.finish().into_column(),
        word_ids.finish().into_column(),
        UInt32Chunked::from_vec(col::N_WORDS.into(), rows.n_words.clone()).into_column(),
        UInt32Chunked::from_vec(col::LENGTH.into(), length).into_column(),
    ];
    if let Some(window) = &rows.window {
        columns.push(UInt32Chunked::from_vec(col::WINDOW.into(), window.clone()).into_column());
    }
    if let Some(chars) = &rows.char_ids {
        columns.push(char_ids_column(chars)?);
    }
    for (f, values) in &rows.features {
        columns
            .push(Float32Chunked::from_vec(col::feature(f).into(), values.clone()).into_column());
    }
    for (task, t) in &rows.targets {
        let name = PlSmallStr::from(match t {
            Targets::Heads(_) => col::heads(task),
            _ => col::target(task),
        });
        columns.push(match t {
            Targets::Sentence(v) => Int32Chunked::from_vec(name, v.clone()).into_column(),
            Targets::Token(lists) | Targets::Multilabel(lists) | Targets::Heads(lists) => {
                let mut b = ListPrimitiveChunkedBuilder::<Int32Type>::new(
                    name,
                    height,
                    total,
                    DataType::Int32,
                );
                for r in lists {
                    match r {
                        Some(v) => b.append_slice(v),
                        None => b.append_null(),
                    }
                }
                b.finish().into_column()
            }
            Targets::Regression(values) => {
                Float32Chunked::from_iter_options(name, values.iter().copied()).into_column()
            }
        });
    }
    DataFrame::new(height, columns)
}

/// `char_ids` list[list[u32]]: per row, one list per word.
fn char_ids_column(rows: &[&[Vec<u32>]]) -> PolarsResult<Column> {
    let inner = DataType::List(Box::new(DataType::UInt32));
    let mut outer = AnonymousOwnedListBuilder::new(col::CHAR_IDS.into(), rows.len(), Some(inner));
    for words in rows {
        let n: usize = words.iter().map(Vec::len).sum();
        let mut b = ListPrimitiveChunkedBuilder::<UInt32Type>::new(
            "".into(),
            words.len(),
            n,
            DataType::UInt32,
        );
        for w in words.iter() {
            b.append_slice(w);
        }
        outer.append_owned_series(b.finish().into_series())?;
    }
    Ok(outer.finish().into_column())
}
