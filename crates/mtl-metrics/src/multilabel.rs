//! Multilabel scores: each text carries a set of labels (possibly empty) and
//! the model predicts a set.
//!
//! - **micro-F1** (the headline): true positives, false positives and false
//!   negatives summed over every (text, label) pair, then F1.
//! - **macro-F1**: the mean of per-label F1 over the labels that occur in
//!   gold OR predictions, as [`super::classification`] does. (scikit-learn
//!   on an indicator matrix would also average in labels that occur in
//!   neither, each with F1 0.)
//! - **samples-F1** (example-based): the mean over texts of
//!   `2 |G ∩ P| / (|G| + |P|)`. A text with no gold and no predicted label
//!   scores 1, because the empty prediction is exactly right (subset
//!   accuracy counts it as right too); scikit-learn's `zero_division=0`
//!   would score it 0.
//! - **subset accuracy**: the share of texts whose predicted set equals the
//!   gold set.
//! - **hamming loss**: the share of (text, label) pairs predicted wrongly,
//!   over every vocabulary label. Lower is better.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{MetricError, f1, ratio, same_len};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Texts whose gold set holds the label.
    pub support: u64,
    /// Texts predicted to hold the label.
    pub predicted: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultilabelMetrics {
    /// Texts scored.
    pub n: u64,
    pub micro_precision: f64,
    pub micro_recall: f64,
    pub micro_f1: f64,
    pub macro_f1: f64,
    pub samples_f1: f64,
    pub subset_accuracy: f64,
    pub hamming_loss: f64,
    /// Every vocabulary label, in id order.
    pub per_label: Vec<LabelScore>,
}

/// Distinct ids of one set, checked against the vocabulary size.
fn id_set(ids: &[usize], k: usize) -> Result<BTreeSet<usize>, MetricError> {
    ids.iter()
        .map(|&id| {
            if id < k {
                Ok(id)
            } else {
                Err(MetricError::UnknownClass { id, n: k })
            }
        })
        .collect()
}

/// Scores predicted label sets against gold sets, one per text;
/// `labels[id]` names each id. Repeated ids in a set count once.
pub fn multilabel_metrics(
    gold: &[Vec<usize>],
    pred: &[Vec<usize>],
    labels: &[String],
) -> Result<MultilabelMetrics, MetricError> {
    same_len("multilabel", gold.len(), pred.len())?;
    let k = labels.len();
    // Per label: texts where it is gold and predicted, gold, predicted.
    let (mut tp, mut support, mut predicted) = (vec![0u64; k], vec![0u64; k], vec![0u64; k]);
    let (mut exact, mut samples_sum, mut wrong_pairs) = (0u64, 0.0, 0u64);
    for (g, p) in gold.iter().zip(pred) {
        let g = id_set(g, k)?;
        let p = id_set(p, k)?;
        let hits = g.intersection(&p).count() as u64;
        for &id in &g {
            support[id] += 1;
        }
        for &id in &p {
            predicted[id] += 1;
        }
        for &id in g.intersection(&p) {
            tp[id] += 1;
        }
        if g == p {
            exact += 1;
        }
        let sizes = (g.len() + p.len()) as u64;
        samples_sum += if sizes == 0 {
            1.0
        } else {
            ratio(2 * hits, sizes)
        };
        wrong_pairs += g.symmetric_difference(&p).count() as u64;
    }

    let n = gold.len() as u64;
    let mut per_label = Vec::with_capacity(k);
    let (mut macro_sum, mut present) = (0.0, 0usize);
    for (id, label) in labels.iter().enumerate() {
        let precision = ratio(tp[id], predicted[id]);
        let recall = ratio(tp[id], support[id]);
        let score = f1(precision, recall);
        if support[id] > 0 || predicted[id] > 0 {
            macro_sum += score;
            present += 1;
        }
        per_label.push(LabelScore {
            label: label.clone(),
            precision,
            recall,
            f1: score,
            support: support[id],
            predicted: predicted[id],
        });
    }
    let total_tp: u64 = tp.iter().sum();
    let micro_precision = ratio(total_tp, predicted.iter().sum());
    let micro_recall = ratio(total_tp, support.iter().sum());
    Ok(MultilabelMetrics {
        n,
        micro_precision,
        micro_recall,
        micro_f1: f1(micro_precision, micro_recall),
        macro_f1: if present == 0 {
            0.0
        } else {
            macro_sum / present as f64
        },
        samples_f1: if n == 0 { 0.0 } else { samples_sum / n as f64 },
        subset_accuracy: ratio(exact, n),
        hamming_loss: ratio(wrong_pairs, n * k as u64),
        per_label,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;

    fn names(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn worked_example() {
        // labels a=0 b=1 c=2 d=3
        // text  gold     pred
        //  1    {a,b}    {a}       hits 1, F1 = 2/3, symdiff 1
        //  2    {c}      {b,c}     hits 1, F1 = 2/3, symdiff 1
        //  3    {}       {}        empty = empty: F1 1, exact
        //  4    {a}      {a}       F1 1, exact
        // per label: a tp 2 gold 2 pred 2 -> F1 1
        //            b tp 0 gold 1 pred 1 -> 0
        //            c tp 1 gold 1 pred 1 -> 1
        //            d never seen          -> out of the macro mean
        // micro: tp 3, predicted 4, gold 4 -> P = R = F1 = 3/4
        // macro = (1 + 0 + 1) / 3 = 2/3
        // samples = (2/3 + 2/3 + 1 + 1) / 4 = 5/6
        // subset accuracy = 2/4; hamming = 2 wrong pairs / (4 texts * 4 labels) = 1/8
        let gold = vec![vec![0, 1], vec![2], vec![], vec![0]];
        let pred = vec![vec![0], vec![1, 2], vec![], vec![0]];
        let m = multilabel_metrics(&gold, &pred, &names(&["a", "b", "c", "d"])).unwrap();
        assert_eq!(m.n, 4);
        assert_close(m.micro_precision, 0.75);
        assert_close(m.micro_recall, 0.75);
        assert_close(m.micro_f1, 0.75);
        assert_close(m.macro_f1, 2.0 / 3.0);
        assert_close(m.samples_f1, 5.0 / 6.0);
        assert_close(m.subset_accuracy, 0.5);
        assert_close(m.hamming_loss, 0.125);
        assert_close(m.per_label[0].f1, 1.0);
        assert_eq!((m.per_label[0].support, m.per_label[0].predicted), (2, 2));
        assert_eq!((m.per_label[1].support, m.per_label[1].predicted), (1, 1));
        assert_eq!(m.per_label[1].f1, 0.0);
        assert_close(m.per_label[2].f1, 1.0);
        assert_eq!((m.per_label[3].support, m.per_label[3].predicted), (0, 0));
    }

    #[test]
    fn micro_differs_from_macro_when_labels_are_unbalanced() {
        // gold {a} {a} {a} {b}; pred {a} {a} {a} {}
        // micro: tp 3, pred 3, gold 4 -> P 1, R 3/4, F1 6/7
        // macro: a F1 1, b F1 0 -> 1/2
        // samples: 1 1 1 and 0 (gold {b}, pred {}) -> 3/4
        let gold = vec![vec![0], vec![0], vec![0], vec![1]];
        let pred = vec![vec![0], vec![0], vec![0], vec![]];
        let m = multilabel_metrics(&gold, &pred, &names(&["a", "b"])).unwrap();
        assert_close(m.micro_f1, 6.0 / 7.0);
        assert_close(m.macro_f1, 0.5);
        assert_close(m.samples_f1, 0.75);
        assert_close(m.hamming_loss, 1.0 / 8.0);
    }

    #[test]
    fn repeated_ids_count_once() {
        let m = multilabel_metrics(&[vec![0, 0]], &[vec![0]], &names(&["a"])).unwrap();
        assert_close(m.micro_f1, 1.0);
        assert_eq!(m.subset_accuracy, 1.0);
    }

    #[test]
    fn nothing_to_score_is_zero_not_nan() {
        let m = multilabel_metrics(&[], &[], &names(&["a"])).unwrap();
        assert_eq!(
            (m.micro_f1, m.macro_f1, m.samples_f1, m.hamming_loss),
            (0.0, 0.0, 0.0, 0.0)
        );
        // Only empty sets: micro and macro are undefined (0), the texts are right.
        let m = multilabel_metrics(&[vec![]], &[vec![]], &names(&["a"])).unwrap();
        assert_eq!((m.micro_f1, m.macro_f1), (0.0, 0.0));
        assert_eq!(
            (m.samples_f1, m.subset_accuracy, m.hamming_loss),
            (1.0, 1.0, 0.0)
        );
    }

    #[test]
    fn misuse_is_an_error() {
        let l = names(&["a", "b"]);
        assert_eq!(
            multilabel_metrics(&[vec![0]], &[], &l).unwrap_err(),
            MetricError::LengthMismatch {
                what: "multilabel",
                gold: 1,
                pred: 0
            }
        );
        assert_eq!(
            multilabel_metrics(&[vec![0]], &[vec![2]], &l).unwrap_err(),
            MetricError::UnknownClass { id: 2, n: 2 }
        );
    }
}
