//! Label vocabularies, built from the training split only.

use std::collections::BTreeMap;

use mtl_core::config::UnknownLabels;
use mtl_core::task::{SpanScheme, TaskKind, TaskLabels};

/// Counts labels in train and keeps those seen at least `min_count` times,
/// sorted by name so ids do not move when frequencies change.
pub fn build(
    kind: TaskKind,
    scheme: SpanScheme,
    train_labels: impl Iterator<Item = String>,
    min_count: usize,
) -> TaskLabels {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for l in train_labels {
        *counts.entry(l).or_default() += 1;
    }
    counts.retain(|_, c| *c as usize >= min_count.max(1));
    TaskLabels {
        kind,
        scheme: (kind == TaskKind::Spans).then_some(scheme),
        labels: counts.keys().cloned().collect(),
        train_counts: counts.values().copied().collect(),
        class_weights: None,
        target: None,
    }
}

/// What to do with a label outside the vocabulary.
pub enum Resolution<'a> {
    Known,
    Mapped(&'a str),
    Unknown,
}

pub fn resolve<'a>(vocab: &TaskLabels, label: &str, policy: &'a UnknownLabels) -> Resolution<'a> {
    if vocab.id(label).is_some() {
        return Resolution::Known;
    }
    match policy {
        UnknownLabels::Error => Resolution::Unknown,
        UnknownLabels::MapTo { label } => Resolution::Mapped(label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_is_sorted_and_thresholded() {
        let labels = ["b", "a", "b", "c", "b", "a"].map(String::from);
        let v = build(
            TaskKind::Classification,
            SpanScheme::Bio,
            labels.into_iter(),
            2,
        );
        assert_eq!(v.labels, vec!["a", "b"]);
        assert_eq!(v.train_counts, vec![2, 3]);
        assert_eq!(v.majority(), 1);
        assert!(v.scheme.is_none());
    }

    #[test]
    fn unknown_labels_follow_the_policy() {
        let v = build(
            TaskKind::Classification,
            SpanScheme::Bio,
            ["x".to_string()].into_iter(),
            1,
        );
        assert!(matches!(
            resolve(&v, "x", &UnknownLabels::Error),
            Resolution::Known
        ));
        assert!(matches!(
            resolve(&v, "y", &UnknownLabels::Error),
            Resolution::Unknown
        ));
        let p = UnknownLabels::MapTo { label: "x".into() };
        assert!(matches!(resolve(&v, "y", &p), Resolution::Mapped("x")));
    }
}
