//! Per-label decision thresholds of the multilabel heads, tuned on dev once
//! training has chosen its weights, and stored in the bundle
//! (`thresholds.json`, [`mtl_model::Thresholds`]) so that eval and predict
//! apply them.
//!
//! The rule, for each label of each multilabel task, over the dev rows that
//! carry the task:
//!
//! - candidates are the grid 0.05, 0.10, …, 0.95 (a label is predicted
//!   when its probability is at least the threshold, as in decoding);
//! - the threshold with the highest F1 of that label on dev wins;
//! - among equal F1s, the one closest to 0.5, then the lower one;
//! - a label with no positive row on dev keeps 0.5 (its F1 cannot be
//!   raised above 0, so any threshold would be a guess).
//!
//! A coarse grid rather than every midpoint of the dev probabilities: on a
//! small dev set the midpoints fit the noise (a threshold of 0.4973 that
//! catches one more row), and the grid contains 0.5, so a label is never
//! worse on dev than with the default.

use std::collections::BTreeMap;

use candle_core::Device;
use mtl_core::{FeatureSet, LabelSet, TaskKind};
use mtl_metrics::headline::{Examples, Headline};
use mtl_model::{MultiTaskModel, TaskOutput, Thresholds};
use serde::Serialize;

use crate::data::{Example, RowTarget};
use crate::error::Result;

/// Grid steps: candidate `k` is `k / STEPS`.
const STEPS: u32 = 20;

/// The default threshold as a grid step.
const HALF: u32 = STEPS / 2;

/// The candidates, as grid steps: 0.05 … 0.95.
const CANDIDATES: std::ops::RangeInclusive<u32> = 1..=STEPS - 1;

/// One task's labelled dev rows: gold label ids and predicted
/// probabilities (id order), row by row.
#[derive(Debug, Default, Clone)]
pub struct DevRows {
    pub gold: Vec<Vec<u32>>,
    pub probs: Vec<Vec<f32>>,
}

/// Micro- and macro-F1 of a multilabel task on dev, as eval computes them
/// (macro: the mean over labels that are gold or predicted somewhere).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DevF1 {
    pub micro_f1: f64,
    pub macro_f1: f64,
}

/// What tuning did for one task, for `train/report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct TaskThresholds {
    /// Dev rows carrying the task.
    pub dev_rows: usize,
    /// Per label name, its threshold.
    pub thresholds: BTreeMap<String, f32>,
    /// Labels without a positive dev row, which kept 0.5.
    pub untuned: Vec<String>,
    /// Dev F1s at 0.5 for every label, and with the tuned thresholds.
    pub dev_before: DevF1,
    pub dev_after: DevF1,
}

/// Counts of one label at one threshold.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

impl Counts {
    /// F1 as the fraction `(2 tp, 2 tp + fp + fn)`, compared exactly.
    fn f1_fraction(self) -> (u64, u64) {
        (2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn counts(rows: &DevRows, label: usize, threshold: f32) -> Counts {
    let mut c = Counts::default();
    for (gold, probs) in rows.gold.iter().zip(&rows.probs) {
        let is_gold = gold.contains(&(label as u32));
        let predicted = probs[label] >= threshold;
        match (is_gold, predicted) {
            (true, true) => c.tp += 1,
            (false, true) => c.fp += 1,
            (true, false) => c.fn_ += 1,
            (false, false) => {}
        }
    }
    c
}

fn grid(k: u32) -> f32 {
    k as f32 / STEPS as f32
}

/// Each label's threshold under the module's rule, and whether it was
/// tuned (`false`: no positive on dev, kept 0.5).
pub fn choose(rows: &DevRows, n_labels: usize) -> Vec<(f32, bool)> {
    (0..n_labels)
        .map(|label| {
            let positives = rows
                .gold
                .iter()
                .filter(|g| g.contains(&(label as u32)))
                .count();
            if positives == 0 {
                return (mtl_model::MULTILABEL_THRESHOLD, false);
            }
            let mut best: Option<(u32, (u64, u64))> = None;
            for k in CANDIDATES {
                let f = counts(rows, label, grid(k)).f1_fraction();
                let better = match best {
                    None => true,
                    Some((bk, bf)) => {
                        // f > bf, exactly: n / d > bn / bd.
                        let (lhs, rhs) = (f.0 * bf.1, bf.0 * f.1);
                        lhs > rhs || (lhs == rhs && k.abs_diff(HALF) < bk.abs_diff(HALF))
                    }
                };
                if better {
                    best = Some((k, f));
                }
            }
            let (k, _) = best.expect("the grid is not empty");
            (grid(k), true)
        })
        .collect()
}

/// Micro- and macro-F1 of `rows` with one threshold per label, computed
/// by `mtl-metrics` as eval computes them.
pub fn dev_f1(rows: &DevRows, thresholds: &[f32]) -> DevF1 {
    let gold: Vec<Vec<usize>> = rows
        .gold
        .iter()
        .map(|g| g.iter().map(|&l| l as usize).collect())
        .collect();
    let pred: Vec<Vec<usize>> = rows
        .probs
        .iter()
        .map(|p| {
            (0..thresholds.len())
                .filter(|&l| p.get(l).is_some_and(|&v| v >= thresholds[l]))
                .collect()
        })
        .collect();
    let examples = Examples::sets(&gold, &pred, thresholds.len());
    DevF1 {
        micro_f1: examples.score(&Headline::MicroF1),
        macro_f1: examples.score(&Headline::MacroF1),
    }
}

/// Every multilabel task's dev rows with `model`'s probabilities.
pub fn dev_rows(
    model: &MultiTaskModel,
    features: &FeatureSet,
    dev: &[Example],
    batch_size: usize,
    pad_to: Option<usize>,
    device: &Device,
) -> Result<BTreeMap<String, DevRows>> {
    let tasks: Vec<&str> = model
        .spec
        .tasks
        .iter()
        .filter(|h| h.kind == TaskKind::Multilabel)
        .map(|h| h.name.as_str())
        .collect();
    let mut out: BTreeMap<String, DevRows> = tasks
        .iter()
        .map(|t| (t.to_string(), DevRows::default()))
        .collect();
    let carrying: Vec<usize> = (0..dev.len())
        .filter(|&i| tasks.iter().any(|t| dev[i].targets.contains_key(*t)))
        .collect();
    for chunk in carrying.chunks(batch_size.max(1)) {
        let batch = crate::batching::batch_rows(dev, chunk, features, pad_to, device)?;
        for (task, pred) in mtl_model::bundle::predict(model, &batch)? {
            let (Some(rows), TaskOutput::Multilabel { probs, .. }) = (out.get_mut(&task), pred)
            else {
                continue;
            };
            for (&i, p) in chunk.iter().zip(probs) {
                if let Some(RowTarget::Multilabel(gold)) = dev[i].targets.get(&task) {
                    rows.gold.push(gold.clone());
                    rows.probs.push(p);
                }
            }
        }
    }
    Ok(out)
}

/// Tunes every multilabel task of `model` on `dev`: the thresholds for the
/// bundle and, per task, what `train/report.json` records.
pub fn tune(
    model: &MultiTaskModel,
    features: &FeatureSet,
    labels: &LabelSet,
    dev: &[Example],
    pad_to: Option<usize>,
    device: &Device,
) -> Result<(Thresholds, BTreeMap<String, TaskThresholds>)> {
    let mut thresholds = Thresholds::default();
    let mut report = BTreeMap::new();
    for (task, rows) in dev_rows(model, features, dev, 64, pad_to, device)? {
        let names = &labels.get(&task)?.labels;
        let chosen = choose(&rows, names.len());
        let values: Vec<f32> = chosen.iter().map(|c| c.0).collect();
        report.insert(
            task.clone(),
            TaskThresholds {
                dev_rows: rows.gold.len(),
                thresholds: names.iter().cloned().zip(values.iter().copied()).collect(),
                untuned: names
                    .iter()
                    .zip(&chosen)
                    .filter(|(_, c)| !c.1)
                    .map(|(n, _)| n.clone())
                    .collect(),
                dev_before: dev_f1(&rows, &vec![mtl_model::MULTILABEL_THRESHOLD; names.len()]),
                dev_after: dev_f1(&rows, &values),
            },
        );
        thresholds.0.insert(task, values);
    }
    Ok((thresholds, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Label 0: positives at 0.35 and 0.45, negatives at 0.3 and below, so
    /// only thresholds in (0.3, 0.35] are perfect: the grid's 0.35.
    /// Label 1: positives at 0.9 and 0.6, negatives at 0.7, 0.2 and 0.1.
    /// Label 2: never gold.
    fn example() -> DevRows {
        DevRows {
            gold: vec![vec![0, 1], vec![0], vec![1], vec![], vec![]],
            probs: vec![
                vec![0.35, 0.9, 0.6],
                vec![0.45, 0.2, 0.1],
                vec![0.1, 0.6, 0.2],
                vec![0.3, 0.7, 0.1],
                vec![0.1, 0.1, 0.1],
            ],
        }
    }

    #[test]
    fn each_label_gets_the_threshold_of_its_best_f1() {
        let chosen = choose(&example(), 3);
        // Label 1: in (0.2, 0.6] both positives and the 0.7 negative are
        // predicted (tp 2, fp 1: F1 0.8); above 0.6 a positive is lost,
        // at 0.2 and below more negatives come in. 0.25 … 0.6 tie at 0.8:
        // the closest to 0.5 is 0.5. Label 2 keeps 0.5 untuned, though
        // 0.95 would drop its false positive.
        assert_eq!(chosen, vec![(0.35, true), (0.5, true), (0.5, false)]);
    }

    #[test]
    fn ties_go_to_the_threshold_closest_to_one_half() {
        // One positive at 0.99, one negative at 0.01: everything from 0.05
        // to 0.95 is perfect.
        let rows = DevRows {
            gold: vec![vec![0], vec![]],
            probs: vec![vec![0.99], vec![0.01]],
        };
        assert_eq!(choose(&rows, 1), vec![(0.5, true)]);
        // A positive at 0.3 below a negative at 0.7: F1 peaks at 2/3 for
        // every threshold up to 0.3 (both predicted); of 0.05 … 0.3 the
        // closest to 0.5 is 0.3.
        let rows = DevRows {
            gold: vec![vec![0], vec![]],
            probs: vec![vec![0.3], vec![0.7]],
        };
        assert_eq!(choose(&rows, 1), vec![(0.3, true)]);
    }

    #[test]
    fn dev_f1_before_and_after_tuning() {
        let rows = example();
        let before = dev_f1(&rows, &[0.5; 3]);
        // At 0.5: label 0 nothing predicted (tp 0, fn 2), label 1 tp 2 fp 1,
        // label 2 fp 1. Micro: 4 / (4 + 2 + 2) = 0.5; macro over the three
        // present labels: (0 + 0.8 + 0) / 3.
        assert!((before.micro_f1 - 0.5).abs() < 1e-12, "{before:?}");
        assert!((before.macro_f1 - 0.8 / 3.0).abs() < 1e-12, "{before:?}");
        let tuned: Vec<f32> = choose(&rows, 3).iter().map(|c| c.0).collect();
        let after = dev_f1(&rows, &tuned);
        // Label 0 now perfect: tp 4, fp 2, fn 0 → 8 / 10.
        assert!((after.micro_f1 - 0.8).abs() < 1e-12, "{after:?}");
        assert!((after.macro_f1 - 1.8 / 3.0).abs() < 1e-12, "{after:?}");
    }

    #[test]
    fn the_grid_holds_the_default_and_the_documented_ends() {
        let all: Vec<f32> = CANDIDATES.map(grid).collect();
        assert_eq!(all.len(), 19);
        assert_eq!((all[0], all[18]), (0.05, 0.95));
        assert!(all.contains(&mtl_model::MULTILABEL_THRESHOLD));
    }
}
