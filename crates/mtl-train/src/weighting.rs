//! How the per-task losses of a batch combine into one (`train.weighting`).
//! Per-class weights (`labels.json`) apply inside each task's loss in every
//! strategy; the tasks' `weight`s only in `static`.
//!
//! * **static**: `Σ w_t · L_t` with the tasks' configured `weight`s.
//! * **uncertainty** (Kendall, Gal & Cipolla 2018): one learned log-variance
//!   `s_t = log σ_t²` per task, trained with the heads' learning rate and no
//!   weight decay, starting at 0. Following the paper's equations (7) and
//!   (10), with `log σ = ½ s`:
//!   `Σ c_t · exp(-s_t) · L_t + ½ s_t`, `c_t = ½` for regression (a Gaussian
//!   likelihood) and 1 for the classification-like losses (cross-entropy,
//!   binary cross-entropy). At the optimum `exp(s_t) = c_t · 2 L_t`, so a
//!   task with a large loss is down-weighted. The trainer applies the model
//!   gradient through the task weights `c_t · exp(-s_t)` and the
//!   `s_t` gradient `½ - c_t · exp(-s_t) · L_t` directly (both exact).
//! * **dwa** (dynamic weight average, Liu, Johns & Davison 2019):
//!   `w_t = K · exp(r_t / T) / Σ_j exp(r_j / T)` with `r_t = L_t(e-1) /
//!   L_t(e-2)` the ratio of the task's mean training loss in the last two
//!   epochs, `K` the number of tasks and `T = train.temperature`; every
//!   weight is 1 during the first two epochs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The numbers uncertainty weighting needs for one task: the weight of its
/// loss in the model gradient, its term of the objective, and the gradient
/// of that term with respect to `s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UncertaintyTerm {
    pub weight: f64,
    pub objective: f64,
    pub grad_s: f64,
}

/// Kendall et al.'s term for a task with log-variance `s` and loss `loss`.
pub fn uncertainty_term(s: f64, loss: f64, regression: bool) -> UncertaintyTerm {
    let c = if regression { 0.5 } else { 1.0 };
    let weight = c * (-s).exp();
    UncertaintyTerm {
        weight,
        objective: weight * loss + 0.5 * s,
        grad_s: 0.5 - weight * loss,
    }
}

/// DWA's weights from the tasks' mean losses of the last two epochs
/// (`last` = e-1, `before` = e-2). Without two finished epochs, or for a
/// task missing from either (or with a zero loss), the ratio is 1.
pub fn dwa_weights(
    tasks: &[String],
    last: Option<&BTreeMap<String, f64>>,
    before: Option<&BTreeMap<String, f64>>,
    temperature: f64,
) -> BTreeMap<String, f64> {
    let (Some(last), Some(before)) = (last, before) else {
        return tasks.iter().map(|t| (t.clone(), 1.0)).collect();
    };
    let ratio = |t: &String| match (last.get(t), before.get(t)) {
        (Some(&a), Some(&b)) if b > 0.0 && a.is_finite() && b.is_finite() => a / b,
        _ => 1.0,
    };
    let exps: Vec<f64> = tasks
        .iter()
        .map(|t| (ratio(t) / temperature).exp())
        .collect();
    let sum: f64 = exps.iter().sum();
    let k = tasks.len() as f64;
    tasks
        .iter()
        .zip(exps)
        .map(|(t, e)| (t.clone(), k * e / sum))
        .collect()
}

/// Mean training loss per task and epoch, as DWA needs it; serializable for
/// checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DwaState {
    /// Per task, the summed loss and the number of steps of this epoch.
    pub current: BTreeMap<String, (f64, usize)>,
    /// The mean losses of the last two finished epochs, oldest first.
    pub finished: Vec<BTreeMap<String, f64>>,
}

impl DwaState {
    pub fn add(&mut self, task: &str, loss: f64) {
        let e = self.current.entry(task.to_string()).or_default();
        e.0 += loss;
        e.1 += 1;
    }

    /// Closes the epoch: its means become `L(e-1)`. A task that did not
    /// train in it keeps its previous mean.
    pub fn end_epoch(&mut self) {
        let mut means: BTreeMap<String, f64> = self.finished.last().cloned().unwrap_or_default();
        for (t, (sum, n)) in std::mem::take(&mut self.current) {
            if n > 0 {
                means.insert(t, sum / n as f64);
            }
        }
        self.finished.push(means);
        if self.finished.len() > 2 {
            self.finished.remove(0);
        }
    }

    pub fn weights(&self, tasks: &[String], temperature: f64) -> BTreeMap<String, f64> {
        let n = self.finished.len();
        if n < 2 {
            return dwa_weights(tasks, None, None, temperature);
        }
        dwa_weights(
            tasks,
            self.finished.get(n - 1),
            self.finished.get(n - 2),
            temperature,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &[&str]) -> Vec<String> {
        t.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn uncertainty_terms_match_hand_computed_values() {
        // s = 0, L = 2: classification 1·2 + 0 and d/ds = ½ - 2.
        let t = uncertainty_term(0.0, 2.0, false);
        assert_eq!((t.weight, t.objective, t.grad_s), (1.0, 2.0, -1.5));
        // Regression halves the loss term: ½·2 = 1, d/ds = ½ - 1.
        let t = uncertainty_term(0.0, 2.0, true);
        assert_eq!((t.weight, t.objective, t.grad_s), (0.5, 1.0, -0.5));
        // s = ln 4, L = 2: weight ¼, objective ½ + ln 2, d/ds = 0.
        let t = uncertainty_term(4f64.ln(), 2.0, false);
        assert!((t.weight - 0.25).abs() < 1e-12);
        assert!((t.objective - (0.5 + 2f64.ln())).abs() < 1e-12);
        assert!(t.grad_s.abs() < 1e-12);
        // The analytic gradient agrees with a finite difference.
        let (s, l) = (0.3, 1.7);
        let h = 1e-6;
        let fd = (uncertainty_term(s + h, l, true).objective
            - uncertainty_term(s - h, l, true).objective)
            / (2.0 * h);
        assert!((fd - uncertainty_term(s, l, true).grad_s).abs() < 1e-6);
    }

    #[test]
    fn dwa_matches_hand_computed_values() {
        let tasks = names(&["a", "b"]);
        let last = BTreeMap::from([("a".to_string(), 1.0), ("b".to_string(), 2.0)]);
        let before = BTreeMap::from([("a".to_string(), 2.0), ("b".to_string(), 2.0)]);
        let w = dwa_weights(&tasks, Some(&last), Some(&before), 2.0);
        // r = (0.5, 1); exp(r/2) = (1.28403, 1.64872); K = 2.
        let (ea, eb) = (0.25f64.exp(), 0.5f64.exp());
        assert!((w["a"] - 2.0 * ea / (ea + eb)).abs() < 1e-12);
        assert!((w["b"] - 2.0 * eb / (ea + eb)).abs() < 1e-12);
        assert!((w["a"] - 0.875_647).abs() < 1e-6, "{w:?}");
        assert!((w["a"] + w["b"] - 2.0).abs() < 1e-12);
        // The task whose loss fell less gets more weight.
        assert!(w["b"] > w["a"]);
    }

    #[test]
    fn dwa_is_uniform_for_the_first_two_epochs() {
        let tasks = names(&["a", "b", "c"]);
        let mut s = DwaState::default();
        assert!(s.weights(&tasks, 2.0).values().all(|&w| w == 1.0));
        s.add("a", 4.0);
        s.add("a", 2.0);
        s.add("b", 1.0);
        s.end_epoch();
        assert_eq!(s.finished[0]["a"], 3.0);
        assert!(s.weights(&tasks, 2.0).values().all(|&w| w == 1.0));
        s.add("a", 1.5);
        s.add("b", 1.0);
        s.end_epoch();
        // a: 1.5 / 3 = 0.5, b: 1, c: never trained → 1.
        let w = s.weights(&tasks, 1.0);
        let (ea, e1) = (0.5f64.exp(), 1f64.exp());
        let sum = ea + 2.0 * e1;
        assert!((w["a"] - 3.0 * ea / sum).abs() < 1e-12, "{w:?}");
        assert!((w["c"] - 3.0 * e1 / sum).abs() < 1e-12, "{w:?}");
        s.end_epoch();
        assert_eq!(s.finished.len(), 2);
        // An epoch without training keeps the last means: ratios 1.
        assert!(
            s.weights(&tasks, 2.0)
                .values()
                .all(|&w| (w - 1.0).abs() < 1e-12)
        );
    }
}
