//! Regression scores in the target's own units: Pearson's r (the default
//! headline), Spearman's ρ, MSE, RMSE and MAE.
//!
//! A correlation is undefined when either side is constant (zero variance)
//! or fewer than two values are scored; it is then reported as 0, never
//! NaN, like every other undefined ratio here. That is also the value the
//! mean baseline gets: a constant prediction carries no information about
//! the order of the targets.

use serde::{Deserialize, Serialize};

use super::{MetricError, same_len};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    /// Texts scored.
    pub n: u64,
    /// Pearson correlation in `[-1, 1]`; 0 when undefined.
    pub pearson: f64,
    /// Spearman rank correlation (Pearson on ranks, ties get their average
    /// rank) in `[-1, 1]`; 0 when undefined.
    pub spearman: f64,
    /// Mean squared error, squared target units; 0 on no rows.
    #[serde(default)]
    pub mse: f64,
    /// Root mean squared error, target units; 0 on no rows.
    pub rmse: f64,
    /// Mean absolute error, target units; 0 on no rows.
    pub mae: f64,
}

fn check_finite(what: &'static str, xs: &[f64]) -> Result<(), MetricError> {
    match xs.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(MetricError::NonFinite {
            what,
            index,
            value: xs[index],
        }),
        None => Ok(()),
    }
}

/// Scores predicted values against gold values, one pair per text.
pub fn regression_metrics(gold: &[f64], pred: &[f64]) -> Result<RegressionMetrics, MetricError> {
    same_len("regression", gold.len(), pred.len())?;
    check_finite("gold value", gold)?;
    check_finite("predicted value", pred)?;
    let n = gold.len();
    let (mut sq, mut abs) = (0.0, 0.0);
    for (g, p) in gold.iter().zip(pred) {
        sq += (p - g) * (p - g);
        abs += (p - g).abs();
    }
    let mean = |x: f64| if n == 0 { 0.0 } else { x / n as f64 };
    Ok(RegressionMetrics {
        n: n as u64,
        pearson: pearson(gold, pred),
        spearman: pearson(&ranks(gold), &ranks(pred)),
        mse: mean(sq),
        rmse: mean(sq).sqrt(),
        mae: mean(abs),
    })
}

/// Pearson's r of two equally long, finite series; 0 when undefined.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return 0.0;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return 0.0;
    }
    // Rounding can push a perfect correlation a hair past 1.
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// 1-based ranks, ties sharing the mean of the ranks they span.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut out = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && x[order[end]] == x[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1 ..= end.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            out[i] = rank;
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;

    #[test]
    fn worked_example() {
        // gold 1 2 3 4, pred 2 2 4 3
        // errors 1 0 1 -1 -> MAE 3/4, RMSE sqrt(3/4)
        // pearson: gold mean 2.5, pred mean 2.75
        //   dx -1.5 -0.5 0.5 1.5   dy -0.75 -0.75 1.25 0.25
        //   sxy = 1.125 + 0.375 + 0.625 + 0.375 = 2.5
        //   sxx = 5, syy = 0.5625*2 + 1.5625 + 0.0625 = 2.75
        //   r = 2.5 / sqrt(13.75)
        // spearman: ranks gold 1 2 3 4, pred 1.5 1.5 4 3
        //   dy -1 -1 1.5 0.5 -> sxy = 1.5 + 0.5 + 0.75 + 0.75 = 3.5, syy = 4.5
        //   rho = 3.5 / sqrt(5 * 4.5)
        let m = regression_metrics(&[1.0, 2.0, 3.0, 4.0], &[2.0, 2.0, 4.0, 3.0]).unwrap();
        assert_eq!(m.n, 4);
        assert_close(m.mae, 0.75);
        assert_close(m.mse, 0.75);
        assert_close(m.rmse, 0.75f64.sqrt());
        assert_close(m.pearson, 2.5 / 13.75f64.sqrt());
        assert_close(m.spearman, 3.5 / 22.5f64.sqrt());
    }

    #[test]
    fn tied_values_share_their_average_rank() {
        assert_eq!(
            ranks(&[10.0, 20.0, 10.0, 30.0, 20.0, 10.0]),
            [2.0, 4.5, 2.0, 6.0, 4.5, 2.0]
        );
        assert_eq!(ranks(&[]), Vec::<f64>::new());
    }

    #[test]
    fn spearman_sees_monotone_relations_pearson_does_not() {
        // pred = gold^3: same order, not linear.
        let gold = [1.0, 2.0, 3.0, 4.0, 5.0];
        let pred: Vec<f64> = gold.iter().map(|g: &f64| g.powi(3)).collect();
        let m = regression_metrics(&gold, &pred).unwrap();
        assert_close(m.spearman, 1.0);
        assert!(m.pearson < 0.99, "{m:?}");
        // Reversed order: -1.
        let m = regression_metrics(&gold, &[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap();
        assert_close(m.pearson, -1.0);
        assert_close(m.spearman, -1.0);
    }

    #[test]
    fn constant_predictions_have_zero_correlation_not_nan() {
        // The mean baseline: gold 1 2 6, always 3 -> errors 2 1 -3.
        let m = regression_metrics(&[1.0, 2.0, 6.0], &[3.0; 3]).unwrap();
        assert_eq!((m.pearson, m.spearman), (0.0, 0.0));
        assert_close(m.mae, 2.0);
        assert_close(m.mse, 14.0 / 3.0);
        assert_close(m.rmse, (14.0f64 / 3.0).sqrt());
        // Constant gold too, and fewer than two rows.
        let m = regression_metrics(&[2.0, 2.0], &[1.0, 3.0]).unwrap();
        assert_eq!((m.pearson, m.spearman), (0.0, 0.0));
        let m = regression_metrics(&[2.0], &[1.0]).unwrap();
        assert_eq!((m.pearson, m.rmse, m.mae), (0.0, 1.0, 1.0));
        let m = regression_metrics(&[], &[]).unwrap();
        assert_eq!((m.n, m.pearson, m.rmse, m.mae), (0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn misuse_and_non_finite_values_are_errors() {
        assert!(matches!(
            regression_metrics(&[1.0], &[]).unwrap_err(),
            MetricError::LengthMismatch { .. }
        ));
        let err = regression_metrics(&[1.0, 2.0], &[0.0, f64::NAN]).unwrap_err();
        assert!(
            matches!(err, MetricError::NonFinite { index: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("predicted value"), "{err}");
    }
}
