//! Dev-set scores for model selection: cheap, one number per task in
//! roughly `[0, 1]` so that their mean picks the epoch. Not official
//! metrics (that is eval's job).
//!
//! | kind | score |
//! |---|---|
//! | classification | accuracy over labelled rows |
//! | tagging, spans | accuracy over labelled sub-token positions |
//! | multilabel | micro-F1 over labelled rows, a label predicted at probability ≥ 0.5 (1 when there is nothing to find and nothing is predicted) |
//! | regression | Pearson correlation of prediction and target (0 when either is constant) |

use std::collections::BTreeMap;

use candle_core::Device;
use mtl_core::{FeatureSet, TaskKind};
use mtl_model::{MultiTaskModel, TaskOutput};

use crate::data::{Example, RowTarget};
use crate::error::Result;

/// The name of a kind's selection score, for logs and the report.
pub fn metric(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::Classification | TaskKind::Tagging | TaskKind::Spans => "accuracy",
        TaskKind::Multilabel => "micro_f1",
        TaskKind::Regression => "pearson",
    }
}

/// Per task with labelled rows in `examples`, its selection score.
pub fn dev_scores(
    model: &MultiTaskModel,
    features: &FeatureSet,
    examples: &[Example],
    batch_size: usize,
    pad_to: Option<usize>,
    device: &Device,
) -> Result<BTreeMap<String, f64>> {
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let order: Vec<usize> = (0..examples.len()).collect();
    for chunk in order.chunks(batch_size.max(1)) {
        let batch = crate::batching::batch_rows(examples, chunk, features, pad_to, device)?;
        let out = mtl_model::bundle::predict(model, &batch)?;
        for (task, pred) in out {
            let a = acc.entry(task.clone()).or_default();
            for (k, &i) in chunk.iter().enumerate() {
                a.add(examples[i].targets.get(&task), &pred, k);
            }
        }
    }
    Ok(acc
        .into_iter()
        .filter_map(|(t, a)| a.score().map(|s| (t, s)))
        .collect())
}

#[derive(Default)]
struct Acc {
    hits: u64,
    scored: u64,
    /// Multilabel: true positives, false positives, false negatives.
    tp: u64,
    fp: u64,
    fn_: u64,
    labelled: u64,
    /// Regression: (prediction, target) pairs.
    pairs: Vec<(f64, f64)>,
}

impl Acc {
    fn add(&mut self, gold: Option<&RowTarget>, pred: &TaskOutput, k: usize) {
        match (gold, pred) {
            (Some(RowTarget::Sentence(y)), TaskOutput::Sentence { label, .. }) => {
                self.scored += 1;
                self.hits += u64::from(label[k] as i32 == *y);
            }
            (Some(RowTarget::Token(y)), TaskOutput::Token { label, .. }) => {
                for (g, p) in y.iter().zip(&label[k]) {
                    if *g >= 0 {
                        self.scored += 1;
                        self.hits += u64::from(*p as i32 == *g);
                    }
                }
            }
            (Some(RowTarget::Multilabel(y)), TaskOutput::Multilabel { labels, .. }) => {
                self.labelled += 1;
                let p = &labels[k];
                let tp = p.iter().filter(|l| y.contains(l)).count() as u64;
                self.tp += tp;
                self.fp += p.len() as u64 - tp;
                self.fn_ += y.len() as u64 - tp;
            }
            (Some(RowTarget::Regression(y)), TaskOutput::Regression { value }) => {
                self.pairs.push((f64::from(value[k]), f64::from(*y)));
            }
            _ => {}
        }
    }

    fn score(&self) -> Option<f64> {
        if self.scored > 0 {
            return Some(self.hits as f64 / self.scored as f64);
        }
        if self.labelled > 0 {
            return Some(micro_f1(self.tp, self.fp, self.fn_));
        }
        if !self.pairs.is_empty() {
            return Some(pearson(&self.pairs));
        }
        None
    }
}

pub fn micro_f1(tp: u64, fp: u64, fn_: u64) -> f64 {
    let denom = 2 * tp + fp + fn_;
    if denom == 0 {
        1.0
    } else {
        2.0 * tp as f64 / denom as f64
    }
}

/// Pearson's r of `(x, y)` pairs; 0 when either side is constant.
pub fn pearson(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    if pairs.len() < 2 {
        return 0.0;
    }
    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx <= 0.0 || syy <= 0.0 {
        return 0.0;
    }
    (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_f1_pools_every_label() {
        // 3 tp, 1 fp, 2 fn: 6 / (6 + 3).
        assert!((micro_f1(3, 1, 2) - 6.0 / 9.0).abs() < 1e-12);
        assert_eq!(micro_f1(0, 0, 0), 1.0);
        assert_eq!(micro_f1(0, 2, 1), 0.0);
    }

    #[test]
    fn pearson_matches_hand_computed_values() {
        assert!((pearson(&[(1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)]) + 1.0).abs() < 1e-12);
        // x = [1, 2, 3], y = [1, 3, 2]: sxy = 1, sxx = syy = 2.
        assert!((pearson(&[(1.0, 1.0), (2.0, 3.0), (3.0, 2.0)]) - 0.5).abs() < 1e-12);
        assert_eq!(pearson(&[(1.0, 1.0), (1.0, 3.0)]), 0.0);
        assert_eq!(pearson(&[(1.0, 1.0)]), 0.0);
    }

    #[test]
    fn multilabel_rows_count_true_and_false_positives() {
        let mut a = Acc::default();
        let pred = TaskOutput::Multilabel {
            probs: vec![vec![0.9, 0.8, 0.1], vec![0.1, 0.1, 0.1]],
            labels: vec![vec![0, 1], vec![]],
        };
        a.add(Some(&RowTarget::Multilabel(vec![0, 2])), &pred, 0);
        a.add(Some(&RowTarget::Multilabel(vec![])), &pred, 1);
        a.add(None, &pred, 1);
        assert_eq!((a.tp, a.fp, a.fn_, a.labelled), (1, 1, 1, 2));
        assert!((a.score().unwrap() - 0.5).abs() < 1e-12);
    }
}
