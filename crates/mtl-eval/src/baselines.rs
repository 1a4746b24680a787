//! Single-task scores to compare the multi-task model with: the optional
//! input `runs/<pipeline>/baselines.json` (or `mtl-eval --baselines FILE`).
//! Whatever trains one model per task writes it; eval only reads it and
//! shows it in `report.html` beside the multi-task scores. Without it the
//! report compares with the majority baseline alone.
//!
//! Schema (every field but `tasks.<task>.score` optional):
//!
//! ```json
//! {
//!   "description": "one BiLSTM per task, same config",
//!   "tasks": {
//!     "sentiment": {
//!       "metric": "macro_f1",
//!       "split": "dev",
//!       "score": 0.871,
//!       "ci": [0.84, 0.90],
//!       "source": "runs/sample-single-sentiment/eval/metrics.json"
//!     }
//!   }
//! }
//! ```
//!
//! `metric` and `split` should be the multi-task model's headline metric
//! and headline split (`metrics.json` `tasks.<task>.metric` and
//! `headline_split`); the report flags a score of another metric or split
//! rather than compare unlike numbers. Unknown fields are ignored.
//!
//! Optional, written by `cargo xtask run --baselines`: per task `splits`
//! (`{"dev": {"score": 0.87, "ci": [..]}, "test": {...}}`, the score on every
//! scored split) and `cost` (a [`ModelCost`]: that model's parameters,
//! training and inference time). With them the reports show each task both
//! ways on every split, the multi-task gain Δp ([`delta_p`]) and the cost of
//! the k single-task models against the one multi-task model, whose own
//! [`ModelCost`] eval records in `metrics.json` (`cost`).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::report::Metrics;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SingleTaskScores {
    /// What the single-task models are, for the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tasks: BTreeMap<String, SingleTaskScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SingleTaskScore {
    /// Headline metric name, as in `metrics.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// The split scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    pub score: f64,
    /// 95% interval of `score`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<[f64; 2]>,
    /// Where the score comes from (a single-task `metrics.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The score of `metric` on every scored split, `split` included.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub splits: BTreeMap<String, SplitScore>,
    /// What this task's model cost to train and to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<ModelCost>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitScore {
    pub score: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<[f64; 2]>,
}

/// What one model (or, summed, several) costs: its size, its training and
/// its inference on the eval splits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelCost {
    /// Models counted: 1, or k for the sum of k single-task models.
    pub models: u32,
    /// Elements of every tensor in `model.safetensors`.
    pub parameters: u64,
    /// Wall time of the training loop (train manifest `timings_ms.train`).
    pub train_seconds: f64,
    /// Wall time of the forward passes over every eval split (batching
    /// included; reading the tables and scoring excluded).
    pub inference_seconds: f64,
    /// Examples those forward passes predicted (windows merged).
    pub inference_examples: u64,
}

impl ModelCost {
    /// The cost of `self` and `other` together.
    pub fn plus(&self, other: &ModelCost) -> ModelCost {
        ModelCost {
            models: self.models + other.models,
            parameters: self.parameters + other.parameters,
            train_seconds: self.train_seconds + other.train_seconds,
            inference_seconds: self.inference_seconds + other.inference_seconds,
            inference_examples: self.inference_examples + other.inference_examples,
        }
    }
}

/// Parameters of a safetensors file: the elements of every tensor listed in
/// its JSON header (the 8-byte little-endian length, then the header). Only
/// the header is read.
pub fn count_parameters(path: &Path) -> Result<u64> {
    use std::io::Read;
    let bad = |message: String| mtl_core::CoreError::artifact(path, message);
    let mut f = std::fs::File::open(path).map_err(|e| mtl_core::CoreError::io(path, e))?;
    let mut len = [0u8; 8];
    f.read_exact(&mut len)
        .map_err(|e| mtl_core::CoreError::io(path, e))?;
    let len = u64::from_le_bytes(len);
    let size = f
        .metadata()
        .map_err(|e| mtl_core::CoreError::io(path, e))?
        .len();
    if len > size.saturating_sub(8) {
        return Err(bad(format!(
            "safetensors header of {len} bytes in a file of {size}"
        ))
        .into());
    }
    let mut header = vec![0u8; len as usize];
    f.read_exact(&mut header)
        .map_err(|e| mtl_core::CoreError::io(path, e))?;
    let header: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| bad(format!("safetensors header is not a JSON object: {e}")))?;
    let mut total = 0u64;
    for (name, t) in header.iter().filter(|(k, _)| *k != "__metadata__") {
        let shape = t
            .get("shape")
            .and_then(|s| s.as_array())
            .ok_or_else(|| bad(format!("tensor `{name}` has no shape")))?;
        let mut n = 1u64;
        for d in shape {
            let d = d
                .as_u64()
                .ok_or_else(|| bad(format!("tensor `{name}` has a bad shape")))?;
            n = n.saturating_mul(d);
        }
        total = total.saturating_add(n);
    }
    Ok(total)
}

/// Whether a headline metric is an error (lower is better): the regression
/// errors. Every other headline is a score.
pub fn lower_is_better(metric: &str) -> bool {
    matches!(metric, "mse" | "rmse" | "mae")
}

/// One task's relative multi-task gain in percent, LibMTL's term of Δp
/// (Maninis et al. 2019; Lin & Zhang, LibMTL):
/// `(-1)^l (M - S) / |S| * 100`, `l = 1` when lower is better. LibMTL
/// divides by `S`; `|S|` is the same for every positive score and keeps
/// the sign meaning "better" when a correlation is negative. `None` when
/// `S` is 0 (no relative change exists) or a value is not finite.
pub fn relative_gain(multi: f64, single: f64, lower_is_better: bool) -> Option<f64> {
    if single == 0.0 || !multi.is_finite() || !single.is_finite() {
        return None;
    }
    let sign = if lower_is_better { -1.0 } else { 1.0 };
    Some(sign * (multi - single) / single.abs() * 100.0)
}

/// Δp: the mean of the per-task [`relative_gain`]s, in percent. `None`
/// without any task.
pub fn delta_p(gains: &[f64]) -> Option<f64> {
    (!gains.is_empty()).then(|| gains.iter().sum::<f64>() / gains.len() as f64)
}

/// Multi-task against single-task: every task on every split, Δp per split,
/// and the two costs. Built from `metrics.json` and `baselines.json`; the
/// reports render it.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Splits in display order.
    pub splits: Vec<String>,
    pub tasks: Vec<TaskComparison>,
    /// Δp per split over the tasks compared there.
    pub delta_p: BTreeMap<String, DeltaP>,
    /// The multi-task model (`metrics.json` `cost`).
    pub multi_cost: Option<ModelCost>,
    /// The single-task models that recorded a cost, summed.
    pub single_cost: Option<ModelCost>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskComparison {
    pub task: String,
    pub metric: String,
    pub lower_is_better: bool,
    /// Per split: multi-task score, single-task score, relative gain.
    pub splits: BTreeMap<String, (f64, f64, Option<f64>)>,
    /// Why the task is not compared, when it is not.
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaP {
    /// Percent.
    pub value: f64,
    /// Tasks in the mean.
    pub tasks: usize,
    /// Tasks of the multi-task model.
    pub of: usize,
}

impl Comparison {
    pub fn new(metrics: &Metrics, single: &SingleTaskScores) -> Comparison {
        let splits = metrics.split_order();
        let mut tasks = Vec::new();
        let mut gains: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for (name, t) in &metrics.tasks {
            let mut tc = TaskComparison {
                task: name.clone(),
                metric: t.metric.clone(),
                lower_is_better: lower_is_better(&t.metric),
                splits: BTreeMap::new(),
                note: None,
            };
            match single.comparable(name, &t.metric, &metrics.headline_split) {
                None => tc.note = Some("no single-task score".into()),
                Some(Err(why)) => tc.note = Some(why),
                Some(Ok(s)) => {
                    for split in &splits {
                        let Some(m) = t.splits.get(split) else {
                            continue;
                        };
                        let single_score = match s.splits.get(split) {
                            Some(x) => x.score,
                            None if *split == metrics.headline_split => s.score,
                            None => continue,
                        };
                        let gain = relative_gain(m.score, single_score, tc.lower_is_better);
                        if let Some(g) = gain {
                            gains.entry(split.clone()).or_default().push(g);
                        }
                        tc.splits
                            .insert(split.clone(), (m.score, single_score, gain));
                    }
                }
            }
            tasks.push(tc);
        }
        let delta_p = gains
            .into_iter()
            .filter_map(|(split, g)| {
                delta_p(&g).map(|value| {
                    (
                        split,
                        DeltaP {
                            value,
                            tasks: g.len(),
                            of: metrics.tasks.len(),
                        },
                    )
                })
            })
            .collect();
        let single_cost = metrics
            .tasks
            .keys()
            .filter_map(|name| single.tasks.get(name)?.cost)
            .reduce(|a, b| a.plus(&b));
        Comparison {
            splits,
            tasks,
            delta_p,
            multi_cost: metrics.cost,
            single_cost,
            description: single.description.clone(),
        }
    }
}

impl SingleTaskScores {
    pub const FILE: &'static str = "baselines.json";

    /// Reads and checks `path`: every score must be finite.
    pub fn read(path: &Path) -> Result<SingleTaskScores> {
        let s: SingleTaskScores = mtl_core::fsio::read_json(path)?;
        for (task, t) in &s.tasks {
            let values = std::iter::once(t.score).chain(t.ci.into_iter().flatten());
            if values.clone().any(|v| !v.is_finite()) {
                return Err(Error::Task {
                    path: path.to_path_buf(),
                    task: task.clone(),
                    message: "`score` and `ci` must be finite numbers".into(),
                });
            }
        }
        Ok(s)
    }

    /// The single-task score of `task` if it measures `metric` on `split`
    /// (a missing `metric` or `split` is taken to match); else why not.
    pub fn comparable(
        &self,
        task: &str,
        metric: &str,
        split: &str,
    ) -> Option<Result<&SingleTaskScore, String>> {
        let t = self.tasks.get(task)?;
        if let Some(m) = t.metric.as_deref().filter(|m| *m != metric) {
            return Some(Err(format!(
                "single-task score is {m}, not {metric}: not compared"
            )));
        }
        if let Some(s) = t.split.as_deref().filter(|s| *s != split) {
            return Some(Err(format!(
                "single-task score is on {s}, not {split}: not compared"
            )));
        }
        Some(Ok(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_schema_and_ignores_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SingleTaskScores::FILE);
        std::fs::write(
            &path,
            r#"{"tasks": {"sentiment": {"metric": "macro_f1", "split": "dev", "score": 0.8,
                "ci": [0.7, 0.9], "source": "x", "extra": 1},
                "topic": {"score": 0.5}}, "future": true}"#,
        )
        .unwrap();
        let s = SingleTaskScores::read(&path).unwrap();
        assert_eq!(s.tasks["sentiment"].ci, Some([0.7, 0.9]));
        assert_eq!(s.tasks["topic"].metric, None);
        assert!(matches!(
            s.comparable("sentiment", "macro_f1", "dev"),
            Some(Ok(_))
        ));
        assert!(matches!(
            s.comparable("topic", "accuracy", "test"),
            Some(Ok(_))
        ));
        let why = s
            .comparable("sentiment", "accuracy", "dev")
            .unwrap()
            .unwrap_err();
        assert!(why.contains("macro_f1"), "{why}");
        assert!(
            s.comparable("sentiment", "macro_f1", "test")
                .unwrap()
                .is_err()
        );
        assert!(s.comparable("stars", "pearson", "dev").is_none());
    }

    #[test]
    fn delta_p_matches_hand_computed_values() {
        // (0.9 - 0.8) / 0.8 = +12.5 %; (0.6 - 0.75) / 0.75 = -20 %;
        // an error that grows from 0.4 to 0.5 is a 25 % loss.
        let a = relative_gain(0.9, 0.8, false).unwrap();
        let b = relative_gain(0.6, 0.75, false).unwrap();
        let c = relative_gain(0.5, 0.4, true).unwrap();
        assert!((a - 12.5).abs() < 1e-9, "{a}");
        assert!((b + 20.0).abs() < 1e-9, "{b}");
        assert!((c + 25.0).abs() < 1e-9, "{c}");
        let d = delta_p(&[a, b, c]).unwrap();
        assert!((d - (12.5 - 20.0 - 25.0) / 3.0).abs() < 1e-9, "{d}");
        // A lower error is a gain.
        assert!((relative_gain(0.3, 0.4, true).unwrap() - 25.0).abs() < 1e-9);
        // Nothing relative to zero, and no mean of nothing.
        assert_eq!(relative_gain(0.5, 0.0, false), None);
        assert_eq!(relative_gain(f64::NAN, 0.5, false), None);
        assert_eq!(delta_p(&[]), None);
        // A negative single-task correlation: improving on it is a gain.
        assert!(relative_gain(0.1, -0.2, false).unwrap() > 0.0);
        assert!(lower_is_better("rmse") && !lower_is_better("pearson"));
    }

    fn metrics() -> Metrics {
        let task = |metric: &str, dev: f64, test: f64| {
            serde_json::json!({
                "kind": "classification", "metric": metric, "score": dev, "baseline": 0.1,
                "splits": {
                    "dev": {"n": 1, "score": dev, "baseline": 0.1, "metrics": {"n_words": 1,
                        "correct_words": 1, "accuracy": 1.0, "truncated_words": 0,
                        "unscored_words": 0}},
                    "test": {"n": 1, "score": test, "baseline": 0.1, "metrics": {"n_words": 1,
                        "correct_words": 1, "accuracy": 1.0, "truncated_words": 0,
                        "unscored_words": 0}}
                }
            })
        };
        serde_json::from_value(serde_json::json!({
            "pipeline": "p", "headline_split": "dev", "splits": ["dev", "test"],
            "tasks": {
                "a": task("macro_f1", 0.9, 0.8),
                "b": task("macro_f1", 0.6, 0.5),
                "c": task("rmse", 0.5, 0.5),
                "d": task("macro_f1", 0.7, 0.7),
            },
            "cost": {"models": 1, "parameters": 100, "train_seconds": 2.0,
                "inference_seconds": 0.5, "inference_examples": 40}
        }))
        .unwrap()
    }

    #[test]
    fn comparison_covers_every_split_and_sums_the_costs() {
        let cost = |p: u64| ModelCost {
            models: 1,
            parameters: p,
            train_seconds: 1.5,
            inference_seconds: 0.25,
            inference_examples: 40,
        };
        let split = |score: f64| SplitScore { score, ci: None };
        let st = |metric: &str, dev: f64, test: f64, p: u64| SingleTaskScore {
            metric: Some(metric.into()),
            split: Some("dev".into()),
            score: dev,
            ci: None,
            source: None,
            splits: [
                ("dev".to_string(), split(dev)),
                ("test".into(), split(test)),
            ]
            .into(),
            cost: Some(cost(p)),
        };
        let single = SingleTaskScores {
            description: Some("one per task".into()),
            tasks: [
                ("a".to_string(), st("macro_f1", 0.8, 0.8, 60)),
                ("b".into(), st("macro_f1", 0.75, 0.5, 70)),
                ("c".into(), st("rmse", 0.4, 0.5, 80)),
                // Another metric: shown, not compared.
                ("d".into(), st("accuracy", 0.7, 0.7, 90)),
                // Not a task of this model: ignored, its cost too.
                ("gone".into(), st("macro_f1", 0.1, 0.1, 1000)),
            ]
            .into(),
        };
        let c = Comparison::new(&metrics(), &single);
        assert_eq!(c.splits, ["dev", "test"]);
        let dev = c.delta_p["dev"];
        assert_eq!((dev.tasks, dev.of), (3, 4));
        assert!((dev.value - (12.5 - 20.0 - 25.0) / 3.0).abs() < 1e-9);
        // test: +0 %, +0 %, 0 %.
        assert!(c.delta_p["test"].value.abs() < 1e-9);
        let d = c.tasks.iter().find(|t| t.task == "d").unwrap();
        assert!(d.splits.is_empty());
        assert!(d.note.as_deref().unwrap().contains("accuracy"));
        let s = c.single_cost.unwrap();
        assert_eq!((s.models, s.parameters), (4, 300));
        assert!((s.train_seconds - 6.0).abs() < 1e-9);
        assert_eq!(c.multi_cost.unwrap().parameters, 100);

        let text = crate::report::render_comparison(&c);
        assert!(text.contains("Δp"), "{text}");
        assert!(text.contains("-10.83"), "{text}");
        assert!(
            text.contains("single-task") && text.contains("multi-task"),
            "{text}"
        );
        assert!(text.contains("0.33×"), "{text}");
        let md = crate::report::render_markdown_with(&metrics(), Some(&single));
        assert!(md.contains("## Multi-task vs single-task"), "{md}");
        assert!(md.contains("| Δp | mean |"), "{md}");
        assert!(md.contains("### Cost"), "{md}");
        assert!(!crate::report::render_markdown(&metrics()).contains("Δp"));
    }

    #[test]
    fn files_without_splits_or_costs_still_compare_on_the_headline_split() {
        let single = SingleTaskScores {
            description: None,
            tasks: [(
                "a".to_string(),
                SingleTaskScore {
                    metric: None,
                    split: None,
                    score: 0.8,
                    ci: None,
                    source: None,
                    splits: BTreeMap::new(),
                    cost: None,
                },
            )]
            .into(),
        };
        let text = serde_json::to_string(&single).unwrap();
        assert!(!text.contains("splits") && !text.contains("cost"), "{text}");
        let c = Comparison::new(&metrics(), &single);
        assert_eq!(c.delta_p.keys().collect::<Vec<_>>(), ["dev"]);
        assert!((c.delta_p["dev"].value - 12.5).abs() < 1e-9);
        assert_eq!(c.single_cost, None);
        // The multi-task model's cost alone, nothing to divide by.
        let costs = crate::report::cost_rows(&c);
        assert_eq!(costs.len(), 2);
        assert_eq!(costs[1][0], "multi-task");
    }

    #[test]
    fn parameters_are_counted_from_the_safetensors_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let header = br#"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[3,4],"data_offsets":[0,48]},"b":{"dtype":"F32","shape":[4],"data_offsets":[48,64]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.extend_from_slice(&[0u8; 64]);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(count_parameters(&path).unwrap(), 16);

        std::fs::write(&path, 1000u64.to_le_bytes()).unwrap();
        let err = count_parameters(&path).unwrap_err().to_string();
        assert!(err.contains("model.safetensors"), "{err}");
    }

    #[test]
    fn a_bad_file_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SingleTaskScores::FILE);
        std::fs::write(&path, r#"{"tasks": {"s": {"metric": "macro_f1"}}}"#).unwrap();
        let err = SingleTaskScores::read(&path).unwrap_err().to_string();
        assert!(err.contains("baselines.json"), "{err}");
    }
}
