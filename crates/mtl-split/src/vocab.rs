//! Label vocabularies, built from the training split only, and the
//! unknown-label policy applied to every split.
//!
//! A label below `split.min_label_count` in train is left out of the
//! vocabulary, so its training rows meet the same policy as an unseen label
//! in dev or test: an error by default, or the `map-to` fallback. The
//! training counts written to `labels.json` are taken after that policy ran,
//! so they describe exactly what the trainer sees.

use std::collections::{BTreeMap, BTreeSet};

use mtl_core::config::{TaskConfig, UnknownLabels};
use mtl_core::task::{TargetStats, TaskKind, TaskLabels};

use crate::cells::Cell;
use crate::error::{Error, Result};

/// The labels of `train` seen at least `min_count` times, sorted by name so
/// ids do not move when frequencies change. A multilabel label counts once
/// per text.
pub fn vocabulary<'a>(
    kind: TaskKind,
    train: impl Iterator<Item = &'a Cell>,
    min_count: usize,
) -> Vec<String> {
    count(kind, train)
        .into_iter()
        .filter(|(_, c)| *c as usize >= min_count.max(1))
        .map(|(l, _)| l)
        .collect()
}

/// How often each label occurs in `cells`: words for token tasks, texts
/// for multilabel (duplicates within a text count once).
fn count<'a>(kind: TaskKind, cells: impl Iterator<Item = &'a Cell>) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for c in cells {
        if kind == TaskKind::Multilabel {
            let distinct: BTreeSet<&String> = c.labels().iter().collect();
            for l in distinct {
                *counts.entry(l.clone()).or_default() += 1;
            }
        } else {
            for l in c.labels() {
                *counts.entry(l.clone()).or_default() += 1;
            }
        }
    }
    counts
}

/// A task's `labels.json` entry from its vocabulary and its (resolved)
/// training labels; class weights are added by [`crate::weights`].
pub fn task_labels<'a>(
    task: &TaskConfig,
    labels: Vec<String>,
    train: impl Iterator<Item = &'a Cell>,
) -> TaskLabels {
    let kind = task.kind;
    let (train_counts, target) = if kind.has_vocab() {
        let counts = count(kind, train);
        let train_counts = labels
            .iter()
            .map(|l| counts.get(l).copied().unwrap_or(0))
            .collect();
        (train_counts, None)
    } else {
        let values: Vec<f64> = train
            .filter_map(|c| match c {
                Cell::Num(v) => Some(*v),
                _ => None,
            })
            .collect();
        (Vec::new(), target_stats(&values))
    };
    TaskLabels {
        kind,
        scheme: (kind == TaskKind::Spans).then_some(task.scheme),
        labels,
        train_counts,
        class_weights: None,
        target,
    }
}

/// Count, mean, population std (1 when the values are all equal), min and
/// max; `None` without values.
pub fn target_stats(values: &[f64]) -> Option<TargetStats> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let std = if var > 0.0 { var.sqrt() } else { 1.0 };
    Some(TargetStats {
        count: values.len() as u64,
        mean,
        std,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    })
}

/// What to do with a label outside the vocabulary.
pub enum Resolution<'a> {
    Known,
    Mapped(&'a str),
    Unknown,
}

pub fn resolve<'a>(
    vocab: &BTreeSet<&str>,
    label: &str,
    policy: &'a UnknownLabels,
) -> Resolution<'a> {
    if vocab.contains(label) {
        return Resolution::Known;
    }
    match policy {
        UnknownLabels::Error => Resolution::Unknown,
        UnknownLabels::MapTo { label } => Resolution::Mapped(label),
    }
}

/// Where a row came from, for error messages: `(source_file, source_line)`.
pub type Origin<'a> = &'a dyn Fn(usize) -> (String, u32);

/// Applies the task's unknown-label policy to every labelled row, in place.
/// `policy_key` is the config key of the policy in force, named when its
/// fallback is not a training label. Multilabel lists drop the duplicates
/// that mapping creates (first occurrence kept). Returns the number of
/// labels mapped in each row.
pub fn apply_policy(
    task: &TaskConfig,
    labels: &[String],
    policy: &UnknownLabels,
    policy_key: &str,
    cells: &mut [Option<Cell>],
    origin: Origin<'_>,
) -> Result<Vec<u64>> {
    let vocab: BTreeSet<&str> = labels.iter().map(String::as_str).collect();
    let fix = |i: usize, l: &str| -> Result<Option<String>> {
        match resolve(&vocab, l, policy) {
            Resolution::Known => Ok(None),
            Resolution::Mapped(to) if vocab.contains(to) => Ok(Some(to.to_string())),
            Resolution::Mapped(to) => Err(Error::BadFallback {
                key: policy_key.to_string(),
                task: task.name.clone(),
                label: to.to_string(),
            }),
            Resolution::Unknown => {
                let (file, line) = origin(i);
                Err(Error::UnknownLabel {
                    file,
                    line,
                    task: task.name.clone(),
                    label: l.to_string(),
                })
            }
        }
    };
    let mut mapped = vec![0; cells.len()];
    for (i, cell) in cells.iter_mut().enumerate() {
        let mut n = 0;
        match cell {
            Some(Cell::One(l)) => {
                if let Some(to) = fix(i, l)? {
                    *l = to;
                    n += 1;
                }
            }
            Some(Cell::Many(ls)) => {
                for l in ls.iter_mut() {
                    if let Some(to) = fix(i, l)? {
                        *l = to;
                        n += 1;
                    }
                }
                if n > 0 && task.kind == TaskKind::Multilabel {
                    let mut seen = BTreeSet::new();
                    ls.retain(|l| seen.insert(l.clone()));
                }
            }
            Some(Cell::Num(_)) | None => {}
        }
        mapped[i] = n;
    }
    Ok(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(kind: &str) -> TaskConfig {
        let toml = format!(
            "[pipeline]\nname = \"p\"\n[[datasets]]\nname = \"d\"\nformat = \"jsonl\"\n\
             files = {{ all = \"d.jsonl\" }}\n[[tasks]]\nname = \"t\"\ndataset = \"d\"\n\
             column = \"c\"\ntype = \"{kind}\"\n"
        );
        mtl_core::PipelineConfig::from_toml_str(&toml, std::path::Path::new("p.toml"))
            .unwrap()
            .tasks[0]
            .clone()
    }

    fn one(l: &str) -> Cell {
        Cell::One(l.to_string())
    }

    fn many(ls: &[&str]) -> Cell {
        Cell::Many(ls.iter().map(|l| l.to_string()).collect())
    }

    #[test]
    fn vocabulary_is_sorted_and_thresholded() {
        let cells: Vec<Cell> = ["b", "a", "b", "c", "b", "a"].map(one).to_vec();
        let v = vocabulary(TaskKind::Classification, cells.iter(), 2);
        assert_eq!(v, vec!["a", "b"]);
        let tl = task_labels(&task("classification"), v, cells.iter());
        assert_eq!(tl.train_counts, vec![2, 3]);
        assert_eq!(tl.majority(), 1);
        assert!(tl.scheme.is_none() && tl.target.is_none());
    }

    #[test]
    fn multilabel_counts_texts_not_occurrences() {
        let cells = [
            many(&["x", "y", "x"]),
            many(&[]),
            many(&["y"]),
            many(&["z"]),
        ];
        let v = vocabulary(TaskKind::Multilabel, cells.iter(), 1);
        assert_eq!(v, vec!["x", "y", "z"]);
        let tl = task_labels(&task("multilabel"), v, cells.iter());
        assert_eq!(tl.train_counts, vec![1, 2, 1]);
        assert_eq!(
            vocabulary(TaskKind::Multilabel, cells.iter(), 2),
            vec!["y".to_string()]
        );
    }

    #[test]
    fn regression_has_target_stats_and_no_vocabulary() {
        let cells = [1.0, 2.0, 3.0, 6.0].map(Cell::Num).to_vec();
        let tl = task_labels(&task("regression"), Vec::new(), cells.iter());
        assert!(tl.labels.is_empty() && tl.train_counts.is_empty());
        let t = tl.target.unwrap();
        assert_eq!((t.count, t.mean, t.min, t.max), (4, 3.0, 1.0, 6.0));
        assert!((t.std - 3.5f64.sqrt()).abs() < 1e-12, "{}", t.std);
        // Constant targets: std 1, so standardizing never divides by zero.
        assert_eq!(target_stats(&[2.0, 2.0]).unwrap().std, 1.0);
        assert!(target_stats(&[]).is_none());
    }

    #[test]
    fn policy_maps_and_deduplicates_multilabel_lists() {
        let labels = vec!["other".to_string(), "x".to_string()];
        let mut cells = vec![Some(many(&["x", "q", "other", "r"])), None];
        let policy = UnknownLabels::MapTo {
            label: "other".into(),
        };
        let origin = |i: usize| ("f".to_string(), i as u32 + 1);
        let mapped = apply_policy(
            &task("multilabel"),
            &labels,
            &policy,
            "split.unknown_labels.label",
            &mut cells,
            &origin,
        )
        .unwrap();
        assert_eq!(cells[0], Some(many(&["x", "other"])));
        assert_eq!(mapped, vec![2, 0]);

        let err = apply_policy(
            &task("multilabel"),
            &labels,
            &UnknownLabels::Error,
            "split.unknown_labels",
            &mut [None, Some(many(&["x", "q"]))],
            &origin,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("f:2: task `t`: label `q`"), "{err}");

        let bad = UnknownLabels::MapTo {
            label: "nope".into(),
        };
        let err = apply_policy(
            &task("classification"),
            &labels,
            &bad,
            "tasks[0].unknown_labels.label",
            &mut [Some(one("q"))],
            &origin,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`tasks[0].unknown_labels.label`") && err.contains("`nope`"));
    }
}
