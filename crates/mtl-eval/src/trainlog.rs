//! The training curves in `train/log.jsonl`, read for the HTML report.
//!
//! The trainer's log grows new fields over time, so this reader takes what
//! it recognises and skips the rest: a line with `step` and a `tasks`
//! object of numbers gives each task's training loss at that step (the
//! total is `loss`); a line with `step` and a `dev_score` object gives each
//! task's dev score. Lines that are not JSON objects are counted, not
//! fatal; a missing or unreadable log is an empty one. The report is
//! secondary to the metrics, so nothing here can fail the stage.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

/// One curve: `(step, value)`, in log order.
pub type Curve = Vec<(f64, f64)>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrainLog {
    /// Per task, its training loss at each step that trained it.
    pub loss: BTreeMap<String, Curve>,
    /// The total objective per step.
    pub total_loss: Curve,
    /// Per task, its dev score at each evaluation.
    pub dev: BTreeMap<String, Curve>,
    /// Per task, the name of the dev metric (train's `report.json`).
    pub dev_metric: BTreeMap<String, String>,
    /// Lines that were not JSON objects.
    pub bad_lines: usize,
    /// Whether the log file was found.
    pub found: bool,
}

impl TrainLog {
    pub const FILE: &'static str = "log.jsonl";

    /// Reads `path` (`train/log.jsonl`), and `report.json` beside it for
    /// the dev metric names.
    pub fn read(path: &Path) -> TrainLog {
        let mut log = match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut log = TrainLog::parse(&text);
                log.found = true;
                log
            }
            Err(_) => TrainLog::default(),
        };
        if let Some(dir) = path.parent()
            && let Ok(text) = std::fs::read_to_string(dir.join("report.json"))
            && let Ok(v) = serde_json::from_str::<Value>(&text)
            && let Some(m) = v.get("dev_metric").and_then(Value::as_object)
        {
            for (task, name) in m {
                if let Some(name) = name.as_str() {
                    log.dev_metric.insert(task.clone(), name.to_string());
                }
            }
        }
        log
    }

    pub fn parse(text: &str) -> TrainLog {
        let mut log = TrainLog::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(line) else {
                log.bad_lines += 1;
                continue;
            };
            let Some(step) = obj.get("step").and_then(Value::as_f64) else {
                continue;
            };
            if let Some(tasks) = obj.get("tasks").and_then(Value::as_object) {
                for (task, v) in tasks {
                    if let Some(v) = v.as_f64().filter(|v| v.is_finite()) {
                        log.loss.entry(task.clone()).or_default().push((step, v));
                    }
                }
                if let Some(v) = obj
                    .get("loss")
                    .and_then(Value::as_f64)
                    .filter(|v| v.is_finite())
                {
                    log.total_loss.push((step, v));
                }
            }
            if let Some(scores) = obj.get("dev_score").and_then(Value::as_object) {
                for (task, v) in scores {
                    if let Some(v) = v.as_f64().filter(|v| v.is_finite()) {
                        log.dev.entry(task.clone()).or_default().push((step, v));
                    }
                }
            }
        }
        log
    }

    pub fn is_empty(&self) -> bool {
        self.loss.is_empty() && self.dev.is_empty()
    }
}

/// A trailing moving average over `window` points, to see a trend through
/// the noise of per-batch losses.
pub fn smooth(curve: &[(f64, f64)], window: usize) -> Curve {
    let window = window.max(1);
    let mut out = Vec::with_capacity(curve.len());
    let mut sum = 0.0;
    for (i, &(x, y)) in curve.iter().enumerate() {
        sum += y;
        if i >= window {
            sum -= curve[i - window].1;
        }
        out.push((x, sum / (i + 1).min(window) as f64));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_losses_and_dev_scores_and_skips_the_rest() {
        let text = r#"{"epoch":1,"step":0,"sampling":{"a":0.5},"temperature":1.0}
{"epoch":1,"loss":2.0,"lr":0.1,"step":0,"tasks":{"a":1.5,"b":0.5}}
not json
{"step":1,"task":"a","loss":1.0,"tasks":{"a":1.0},"grad_norm":3,"new_field":[1,2]}
{"step":2,"task":"b","skipped":"no labelled position in the batch"}
{"evaluation":1,"epoch":1,"step":2,"train_loss":1.2,"dev_score":{"a":0.5,"b":0.25},"best":true}
{"tasks":{"a":9.0}}
[1, 2]
"#;
        let log = TrainLog::parse(text);
        assert_eq!(log.loss["a"], vec![(0.0, 1.5), (1.0, 1.0)]);
        assert_eq!(log.loss["b"], vec![(0.0, 0.5)]);
        assert_eq!(log.total_loss, vec![(0.0, 2.0), (1.0, 1.0)]);
        assert_eq!(log.dev["b"], vec![(2.0, 0.25)]);
        assert_eq!(log.bad_lines, 2);
        assert!(!log.found);
    }

    #[test]
    fn a_missing_log_is_empty() {
        let log = TrainLog::read(Path::new("/nonexistent/train/log.jsonl"));
        assert!(log.is_empty() && !log.found);
    }

    #[test]
    fn moving_average() {
        let c = vec![(0.0, 1.0), (1.0, 3.0), (2.0, 5.0), (3.0, 7.0)];
        assert_eq!(
            smooth(&c, 2),
            vec![(0.0, 1.0), (1.0, 2.0), (2.0, 4.0), (3.0, 6.0)]
        );
        assert_eq!(smooth(&c, 1), c);
    }
}
