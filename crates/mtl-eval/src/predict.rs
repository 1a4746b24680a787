//! Running the model over a split in length-sorted batches, with the
//! predictions put back in row order.

use std::collections::BTreeMap;
use std::path::Path;

use mtl_core::TaskKind;
use mtl_model::TaskOutput;

use crate::error::{Error, Result};

/// Predictions of one task, in row order.
#[derive(Debug, Clone, PartialEq)]
pub enum RowPreds {
    /// One label id per row.
    Sentence(Vec<u32>),
    /// Per row, one id per sub-token position of the row.
    Token(Vec<Vec<u32>>),
    /// Per row, the predicted label ids (probability at least the label's
    /// threshold, [`mtl_model::Thresholds`]), ascending.
    Multilabel(Vec<Vec<u32>>),
    /// One value per row, in the target's units.
    Regression(Vec<f32>),
    /// Per row and sub-token position (read at word starts): the head's
    /// position (0 = root) and the relation id.
    Tree {
        head: Vec<Vec<u32>>,
        label: Vec<Vec<u32>>,
    },
}

impl RowPreds {
    /// No rows, of the kind a task of `kind` predicts.
    pub fn empty(kind: TaskKind) -> RowPreds {
        match kind {
            TaskKind::Classification => RowPreds::Sentence(Vec::new()),
            TaskKind::Tagging | TaskKind::Spans => RowPreds::Token(Vec::new()),
            TaskKind::Multilabel => RowPreds::Multilabel(Vec::new()),
            TaskKind::Regression => RowPreds::Regression(Vec::new()),
            TaskKind::Dependency => RowPreds::Tree {
                head: Vec::new(),
                label: Vec::new(),
            },
        }
    }

    fn len(&self) -> usize {
        match self {
            RowPreds::Sentence(v) => v.len(),
            RowPreds::Token(v) | RowPreds::Multilabel(v) => v.len(),
            RowPreds::Regression(v) => v.len(),
            RowPreds::Tree { head, .. } => head.len(),
        }
    }
}

/// Predicts every row. Rows are sorted by length so each batch pads little;
/// `predict` gets the indices and the unpadded rows of one batch and returns
/// each task's output in that batch's order, which is then scattered back to
/// row order. `path` (the split's table) only names the rows in errors.
pub fn predict_rows(
    path: &Path,
    rows: &[Vec<u32>],
    batch_size: usize,
    mut predict: impl FnMut(&[usize], &[&[u32]]) -> Result<BTreeMap<String, TaskOutput>>,
) -> Result<BTreeMap<String, RowPreds>> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rows[i].len());
    let mut out: BTreeMap<String, RowPreds> = BTreeMap::new();
    for chunk in order.chunks(batch_size.max(1)) {
        let batch: Vec<&[u32]> = chunk.iter().map(|&i| rows[i].as_slice()).collect();
        for (task, output) in predict(chunk, &batch)? {
            let (n, kind) = match &output {
                TaskOutput::Sentence { label, .. } => (label.len(), TaskKind::Classification),
                TaskOutput::Token { label, .. } => (label.len(), TaskKind::Tagging),
                TaskOutput::Multilabel { labels, .. } => (labels.len(), TaskKind::Multilabel),
                TaskOutput::Regression { value } => (value.len(), TaskKind::Regression),
                TaskOutput::Tree { head, .. } => (head.len(), TaskKind::Dependency),
            };
            let task_error = |message: String| Error::Task {
                path: path.to_path_buf(),
                task: task.clone(),
                message,
            };
            if n != chunk.len() {
                return Err(task_error(format!(
                    "the model returned {n} predictions for a batch of {} rows",
                    chunk.len()
                )));
            }
            let slot = out.entry(task.clone()).or_insert_with(|| match kind {
                TaskKind::Classification => RowPreds::Sentence(vec![0; rows.len()]),
                TaskKind::Regression => RowPreds::Regression(vec![0.0; rows.len()]),
                TaskKind::Multilabel => RowPreds::Multilabel(vec![Vec::new(); rows.len()]),
                TaskKind::Tagging | TaskKind::Spans => {
                    RowPreds::Token(vec![Vec::new(); rows.len()])
                }
                TaskKind::Dependency => RowPreds::Tree {
                    head: vec![Vec::new(); rows.len()],
                    label: vec![Vec::new(); rows.len()],
                },
            });
            match (slot, output) {
                (RowPreds::Sentence(slot), TaskOutput::Sentence { label, .. }) => {
                    scatter(slot, chunk, label)
                }
                (RowPreds::Token(slot), TaskOutput::Token { label, .. }) => {
                    scatter(slot, chunk, label)
                }
                (RowPreds::Multilabel(slot), TaskOutput::Multilabel { labels, .. }) => {
                    scatter(slot, chunk, labels)
                }
                (RowPreds::Regression(slot), TaskOutput::Regression { value }) => {
                    scatter(slot, chunk, value)
                }
                (
                    RowPreds::Tree { head, label },
                    TaskOutput::Tree {
                        head: h, label: l, ..
                    },
                ) => {
                    scatter(head, chunk, h);
                    scatter(label, chunk, l);
                }
                _ => {
                    return Err(task_error(
                        "the model changed the kind of its output between batches".into(),
                    ));
                }
            }
        }
    }
    debug_assert!(out.values().all(|p| p.len() == rows.len()));
    Ok(out)
}

fn scatter<T>(slot: &mut [T], rows: &[usize], values: Vec<T>) {
    for (&i, v) in rows.iter().zip(values) {
        slot[i] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake model: the sentence label is the row's first id, the token
    /// labels are the ids themselves; it records each batch's lengths.
    fn fake(
        batches: &mut Vec<Vec<usize>>,
    ) -> impl FnMut(&[usize], &[&[u32]]) -> Result<BTreeMap<String, TaskOutput>> + '_ {
        move |idx, rows| {
            assert_eq!(idx.len(), rows.len());
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
            m.insert(
                "m".to_string(),
                TaskOutput::Multilabel {
                    probs: rows.iter().map(|_| vec![0.9, 0.1]).collect(),
                    labels: idx.iter().map(|&i| vec![i as u32]).collect(),
                },
            );
            m.insert(
                "r".to_string(),
                TaskOutput::Regression {
                    value: rows.iter().map(|r| r.len() as f32 / 2.0).collect(),
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
        assert_eq!(
            out["m"],
            RowPreds::Multilabel(vec![vec![0], vec![1], vec![2], vec![3]])
        );
        assert_eq!(out["r"], RowPreds::Regression(vec![2.0, 0.5, 1.5, 1.0]));
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
        let short = |_: &[usize], _: &[&[u32]]| -> Result<BTreeMap<String, TaskOutput>> {
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
