//! Mutual information between discrete variables, and the equal-frequency
//! binning that makes a numeric feature (or a regression target) discrete.

use std::collections::HashMap;

/// The bin of each value among `bins` equal-frequency bins. The cut points
/// are the `k / bins` quantiles of the sorted values (`k = 1..bins`); a
/// value's bin is the number of distinct cut points at or below it, so
/// equal values always share a bin and a constant column has one bin (heavy
/// ties give fewer than `bins` bins rather than splitting equal values).
pub fn equal_frequency_bins(values: &[f64], bins: usize) -> Vec<usize> {
    let n = values.len();
    if n == 0 || bins < 2 {
        return vec![0; n];
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut cuts: Vec<f64> = (1..bins).map(|k| sorted[k * n / bins]).collect();
    cuts.dedup();
    values
        .iter()
        .map(|v| cuts.partition_point(|c| c.total_cmp(v).is_le()))
        .collect()
}

/// Plug-in mutual information, in nats, of two paired discrete samples:
/// `sum p(x,y) ln(p(x,y) / (p(x) p(y)))`. 0 for empty input.
pub fn mutual_information(x: &[usize], y: &[usize]) -> f64 {
    let n = x.len().min(y.len());
    if n == 0 {
        return 0.0;
    }
    let mut joint: HashMap<(usize, usize), f64> = HashMap::new();
    let mut px: HashMap<usize, f64> = HashMap::new();
    let mut py: HashMap<usize, f64> = HashMap::new();
    for (&a, &b) in x.iter().zip(y) {
        *joint.entry((a, b)).or_default() += 1.0;
        *px.entry(a).or_default() += 1.0;
        *py.entry(b).or_default() += 1.0;
    }
    let n = n as f64;
    // Summed in key order: a HashMap's iteration order would make the last
    // bits of the result differ between runs.
    let mut cells: Vec<((usize, usize), f64)> = joint.into_iter().collect();
    cells.sort_by_key(|(k, _)| *k);
    let mi: f64 = cells
        .into_iter()
        .map(|((a, b), c)| c / n * (c * n / (px[&a] * py[&b])).ln())
        .sum();
    // Rounding can leave a hair below zero for independent samples.
    mi.max(0.0)
}

/// Entropy in nats of a discrete sample.
pub fn entropy(y: &[usize]) -> f64 {
    mutual_information(y, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn independent_variables_share_no_information() {
        // Every (x, y) pair occurs equally often: exactly independent.
        let x: Vec<usize> = (0..400).map(|i| i % 4).collect();
        let y: Vec<usize> = (0..400).map(|i| (i / 4) % 2).collect();
        assert!(mutual_information(&x, &y).abs() < 1e-12);
        // A constant carries nothing either.
        assert_eq!(mutual_information(&x, &[0; 400]), 0.0);
    }

    #[test]
    fn identical_variables_share_their_entropy() {
        let y: Vec<usize> = (0..300).map(|i| i % 3).collect();
        let h = 3f64.ln();
        assert!((entropy(&y) - h).abs() < 1e-12);
        assert!((mutual_information(&y, &y) - h).abs() < 1e-12);
        // A feature that is a relabelling of y carries all of H(y): 0.5 ln 2
        // + 0.25 ln 4 + 0.25 ln 4 for p = (1/2, 1/4, 1/4).
        let y = [0, 0, 1, 2];
        let x = [7, 7, 3, 5];
        let h = 0.5 * 2f64.ln() + 0.5 * 4f64.ln();
        assert!((mutual_information(&x, &y) - h).abs() < 1e-12);
    }

    #[test]
    fn hand_computed_partial_information() {
        // x = (0, 0, 1, 1), y = (0, 1, 1, 1): p(0,0) = p(0,1) = 1/4,
        // p(1,1) = 1/2; p(x) = (1/2, 1/2), p(y) = (1/4, 3/4), so
        // MI = 1/4 ln(1/4 / (1/2 * 1/4)) + 1/4 ln(1/4 / (1/2 * 3/4))
        //    + 1/2 ln(1/2 / (1/2 * 3/4)).
        let mi = mutual_information(&[0, 0, 1, 1], &[0, 1, 1, 1]);
        let want = 0.25 * 2f64.ln() + 0.25 * (2.0f64 / 3.0).ln() + 0.5 * (4.0f64 / 3.0).ln();
        assert!((mi - want).abs() < 1e-12, "{mi} vs {want}");
    }

    #[test]
    fn bins_hold_equal_shares_and_keep_ties_together() {
        let v: Vec<f64> = (0..100).map(|i| i as f64).collect();
        let b = equal_frequency_bins(&v, 4);
        for k in 0..4 {
            assert_eq!(b.iter().filter(|&&x| x == k).count(), 25);
        }
        // Monotone: a larger value never lands in a lower bin.
        assert!(b.windows(2).all(|w| w[0] <= w[1]));
        let b = equal_frequency_bins(&[2.0; 5], 3);
        assert!(b.iter().all(|&x| x == b[0]), "one bin: {b:?}");
        let b = equal_frequency_bins(&[0.0, 0.0, 0.0, 1.0, 1.0, 0.0], 10);
        assert_eq!(b[0], b[1]);
        assert_ne!(b[0], b[3]);
        assert_eq!(b[3], b[4]);
        // A binary feature equal to the label recovers H(label) = ln 2.
        let x = equal_frequency_bins(&[0.0, 1.0, 0.0, 1.0], 10);
        assert!((mutual_information(&x, &[0, 1, 0, 1]) - 2f64.ln()).abs() < 1e-12);
    }
}
