//! The majority-class baseline: every prediction is the task's most frequent
//! TRAIN label ([`TaskLabels::majority`]), scored on exactly the rows the
//! model is scored on. A model that does not beat it has learned nothing
//! useful. For span tasks the majority tag is normally `O`, which finds no
//! entity, so the baseline entity F1 is 0.

use mtl_core::TaskLabels;

use super::MetricError;
use super::classification::{ClassificationMetrics, classification_metrics};
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::assert_close;
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
}
