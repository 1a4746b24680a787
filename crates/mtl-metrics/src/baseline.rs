//! The majority-class baseline: every prediction is the task's most frequent
//! TRAIN label ([`TaskLabels::majority`]), scored on exactly the rows the
//! model is scored on. A model that does not beat it has learned nothing
//! useful. For span tasks the majority tag is normally `O`, which finds no
//! entity, so the baseline entity F1 is 0.
//!
//! The other kinds get the same idea in their own terms: a multilabel task
//! predicts one fixed label set for every text ([`multilabel_set`]), a
//! regression task predicts the training mean for every text.

use mtl_core::TaskLabels;

use super::MetricError;
use super::classification::{ClassificationMetrics, classification_metrics};
use super::multilabel::{MultilabelMetrics, multilabel_metrics};
use super::regression::{RegressionMetrics, regression_metrics};
use super::spans::{SpanMetrics, span_metrics};
use super::tagging::{TaggingMetrics, word_accuracy};

/// Classification scores of predicting the majority label for every row.
pub fn classification(
    gold: &[usize],
    labels: &TaskLabels,
) -> Result<ClassificationMetrics, MetricError> {
    let pred = vec![labels.majority(); gold.len()];
    classification_metrics(gold, &pred, &labels.labels)
}

/// Word accuracy of tagging every word with the majority tag.
pub fn tagging(gold: &[usize], labels: &TaskLabels) -> Result<TaggingMetrics, MetricError> {
    let pred = vec![labels.majority(); gold.len()];
    word_accuracy(gold, &pred)
}

/// Entity scores of tagging every word of every sentence with the majority tag.
pub fn spans<S: AsRef<str>>(
    gold: &[Vec<S>],
    labels: &TaskLabels,
) -> Result<SpanMetrics, MetricError> {
    let tag = labels
        .labels
        .get(labels.majority())
        .map_or("O", String::as_str);
    let pred: Vec<Vec<&str>> = gold.iter().map(|s| vec![tag; s.len()]).collect();
    span_metrics(gold, &pred)
}

/// The label set a multilabel baseline predicts for every text: each label
/// carried by at least half of the labelled training texts (for hamming
/// loss the best constant prediction), else the single most frequent one,
/// so that the baseline is not trivially empty. `train_texts` is the number
/// of labelled training texts, which `labels.json` does not record (its
/// `train_counts` count texts per label); with none, only the fallback
/// applies. An empty vocabulary predicts nothing.
pub fn multilabel_set(labels: &TaskLabels, train_texts: u64) -> Vec<usize> {
    let frequent: Vec<usize> = labels
        .train_counts
        .iter()
        .enumerate()
        .filter(|&(_, &c)| train_texts > 0 && c > 0 && 2 * c >= train_texts)
        .map(|(id, _)| id)
        .filter(|&id| id < labels.len())
        .collect();
    if !frequent.is_empty() || labels.is_empty() {
        return frequent;
    }
    vec![labels.majority()]
}

/// Multilabel scores of predicting `set` (see [`multilabel_set`]) for every
/// text.
pub fn multilabel(
    gold: &[Vec<usize>],
    set: &[usize],
    labels: &TaskLabels,
) -> Result<MultilabelMetrics, MetricError> {
    let pred = vec![set.to_vec(); gold.len()];
    multilabel_metrics(gold, &pred, &labels.labels)
}

/// Regression scores of predicting `mean` (the training mean) for every
/// text: correlations 0 (a constant), RMSE and MAE of the mean.
pub fn regression(gold: &[f64], mean: f64) -> Result<RegressionMetrics, MetricError> {
    regression_metrics(gold, &vec![mean; gold.len()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use mtl_core::TaskKind;

    fn labels(kind: TaskKind, names: &[&str], counts: &[u64]) -> TaskLabels {
        TaskLabels {
            kind,
            scheme: None,
            labels: names.iter().map(|s| s.to_string()).collect(),
            train_counts: counts.to_vec(),
            class_weights: None,
            target: None,
        }
    }

    #[test]
    fn classification_predicts_the_train_majority() {
        // train counts pos=5 neg=10 neu=2 -> always `neg` (id 1)
        // gold: pos neg neg neu
        // neg: P = 2/4, R = 2/2, F1 = 2/3;  pos, neu: gold but never predicted -> 0
        // macro = (0 + 2/3 + 0) / 3 = 2/9; accuracy = 2/4
        let l = labels(
            TaskKind::Classification,
            &["pos", "neg", "neu"],
            &[5, 10, 2],
        );
        let m = classification(&[0, 1, 1, 2], &l).unwrap();
        assert_close(m.macro_f1, 2.0 / 9.0);
        assert_close(m.accuracy, 0.5);
        assert_eq!(m.per_class[1].predicted, 4);
    }

    #[test]
    fn majority_comes_from_train_not_from_the_scored_rows() {
        // The scored rows are all `pos`, but train's majority is `neg`: 0.
        let l = labels(TaskKind::Classification, &["pos", "neg"], &[1, 9]);
        let m = classification(&[0, 0, 0], &l).unwrap();
        assert_eq!(m.accuracy, 0.0);
        assert_eq!(m.macro_f1, 0.0);
    }

    #[test]
    fn tagging_majority_accuracy() {
        // counts N=3 V=7 -> always V; gold N V V -> 2/3
        let l = labels(TaskKind::Tagging, &["N", "V"], &[3, 7]);
        assert_close(tagging(&[0, 1, 1], &l).unwrap().accuracy, 2.0 / 3.0);
    }

    #[test]
    fn span_majority_is_o_and_scores_zero() {
        let l = labels(TaskKind::Spans, &["O", "B-PER", "I-PER"], &[100, 5, 3]);
        let gold = vec![vec!["B-PER", "I-PER", "O"], vec!["O"]];
        let m = spans(&gold, &l).unwrap();
        assert_eq!(
            (m.predicted_entities, m.gold_entities, m.entity_f1),
            (0, 1, 0.0)
        );
    }

    #[test]
    fn multilabel_baseline_takes_labels_of_at_least_half_the_texts() {
        // 10 labelled train texts: a on 6, b on 5, c on 2 -> {a, b}.
        let l = labels(TaskKind::Multilabel, &["a", "b", "c"], &[6, 5, 2]);
        assert_eq!(multilabel_set(&l, 10), vec![0, 1]);
        // 11 texts: b on 5 is under half -> {a}.
        assert_eq!(multilabel_set(&l, 11), vec![0]);
        // 20 texts: nobody reaches half -> the most frequent alone.
        assert_eq!(multilabel_set(&l, 20), vec![0]);
        // Unknown text count: the fallback.
        assert_eq!(multilabel_set(&l, 0), vec![0]);
        let empty = labels(TaskKind::Multilabel, &[], &[]);
        assert_eq!(multilabel_set(&empty, 5), Vec::<usize>::new());
    }

    #[test]
    fn multilabel_baseline_scores_the_fixed_set() {
        // Always {a}; gold {a,b} {} {a} -> tp 2, predicted 3, gold 3:
        // micro P = R = F1 = 2/3; subset accuracy 1/3 ({a} = {a} only).
        let l = labels(TaskKind::Multilabel, &["a", "b"], &[6, 1]);
        let m = multilabel(&[vec![0, 1], vec![], vec![0]], &[0], &l).unwrap();
        assert_close(m.micro_f1, 2.0 / 3.0);
        assert_close(m.subset_accuracy, 1.0 / 3.0);
    }

    #[test]
    fn regression_baseline_predicts_the_train_mean() {
        // mean 2; gold 1 2 6 -> errors 1 0 4: MAE 5/3, RMSE sqrt(17/3).
        let m = regression(&[1.0, 2.0, 6.0], 2.0).unwrap();
        assert_eq!((m.pearson, m.spearman), (0.0, 0.0));
        assert_close(m.mae, 5.0 / 3.0);
        assert_close(m.rmse, (17.0f64 / 3.0).sqrt());
    }
}
