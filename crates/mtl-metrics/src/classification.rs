//! Single-label classification scores: accuracy, per-class precision, recall
//! and F1, their macro, micro and weighted averages, and the confusion matrix.
//!
//! Averages follow scikit-learn with `zero_division=0`: macro precision,
//! recall and F1 are means over the classes that occur in gold OR
//! predictions (a vocabulary class that occurs in neither is left out, one
//! that is predicted but never gold counts with recall and F1 0), and
//! weighted-F1 weights each class by its gold support. Macro-recall is
//! TweetEval's sentiment metric (there every class occurs in gold, so it is
//! the plain mean of the three recalls).

use serde::{Deserialize, Serialize};

use super::{MetricError, f1, ratio, same_len};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Gold examples of the class.
    pub support: u64,
    /// Examples predicted as the class.
    pub predicted: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    pub n: u64,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Mean precision over the classes in gold or predictions.
    #[serde(default)]
    pub macro_precision: f64,
    /// Mean recall over the classes in gold or predictions.
    #[serde(default)]
    pub macro_recall: f64,
    pub micro_f1: f64,
    pub weighted_f1: f64,
    /// Every vocabulary class, in id order (absent ones score 0 with support 0).
    pub per_class: Vec<ClassScore>,
    /// `confusion[gold][predicted]`, both in `per_class` order.
    pub confusion: Vec<Vec<u64>>,
}

/// Scores predicted class ids against gold ids; `labels[id]` names each id.
pub fn classification_metrics(
    gold: &[usize],
    pred: &[usize],
    labels: &[String],
) -> Result<ClassificationMetrics, MetricError> {
    same_len("classification", gold.len(), pred.len())?;
    let k = labels.len();
    let mut confusion = vec![vec![0u64; k]; k];
    for (&g, &p) in gold.iter().zip(pred) {
        for id in [g, p] {
            if id >= k {
                return Err(MetricError::UnknownClass { id, n: k });
            }
        }
        confusion[g][p] += 1;
    }
    let a = Averages::of(&confusion);
    let per_class = labels
        .iter()
        .enumerate()
        .map(|(c, label)| ClassScore {
            label: label.clone(),
            precision: a.precision[c],
            recall: a.recall[c],
            f1: a.f1[c],
            support: a.support[c],
            predicted: a.predicted[c],
        })
        .collect();
    Ok(ClassificationMetrics {
        n: a.n,
        accuracy: a.accuracy,
        macro_f1: a.macro_f1,
        macro_precision: a.macro_precision,
        macro_recall: a.macro_recall,
        micro_f1: a.micro_f1,
        weighted_f1: a.weighted_f1,
        per_class,
        confusion,
    })
}

/// Every score of a confusion matrix (`confusion[gold][predicted]`, square),
/// without label names: what [`classification_metrics`] reports, and what
/// the bootstrap recomputes on each resample.
#[derive(Debug, Clone, PartialEq)]
pub struct Averages {
    pub n: u64,
    pub accuracy: f64,
    pub macro_f1: f64,
    pub macro_precision: f64,
    pub macro_recall: f64,
    pub micro_f1: f64,
    pub weighted_f1: f64,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub f1: Vec<f64>,
    pub support: Vec<u64>,
    pub predicted: Vec<u64>,
}

impl Averages {
    pub fn of(confusion: &[Vec<u64>]) -> Averages {
        let k = confusion.len();
        let cell = |g: usize, p: usize| confusion[g].get(p).copied().unwrap_or(0);
        let n: u64 = confusion.iter().flatten().sum();
        let correct: u64 = (0..k).map(|c| cell(c, c)).sum();
        let mut a = Averages {
            n,
            accuracy: ratio(correct, n),
            macro_f1: 0.0,
            macro_precision: 0.0,
            macro_recall: 0.0,
            micro_f1: 0.0,
            weighted_f1: 0.0,
            precision: Vec::with_capacity(k),
            recall: Vec::with_capacity(k),
            f1: Vec::with_capacity(k),
            support: Vec::with_capacity(k),
            predicted: Vec::with_capacity(k),
        };
        let (mut sums, mut present, mut weighted_sum) = ([0.0; 3], 0usize, 0.0);
        for (c, row) in confusion.iter().enumerate() {
            let tp = cell(c, c);
            let support: u64 = row.iter().sum();
            let predicted: u64 = (0..k).map(|g| cell(g, c)).sum();
            let precision = ratio(tp, predicted);
            let recall = ratio(tp, support);
            let score = f1(precision, recall);
            if support > 0 || predicted > 0 {
                sums[0] += precision;
                sums[1] += recall;
                sums[2] += score;
                present += 1;
            }
            weighted_sum += score * support as f64;
            a.precision.push(precision);
            a.recall.push(recall);
            a.f1.push(score);
            a.support.push(support);
            a.predicted.push(predicted);
        }
        let mean = |x: f64| {
            if present == 0 {
                0.0
            } else {
                x / present as f64
            }
        };
        a.macro_precision = mean(sums[0]);
        a.macro_recall = mean(sums[1]);
        a.macro_f1 = mean(sums[2]);
        // Single-label: every error is one false positive and one false
        // negative, so micro precision = micro recall = accuracy.
        a.micro_f1 = f1(a.accuracy, a.accuracy);
        a.weighted_f1 = if n == 0 { 0.0 } else { weighted_sum / n as f64 };
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;

    fn names(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn worked_example_with_an_absent_class() {
        // labels a=0 b=1 c=2 d=3
        // gold: a a a b b c
        // pred: a a b b c c
        // confusion (gold rows, pred cols):  a: [2 1 0 0]  b: [0 1 1 0]  c: [0 0 1 0]  d: 0
        // a: P=2/2=1    R=2/3  F1=2*(2/3)/(5/3)=0.8
        // b: P=1/2      R=1/2  F1=0.5
        // c: P=1/2      R=1/1  F1=2*(1/2)/(3/2)=2/3
        // d: never gold, never predicted -> left out of the macro mean
        // macro   = (0.8 + 0.5 + 2/3) / 3 = 59/90
        // weighted= (3*0.8 + 2*0.5 + 1*2/3) / 6 = 61/90
        // accuracy = micro = 4/6
        let m = classification_metrics(
            &[0, 0, 0, 1, 1, 2],
            &[0, 0, 1, 1, 2, 2],
            &names(&["a", "b", "c", "d"]),
        )
        .unwrap();
        assert_eq!(m.n, 6);
        assert_close(m.accuracy, 4.0 / 6.0);
        assert_close(m.micro_f1, 4.0 / 6.0);
        assert_close(m.macro_f1, 59.0 / 90.0);
        assert_close(m.weighted_f1, 61.0 / 90.0);
        // macro precision = (1 + 1/2 + 1/2) / 3 = 2/3
        // macro recall    = (2/3 + 1/2 + 1) / 3 = 13/18
        assert_close(m.macro_precision, 2.0 / 3.0);
        assert_close(m.macro_recall, 13.0 / 18.0);
        assert_close(m.per_class[0].f1, 0.8);
        assert_close(m.per_class[0].recall, 2.0 / 3.0);
        assert_close(m.per_class[1].precision, 0.5);
        assert_close(m.per_class[2].f1, 2.0 / 3.0);
        assert_eq!(m.per_class[2].support, 1);
        assert_eq!(m.per_class[2].predicted, 2);
        assert_eq!(m.per_class[3].support, 0);
        assert_eq!(
            m.confusion,
            vec![
                vec![2, 1, 0, 0],
                vec![0, 1, 1, 0],
                vec![0, 0, 1, 0],
                vec![0, 0, 0, 0]
            ]
        );
    }

    #[test]
    fn predicted_but_never_gold_class_counts_with_zero() {
        // gold: a a   pred: a b
        // a: P=1 R=1/2 F1=2/3;  b: P=0/1=0, R=0 (no gold) -> F1 0, but b was
        // predicted so it is in the macro mean: (2/3 + 0) / 2 = 1/3 (sklearn: 0.333)
        let m = classification_metrics(&[0, 0], &[0, 1], &names(&["a", "b"])).unwrap();
        assert_close(m.macro_f1, 1.0 / 3.0);
        // recall: a 1/2, b 0 (no gold, predicted) -> 1/4; precision (1 + 0) / 2
        assert_close(m.macro_recall, 0.25);
        assert_close(m.macro_precision, 0.5);
        // weighted by gold support: a has 2, b has 0 -> 2/3
        assert_close(m.weighted_f1, 2.0 / 3.0);
    }

    #[test]
    fn gold_class_never_predicted_has_zero_precision() {
        // gold: a b   pred: a a
        // a: P=1/2 R=1 F1=2/3;  b: no predictions -> P=0 (zero_division=0), R=0, F1=0
        // macro = 1/3; weighted = (1*2/3 + 1*0)/2 = 1/3; accuracy 1/2
        let m = classification_metrics(&[0, 1], &[0, 0], &names(&["a", "b"])).unwrap();
        assert_eq!(m.per_class[1].precision, 0.0);
        assert_close(m.macro_f1, 1.0 / 3.0);
        assert_close(m.weighted_f1, 1.0 / 3.0);
        assert_close(m.accuracy, 0.5);
    }

    #[test]
    fn tweeteval_sentiment_macro_recall() {
        // neg=0 neu=1 pos=2
        // gold: neg neg neu neu neu pos
        // pred: neg neu neu neu pos pos
        // recall: neg 1/2, neu 2/3, pos 1/1 -> macro (1/2 + 2/3 + 1) / 3 = 13/18
        // precision: neg 1/1, neu 2/3, pos 1/2 -> 13/18 as well
        let m = classification_metrics(
            &[0, 0, 1, 1, 1, 2],
            &[0, 1, 1, 1, 2, 2],
            &names(&["neg", "neu", "pos"]),
        )
        .unwrap();
        assert_close(m.macro_recall, 13.0 / 18.0);
        assert_close(m.macro_precision, 13.0 / 18.0);
        assert_close(m.per_class[1].recall, 2.0 / 3.0);
    }

    #[test]
    fn averages_of_a_confusion_matrix_match_the_full_metrics() {
        let m = classification_metrics(
            &[0, 0, 0, 1, 1, 2],
            &[0, 0, 1, 1, 2, 2],
            &names(&["a", "b", "c", "d"]),
        )
        .unwrap();
        let a = Averages::of(&m.confusion);
        assert_eq!(
            (a.n, a.accuracy, a.macro_f1, a.weighted_f1, a.macro_recall),
            (m.n, m.accuracy, m.macro_f1, m.weighted_f1, m.macro_recall)
        );
        assert_eq!(a.f1[2], m.per_class[2].f1);
    }

    #[test]
    fn empty_input_scores_zero_not_nan() {
        let m = classification_metrics(&[], &[], &names(&["a", "b"])).unwrap();
        assert_eq!(
            (m.n, m.accuracy, m.macro_f1, m.micro_f1, m.weighted_f1),
            (0, 0.0, 0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn perfect_predictions_score_one() {
        let m =
            classification_metrics(&[0, 1, 2, 1], &[0, 1, 2, 1], &names(&["a", "b", "c"])).unwrap();
        assert_close(m.accuracy, 1.0);
        assert_close(m.macro_f1, 1.0);
        assert_close(m.weighted_f1, 1.0);
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let err = classification_metrics(&[0], &[0, 1], &names(&["a", "b"])).unwrap_err();
        assert_eq!(
            err,
            MetricError::LengthMismatch {
                what: "classification",
                gold: 1,
                pred: 2
            }
        );
        let err = classification_metrics(&[0], &[5], &names(&["a", "b"])).unwrap_err();
        assert_eq!(err, MetricError::UnknownClass { id: 5, n: 2 });
    }
}
