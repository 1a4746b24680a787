//! `split/features.json`: the clean stage's numeric features, their
//! training statistics, their mutual information with each sentence-level
//! task, and the ones each task's head takes as side inputs.
//!
//! Mutual information is measured on the training rows that carry the task,
//! with the feature cut into `features.bins` equal-frequency bins:
//! - classification: against the label;
//! - multilabel: the mean, over the vocabulary, of the information about
//!   each label's presence (a binary indicator; an empty list is all
//!   absent). The mean keeps the scale of one binary task, so rankings stay
//!   comparable whatever the number of labels;
//! - regression: against the target cut into the same number of
//!   equal-frequency bins.
//!
//! Ties in the ranking keep the [`FEATURES`] order. The selection is
//! `features.select` as written (the same for every sentence-level task),
//! or the `features.top_k` best of each task's ranking, best first, or
//! nothing. Token tasks take no side inputs and are not ranked. A missing
//! or non-finite feature value leaves that row out of that feature's
//! numbers; the statistics cover every training row of every dataset.

use std::collections::BTreeMap;
use std::path::Path;

use mtl_core::artifact::{FEATURES, PolarsAt, col};
use mtl_core::features::{FeatureSet, FeatureStats, RankedFeature, TaskFeatures};
use mtl_core::{LabelSet, PipelineConfig, TaskKind};
use polars::prelude::*;

use crate::assign::TRAIN;
use crate::cells::Cell;
use crate::error::Result;
use crate::mi;

/// A feature's name and its value on every row (`None` where missing or
/// not finite).
pub type Values = (&'static str, Vec<Option<f64>>);

/// Every feature of [`FEATURES`], in that order.
pub fn read(df: &DataFrame, path: &Path) -> Result<Vec<Values>> {
    let mut out = Vec::with_capacity(FEATURES.len());
    for f in FEATURES {
        let c = df
            .column(&col::feature(f))
            .at(path)?
            .cast(&DataType::Float64)
            .at(path)?;
        let values = c
            .f64()
            .at(path)?
            .iter()
            .map(|v| v.filter(|v| v.is_finite()))
            .collect();
        out.push((f, values));
    }
    Ok(out)
}

pub fn build(
    cfg: &PipelineConfig,
    features: &[Values],
    splits: &[usize],
    cells: &BTreeMap<String, Vec<Option<Cell>>>,
    labels: &LabelSet,
) -> Result<FeatureSet> {
    let mut set = FeatureSet::default();
    for (name, values) in features {
        let train: Vec<f64> = values
            .iter()
            .zip(splits)
            .filter(|(_, s)| **s == TRAIN)
            .filter_map(|(v, _)| *v)
            .collect();
        set.stats.insert(name.to_string(), stats(&train));
    }
    for t in cfg.tasks.iter().filter(|t| !t.kind.is_token_level()) {
        let vocab = labels.get(&t.name)?;
        let task_cells = &cells[&t.name];
        let rows: Vec<usize> = (0..splits.len())
            .filter(|&i| splits[i] == TRAIN && task_cells[i].is_some())
            .collect();
        // Each target is one discrete variable over `rows`; multilabel has
        // one per vocabulary label.
        let targets: Vec<Vec<usize>> = match t.kind {
            TaskKind::Regression => {
                let y: Vec<f64> = rows
                    .iter()
                    .map(|&i| match &task_cells[i] {
                        Some(Cell::Num(v)) => *v,
                        _ => 0.0,
                    })
                    .collect();
                vec![mi::equal_frequency_bins(&y, cfg.features.bins)]
            }
            TaskKind::Multilabel => vocab
                .labels
                .iter()
                .map(|l| {
                    rows.iter()
                        .map(|&i| {
                            let present = task_cells[i]
                                .as_ref()
                                .is_some_and(|c| c.labels().contains(l));
                            usize::from(present)
                        })
                        .collect()
                })
                .collect(),
            _ => vec![
                rows.iter()
                    .map(|&i| {
                        task_cells[i]
                            .as_ref()
                            .and_then(|c| c.labels().first())
                            .and_then(|l| vocab.id(l))
                            .unwrap_or(usize::MAX)
                    })
                    .collect(),
            ],
        };
        let mut ranking: Vec<RankedFeature> = features
            .iter()
            .map(|(name, values)| RankedFeature {
                feature: name.to_string(),
                mi: information(values, &rows, &targets, cfg.features.bins),
            })
            .collect();
        // Stable: equal information keeps the FEATURES order.
        ranking.sort_by(|a, b| b.mi.total_cmp(&a.mi));
        let selected = match cfg.features.top_k {
            Some(k) => ranking.iter().take(k).map(|r| r.feature.clone()).collect(),
            None => cfg.features.select.clone(),
        };
        set.tasks
            .insert(t.name.clone(), TaskFeatures { ranking, selected });
    }
    Ok(set)
}

/// Mean mutual information between the binned feature and each target,
/// over the rows where the feature has a value.
fn information(values: &[Option<f64>], rows: &[usize], targets: &[Vec<usize>], bins: usize) -> f64 {
    let present: Vec<usize> = (0..rows.len())
        .filter(|&j| values[rows[j]].is_some())
        .collect();
    let x: Vec<f64> = present
        .iter()
        .map(|&j| values[rows[j]].unwrap_or(0.0))
        .collect();
    let x = mi::equal_frequency_bins(&x, bins);
    if targets.is_empty() {
        return 0.0;
    }
    let total: f64 = targets
        .iter()
        .map(|y| {
            let y: Vec<usize> = present.iter().map(|&j| y[j]).collect();
            mi::mutual_information(&x, &y)
        })
        .sum();
    total / targets.len() as f64
}

/// Mean and population std (1 when constant or empty).
fn stats(values: &[f64]) -> FeatureStats {
    if values.is_empty() {
        return FeatureStats {
            mean: 0.0,
            std: 1.0,
        };
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    FeatureStats {
        mean,
        std: if var > 0.0 { var.sqrt() } else { 1.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_population_moments() {
        let s = stats(&[1.0, 3.0]);
        assert_eq!((s.mean, s.std), (2.0, 1.0));
        let s = stats(&[0.0, 4.0, 4.0, 4.0]);
        assert_eq!(s.mean, 3.0);
        assert!((s.std - 3f64.sqrt()).abs() < 1e-12);
        assert_eq!(stats(&[5.0, 5.0]).std, 1.0);
    }

    #[test]
    fn information_skips_rows_without_a_value() {
        let values = [Some(0.0), Some(1.0), None, Some(0.0), Some(1.0)];
        let rows = [0, 1, 2, 3, 4];
        // Row 2's label disagrees with everything; it has no value, so the
        // feature still determines the label: MI = H = ln 2.
        let targets = vec![vec![0, 1, 1, 0, 1]];
        let mi = information(&values, &rows, &targets, 4);
        assert!((mi - 2f64.ln()).abs() < 1e-12, "{mi}");
        // Two targets, one fully explained and one constant: the mean.
        let targets = vec![vec![0, 1, 0, 0, 1], vec![0; 5]];
        let mi = information(&values, &rows, &targets, 4);
        assert!((mi - 2f64.ln() / 2.0).abs() < 1e-12, "{mi}");
    }
}
