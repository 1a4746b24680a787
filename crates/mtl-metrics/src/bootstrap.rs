//! Percentile bootstrap confidence intervals.
//!
//! A score's 95% interval comes from [`RESAMPLES`] resamples of the scored
//! examples, drawn with replacement, each as large as the original; the
//! metric is recomputed on every resample and the interval is the 2.5th and
//! 97.5th percentile of those values (linear interpolation between order
//! statistics, numpy's default). The unit of resampling is the example the
//! task scores: a text for sentence-level tasks, a whole sentence for token
//! tasks (its words and entities move together, since they are not
//! independent).
//!
//! The draws come from SplitMix64 seeded with [`SEED`] mixed with a key
//! (the task and split), so an interval is the same on every run and every
//! machine, and two tasks do not share their resamples.

/// Resamples per interval.
pub const RESAMPLES: usize = 1000;
/// Confidence level of the intervals.
pub const LEVEL: f64 = 0.95;
/// Base seed of the resampling; [`seed_for`] mixes a key into it.
pub const SEED: u64 = 0x6d74_6c2d_6576_616c; // "mtl-eval"

pub use mtl_core::rng::SplitMix64;

/// [`SEED`] mixed with `key` (FNV-1a over its bytes).
pub fn seed_for(key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    SEED ^ h
}

/// The `q` quantile (`0..=1`) of sorted values, interpolating linearly
/// between neighbours; 0 for no values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

/// The [`LEVEL`] percentile interval of `stat` over `resamples` bootstrap
/// resamples of `n` examples. `stat` gets the example indices of one
/// resample (with repeats) and returns the metric on them. `None` when
/// there is nothing to resample.
pub fn interval(
    n: usize,
    resamples: usize,
    seed: u64,
    mut stat: impl FnMut(&[usize]) -> f64,
) -> Option<[f64; 2]> {
    if n == 0 || resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64::new(seed);
    let mut idx = vec![0usize; n];
    let mut values = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for slot in idx.iter_mut() {
            *slot = rng.below(n);
        }
        let v = stat(&idx);
        // A metric is total (undefined ratios are 0), but stay safe.
        if v.is_finite() {
            values.push(v);
        }
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - LEVEL) / 2.0;
    Some([quantile(&values, tail), quantile(&values, 1.0 - tail)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;

    #[test]
    fn draws_stay_in_range_and_cover_it() {
        let mut r = SplitMix64::new(7);
        let mut seen = [0u32; 5];
        for _ in 0..5000 {
            seen[r.below(5)] += 1;
        }
        assert!(seen.iter().all(|&c| (800..1200).contains(&c)), "{seen:?}");
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // numpy.quantile([1, 2, 3, 4], 0.25) = 1.75, 0.975 -> 3.925
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_close(quantile(&v, 0.25), 1.75);
        assert_close(quantile(&v, 0.975), 3.925);
        assert_close(quantile(&v, 0.0), 1.0);
        assert_close(quantile(&v, 1.0), 4.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
        assert_eq!(quantile(&[2.5], 0.1), 2.5);
    }

    #[test]
    fn interval_of_a_mean_brackets_it_and_is_deterministic() {
        // 100 examples, 30 of them right: accuracy 0.3, standard error
        // sqrt(0.3 * 0.7 / 100) ~ 0.046, so the 95% interval is about
        // 0.21..0.39.
        let right: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i % 10 < 3))).collect();
        let acc = |idx: &[usize]| idx.iter().map(|&i| right[i]).sum::<f64>() / idx.len() as f64;
        let [lo, hi] = interval(100, RESAMPLES, seed_for("t/dev"), acc).unwrap();
        assert!(lo < 0.3 && 0.3 < hi, "{lo} {hi}");
        assert!(
            (0.19..0.25).contains(&lo) && (0.35..0.41).contains(&hi),
            "{lo} {hi}"
        );
        assert_eq!(
            interval(100, RESAMPLES, seed_for("t/dev"), acc),
            Some([lo, hi])
        );
        // Another key draws other resamples.
        let first = |key: &str| {
            let mut seen = Vec::new();
            interval(100, 1, seed_for(key), |idx| {
                seen = idx.to_vec();
                0.0
            });
            seen
        };
        assert_eq!(first("t/dev"), first("t/dev"));
        assert_ne!(first("t/dev"), first("u/dev"));
    }

    #[test]
    fn constant_metric_has_a_point_interval_and_empty_input_none() {
        assert_eq!(interval(5, 50, 1, |_| 0.5), Some([0.5, 0.5]));
        assert_eq!(interval(0, 50, 1, |_| 0.5), None);
    }
}
