//! Running the model over a split in length-sorted batches, with the
//! predictions put back in row order.

use std::collections::BTreeMap;
use std::path::Path;

use mtl_model::TaskOutput;

use crate::error::{Error, Result};

/// Predicted label ids of one task, in row order.
#[derive(Debug, Clone, PartialEq)]
pub enum RowPreds {
    Sentence(Vec<u32>),
    /// Per row, one id per sub-token position of the row.
    Token(Vec<Vec<u32>>),
}

/// Predicts every row. Rows are sorted by length so each batch pads little;
/// `predict` gets the unpadded rows of one batch and returns each task's
/// output in that batch's order, which is then scattered back to row order.
/// `path` (the split's table) only names the rows in errors.
pub fn predict_rows(
    path: &Path,
    rows: &[Vec<u32>],
    batch_size: usize,
    mut predict: impl FnMut(&[&[u32]]) -> Result<BTreeMap<String, TaskOutput>>,
) -> Result<BTreeMap<String, RowPreds>> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i].len());
    let mut sentence: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut token: BTreeMap<String, Vec<Vec<u32>>> = BTreeMap::new();
    for chunk in order.chunks(batch_size.max(1)) {
        let batch: Vec<&[u32]> = chunk.iter().map(|&i| rows[i].as_slice()).collect();
        for (task, out) in predict(&batch)? {
            let (n, expected) = match &out {
                TaskOutput::Sentence { label, .. } => (label.len(), chunk.len()),
                TaskOutput::Token { label, .. } => (label.len(), chunk.len()),
            };
            if n != expected {
                return Err(Error::Task {
                    path: path.to_path_buf(),
                    task,
                    message: format!(
                        "the model returned {n} predictions for a batch of {expected} rows"
                    ),
                });
            }
            match out {
                TaskOutput::Sentence { label, .. } => {
                    let slot = sentence.entry(task).or_insert_with(|| vec![0; rows.len()]);
                    for (&i, l) in chunk.iter().zip(label) {
                        slot[i] = l;
                    }
                }
                TaskOutput::Token { label, .. } => {
                    let slot = token
                        .entry(task)
                        .or_insert_with(|| vec![Vec::new(); rows.len()]);
                    for (&i, l) in chunk.iter().zip(label) {
                        slot[i] = l;
                    }
                }
            }
        }
    }
    let mut out: BTreeMap<String, RowPreds> = sentence
        .into_iter()
        .map(|(k, v)| (k, RowPreds::Sentence(v)))
        .collect();
    out.extend(token.into_iter().map(|(k, v)| (k, RowPreds::Token(v))));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake model: the sentence label is the row's first id, the token
    /// labels are the ids themselves; it records each batch's lengths.
    fn fake(
        batches: &mut Vec<Vec<usize>>,
    ) -> impl FnMut(&[&[u32]]) -> Result<BTreeMap<String, TaskOutput>> + '_ {
        move |rows| {
            batches.push(rows.iter().map(|r| r.len()).collect());
            let mut m = BTreeMap::new();
            m.insert(
                "s".to_string(),
                TaskOutput::Sentence {
                    label: rows.iter().map(|r| r[0]).collect(),
                    prob: vec![1.0; rows.len()],
                },
            );
            m.insert(
                "t".to_string(),
                TaskOutput::Token {
                    label: rows.iter().map(|r| r.to_vec()).collect(),
                    prob: rows.iter().map(|r| vec![1.0; r.len()]).collect(),
                },
            );
            Ok(m)
        }
    }

    #[test]
    fn batches_by_length_and_restores_row_order() {
        let rows = vec![vec![1, 1, 1, 1], vec![2], vec![3, 3, 3], vec![4, 4]];
        let mut batches = Vec::new();
        let out = predict_rows(Path::new("dev.parquet"), &rows, 2, fake(&mut batches)).unwrap();
        assert_eq!(batches, vec![vec![1, 2], vec![3, 4]], "sorted by length");
        assert_eq!(out["s"], RowPreds::Sentence(vec![1, 2, 3, 4]));
        assert_eq!(out["t"], RowPreds::Token(rows.clone()));
    }

    #[test]
    fn zero_batch_size_still_makes_progress() {
        let rows = vec![vec![5], vec![6]];
        let mut batches = Vec::new();
        let out = predict_rows(Path::new("dev.parquet"), &rows, 0, fake(&mut batches)).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(out["s"], RowPreds::Sentence(vec![5, 6]));
    }

    #[test]
    fn short_model_output_is_an_error() {
        let short = |_: &[&[u32]]| -> Result<BTreeMap<String, TaskOutput>> {
            let mut m = BTreeMap::new();
            m.insert(
                "s".to_string(),
                TaskOutput::Sentence {
                    label: vec![0],
                    prob: vec![1.0],
                },
            );
            Ok(m)
        };
        let err = predict_rows(Path::new("dev.parquet"), &[vec![1], vec![2]], 4, short)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dev.parquet") && err.contains("`s`") && err.contains("1 predictions"),
            "{err}"
        );
    }
}
