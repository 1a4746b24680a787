//! Building the tokenize tables (schema in [`mtl_core::artifact`]).

use mtl_core::artifact::col;
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
}

/// `id`, `input_ids`, `word_ids`, `n_words`, `length`, one `feat_<name>`
/// f32 column per carried feature, then one `y_<task>` column per task, each
/// in the given order.
pub fn frame(
    ids: &[String],
    encoded: &[Encoded],
    n_words: &[u32],
    features: &[(String, Vec<f32>)],
    targets: &[(String, Targets)],
) -> PolarsResult<DataFrame> {
    let height = ids.len();
    let total: usize = encoded.iter().map(Encoded::len).sum();
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
    for e in encoded {
        input_ids.append_slice(&e.input_ids);
        word_ids.append_slice(&e.word_ids);
    }
    let length: Vec<u32> = encoded.iter().map(|e| e.len() as u32).collect();

    let mut columns: Vec<Column> = vec![
        StringChunked::from_iter_values(col::ID.into(), ids.iter().map(String::as_str))
            .into_column(),
        input_ids.finish().into_column(),
        word_ids.finish().into_column(),
        UInt32Chunked::from_vec(col::N_WORDS.into(), n_words.to_vec()).into_column(),
        UInt32Chunked::from_vec(col::LENGTH.into(), length).into_column(),
    ];
    for (f, values) in features {
        columns
            .push(Float32Chunked::from_vec(col::feature(f).into(), values.clone()).into_column());
    }
    for (task, t) in targets {
        let name = PlSmallStr::from(col::target(task));
        columns.push(match t {
            Targets::Sentence(v) => Int32Chunked::from_vec(name, v.clone()).into_column(),
            Targets::Token(rows) | Targets::Multilabel(rows) => {
                let mut b = ListPrimitiveChunkedBuilder::<Int32Type>::new(
                    name,
                    height,
                    total,
                    DataType::Int32,
                );
                for r in rows {
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
