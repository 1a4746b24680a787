//! `train/report.json`: what the run did, for people and for `xtask`.

use std::collections::BTreeMap;

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct TrainReport {
    pub parameters: usize,
    pub steps: usize,
    /// Epochs started (the last one may be partial).
    pub epochs: usize,
    pub steps_per_epoch: usize,
    pub best_epoch: usize,
    pub best_step: usize,
    /// Per task, its headline on dev at the best evaluation (empty without
    /// dev rows); which headline is in `dev_metric`.
    pub best_dev_score: BTreeMap<String, f64>,
    /// Their mean, lower-is-better headlines negated: what model selection
    /// and early stopping compare. `None` without dev rows.
    pub best_dev_mean: Option<f64>,
    /// What chose the weights: `dev`, or none (no dev rows: the last
    /// weights).
    pub selected_on: String,
    /// Per task, the name of its headline ([`crate::score`]).
    pub dev_metric: BTreeMap<String, String>,
    pub evaluations: usize,
    /// `train.patience` evaluations passed without a better dev mean.
    pub stopped_early: bool,
    /// The step a `--resume` continued from, if any.
    pub resumed_from_step: Option<usize>,
    /// Training time, across resumed sessions.
    pub seconds: f64,
    pub tokens_per_second: f64,
    /// The weighted objective of the first step and the mean of the last
    /// finished epoch (uncertainty weighting's objective can be negative).
    pub first_loss: f32,
    pub last_epoch_loss: f32,
    /// The task weights in force at the end (static: the configured ones;
    /// dwa: the last epoch's; uncertainty: `c · exp(-s)`).
    pub task_weights: BTreeMap<String, f64>,
    /// Uncertainty weighting's learned `s_t = log σ_t²`.
    pub log_variances: Option<BTreeMap<String, f64>>,
    /// Gradient projections PCGrad made (0 without it).
    pub pcgrad_projections: usize,
    /// Batches split to respect `train.max_tokens`.
    pub split_batches: usize,
    /// Peak resident memory of the process (Linux `VmHWM`); `None`
    /// elsewhere.
    pub peak_rss_bytes: Option<u64>,
    /// Per multilabel task, the decision thresholds tuned on dev and the
    /// dev F1s before and after (empty with `train.tune_thresholds = false`
    /// or no multilabel task); see [`crate::thresholds`].
    pub thresholds: BTreeMap<String, crate::thresholds::TaskThresholds>,
}

/// The process's peak resident set size, from `/proc/self/status`.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let mut parts = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status =
            "Name:\tmtl-train\nVmPeak:\t  99999 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(12345 * 1024));
        assert_eq!(parse_vm_hwm("Name: x\n"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().unwrap() > 1 << 20);
        }
    }
}
