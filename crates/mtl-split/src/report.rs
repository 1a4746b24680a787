//! `split/report.json` and its printed summary: what the trainer will see,
//! per task and split, which examples appear in more than one split, and
//! how informative each feature is about each task.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mtl_core::artifact::SPLITS;
use mtl_core::features::{FeatureSet, TaskFeatures};
use mtl_core::task::TargetStats;
use mtl_core::{LabelSet, PipelineConfig, TaskKind};
use serde::{Deserialize, Serialize};

use crate::cells::Cell;
use crate::leakage::Leakage;
use crate::vocab;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    /// Rows per split (after `drop_leaked`).
    pub rows: BTreeMap<String, usize>,
    pub tasks: BTreeMap<String, TaskReport>,
    pub leakage: Leakage,
    /// Sentence-level tasks: the features ranked by mutual information and
    /// the selected side inputs (as in `features.json`).
    pub features: BTreeMap<String, TaskFeatures>,
    /// Per dataset that brought train rows but no dev rows: the dev set
    /// carved out of its train rows (`split.dev_from_train`). Datasets with
    /// their own dev, or split by hash, are absent.
    #[serde(default)]
    pub dev_from_train: BTreeMap<String, CarvedDev>,
}

/// A dev set carved out of a dataset's own train rows. The counts are
/// taken at assignment, before `drop_leaked` removes anything from dev:
/// `train_before == train + dev`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarvedDev {
    /// `split.dev_from_train`.
    pub fraction: f64,
    /// The dataset's train rows as given.
    pub train_before: usize,
    /// Rows moved from train to dev; 0 when the train rows are a single
    /// group (or row), which cannot be divided.
    pub dev: usize,
    /// Rows left in train.
    pub train: usize,
    /// The `stratify` task, when the dataset carries it.
    pub stratified_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub kind: TaskKind,
    /// Labelled examples per split.
    pub examples: BTreeMap<String, usize>,
    /// Label counts per split: words for token tasks, texts for
    /// multilabel; empty for regression.
    pub distribution: BTreeMap<String, BTreeMap<String, u64>>,
    /// Most over least frequent training label; `None` for regression.
    pub imbalance_ratio: Option<f64>,
    /// Labels replaced by the unknown-label policy, per split.
    pub mapped_unknown: BTreeMap<String, u64>,
    /// Regression only: target statistics per split.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, TargetStats>,
}

/// `mapped[task]` is the number of labels [`crate::vocab::apply_policy`]
/// replaced in each row.
pub fn build(
    cfg: &PipelineConfig,
    splits: &[usize],
    cells: &BTreeMap<String, Vec<Option<Cell>>>,
    labels: &LabelSet,
    mapped: &BTreeMap<String, Vec<u64>>,
    leakage: Leakage,
    features: &FeatureSet,
) -> SplitReport {
    let zeros =
        || -> BTreeMap<String, usize> { SPLITS.iter().map(|s| (s.to_string(), 0)).collect() };
    let mut rows = zeros();
    for &s in splits {
        *rows.entry(SPLITS[s].to_string()).or_default() += 1;
    }
    let mut tasks = BTreeMap::new();
    for t in &cfg.tasks {
        let mut examples = zeros();
        let mut distribution: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (cell, &s) in cells[&t.name].iter().zip(splits) {
            let Some(cell) = cell else { continue };
            let split = SPLITS[s].to_string();
            *examples.entry(split.clone()).or_default() += 1;
            if let Cell::Num(v) = cell {
                values.entry(split).or_default().push(*v);
                continue;
            }
            let d = distribution.entry(split).or_default();
            let mut ls: Vec<&String> = cell.labels().iter().collect();
            if t.kind == TaskKind::Multilabel {
                ls.sort();
                ls.dedup();
            }
            for l in ls {
                *d.entry(l.clone()).or_default() += 1;
            }
        }
        let mut mapped_unknown: BTreeMap<String, u64> =
            SPLITS.iter().map(|s| (s.to_string(), 0)).collect();
        for (&n, &s) in mapped.get(&t.name).into_iter().flatten().zip(splits) {
            *mapped_unknown.entry(SPLITS[s].to_string()).or_default() += n;
        }
        let imbalance_ratio = labels.tasks.get(&t.name).and_then(|tl| {
            let max = *tl.train_counts.iter().max()? as f64;
            let min = (*tl.train_counts.iter().min()?).max(1) as f64;
            tl.kind.has_vocab().then_some(max / min)
        });
        tasks.insert(
            t.name.clone(),
            TaskReport {
                kind: t.kind,
                examples,
                distribution,
                imbalance_ratio,
                mapped_unknown,
                targets: values
                    .into_iter()
                    .filter_map(|(s, v)| Some((s, vocab::target_stats(&v)?)))
                    .collect(),
            },
        );
    }
    SplitReport {
        rows,
        tasks,
        leakage,
        features: features.tasks.clone(),
        // Filled in by the caller, which knows the datasets.
        dev_from_train: BTreeMap::new(),
    }
}

/// How many labels and features a summary line lists.
const SHOWN: usize = 6;

/// The human summary the binary prints.
pub fn render_summary(r: &SplitReport) -> String {
    let mut out = String::new();
    let per_split = |m: &BTreeMap<String, usize>| {
        SPLITS
            .iter()
            .map(|s| format!("{s} {}", m.get(*s).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let _ = writeln!(out, "rows: {}", per_split(&r.rows));
    for (dataset, c) in &r.dev_from_train {
        if c.dev == 0 {
            let _ = writeln!(
                out,
                "dataset {dataset}: no dev split given, and its {} train row(s) form one group: \
                 no dev carved",
                c.train_before
            );
            continue;
        }
        let _ = write!(
            out,
            "dataset {dataset}: no dev split given; dev carved from train: {} of {} rows \
             (split.dev_from_train = {}",
            c.dev, c.train_before, c.fraction
        );
        if let Some(task) = &c.stratified_by {
            let _ = write!(out, ", stratified by {task}");
        }
        let _ = writeln!(out, "), {} left in train", c.train);
    }
    for (name, t) in &r.tasks {
        let _ = write!(
            out,
            "task {name} ({}): {}",
            t.kind.name(),
            per_split(&t.examples)
        );
        if let Some(ratio) = t.imbalance_ratio {
            let _ = write!(out, "; imbalance {ratio:.2}");
        }
        let mapped: u64 = t.mapped_unknown.values().sum();
        if mapped > 0 {
            let _ = write!(out, "; {mapped} unknown label(s) mapped");
        }
        out.push('\n');
        if let Some(train) = t.distribution.get("train") {
            let mut top: Vec<(&String, &u64)> = train.iter().collect();
            top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let shown: Vec<String> = top
                .iter()
                .take(SHOWN)
                .map(|(l, c)| format!("{l} {c}"))
                .collect();
            let more = top.len().saturating_sub(SHOWN);
            let _ = write!(out, "  train labels: {}", shown.join(", "));
            if more > 0 {
                let _ = write!(out, ", ... ({more} more)");
            }
            out.push('\n');
        }
        if let Some(s) = t.targets.get("train") {
            let _ = writeln!(
                out,
                "  train target: mean {:.4}, std {:.4}, range [{}, {}]",
                s.mean, s.std, s.min, s.max
            );
        }
        if let Some(f) = r.features.get(name) {
            let ranked: Vec<String> = f
                .ranking
                .iter()
                .take(SHOWN)
                .map(|x| format!("{} {:.4}", x.feature, x.mi))
                .collect();
            let _ = writeln!(out, "  feature MI (nats): {}", ranked.join(", "));
            if !f.selected.is_empty() {
                let _ = writeln!(out, "  side inputs: {}", f.selected.join(", "));
            }
        }
    }
    let l = &r.leakage;
    let _ = write!(
        out,
        "leakage: {} text(s) in several splits ({} rows): dev in train {}, test in train {}, test in dev {}",
        l.texts, l.rows, l.dev_in_train, l.test_in_train, l.test_in_dev
    );
    if l.dropped_enabled {
        let _ = write!(
            out,
            "; dropped dev {}, test {}",
            l.dropped.get("dev").copied().unwrap_or(0),
            l.dropped.get("test").copied().unwrap_or(0)
        );
    }
    out.push('\n');
    for s in &l.samples {
        let text: String = s.text.chars().take(60).collect();
        let _ = writeln!(out, "  e.g. {text:?} in {}", s.splits.join(", "));
    }
    out
}
