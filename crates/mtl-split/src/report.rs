//! `split/report.json`: what the trainer will see, per task and split, and
//! which examples appear in more than one split.

use std::collections::{BTreeMap, BTreeSet};

use mtl_core::artifact::{SPLITS, col};
use mtl_core::{LabelSet, PipelineConfig};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct SplitReport {
    pub rows: BTreeMap<String, usize>,
    pub tasks: BTreeMap<String, TaskReport>,
    pub leakage: Leakage,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TaskReport {
    /// Labelled examples per split.
    pub examples: BTreeMap<String, usize>,
    /// Label counts per split (words for token tasks).
    pub distribution: BTreeMap<String, BTreeMap<String, u64>>,
    /// Most over least frequent training label.
    pub imbalance_ratio: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Leakage {
    /// Rows whose normalised text also appears in another split.
    pub rows: usize,
    pub samples: Vec<LeakSample>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LeakSample {
    pub text: String,
    pub splits: Vec<String>,
}

/// Lowercased letters and digits only: the key under which two texts count
/// as the same example.
pub fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

pub fn build(
    cfg: &PipelineConfig,
    fused: &DataFrame,
    labels: &LabelSet,
) -> PolarsResult<SplitReport> {
    let split = fused.column("split")?.str()?;
    let mut rows = BTreeMap::new();
    for s in SPLITS {
        rows.insert(s.to_string(), split.equal(s).sum().unwrap_or(0) as usize);
    }
    let mut tasks = BTreeMap::new();
    for t in &cfg.tasks {
        let c = fused.column(&col::label(&t.name))?;
        let mut examples: BTreeMap<String, usize> =
            SPLITS.iter().map(|s| (s.to_string(), 0)).collect();
        let mut distribution: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let count =
            |sp: &str, l: &str, distribution: &mut BTreeMap<String, BTreeMap<String, u64>>| {
                *distribution
                    .entry(sp.to_string())
                    .or_default()
                    .entry(l.to_string())
                    .or_default() += 1;
            };
        if t.kind.is_token_level() {
            for (i, row) in c.list()?.series_iter().enumerate() {
                let (Some(row), Some(sp)) = (row, split.get(i)) else {
                    continue;
                };
                *examples.entry(sp.to_string()).or_default() += 1;
                for l in row.str()?.iter().flatten() {
                    count(sp, l, &mut distribution);
                }
            }
        } else {
            for (i, l) in c.str()?.iter().enumerate() {
                let (Some(l), Some(sp)) = (l, split.get(i)) else {
                    continue;
                };
                *examples.entry(sp.to_string()).or_default() += 1;
                count(sp, l, &mut distribution);
            }
        }
        let train_counts = &labels.tasks[&t.name].train_counts;
        let max = train_counts.iter().copied().max().unwrap_or(0) as f64;
        let min = train_counts.iter().copied().min().unwrap_or(0).max(1) as f64;
        tasks.insert(
            t.name.clone(),
            TaskReport {
                examples,
                distribution,
                imbalance_ratio: max / min,
            },
        );
    }
    Ok(SplitReport {
        rows,
        tasks,
        leakage: leakage(fused)?,
    })
}

fn leakage(fused: &DataFrame) -> PolarsResult<Leakage> {
    let text = fused.column(col::TEXT)?.str()?;
    let split = fused.column("split")?.str()?;
    let mut seen: BTreeMap<String, (BTreeSet<String>, usize, String)> = BTreeMap::new();
    for (t, s) in text.iter().zip(split.iter()) {
        let (Some(t), Some(s)) = (t, s) else { continue };
        let e = seen
            .entry(normalise(t))
            .or_insert_with(|| (BTreeSet::new(), 0, t.to_string()));
        e.0.insert(s.to_string());
        e.1 += 1;
    }
    let leaked: Vec<_> = seen
        .into_values()
        .filter(|(splits, _, _)| splits.len() > 1)
        .collect();
    Ok(Leakage {
        rows: leaked.iter().map(|(_, n, _)| n).sum(),
        samples: leaked
            .into_iter()
            .take(5)
            .map(|(splits, _, text)| LeakSample {
                text,
                splits: splits.into_iter().collect(),
            })
            .collect(),
    })
}
