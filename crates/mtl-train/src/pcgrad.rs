//! PCGrad ("gradient surgery", Yu et al. 2020): when two tasks' gradients
//! conflict (negative dot product), each is projected onto the normal plane
//! of the other before they are summed:
//! `g_i ← g_i − (g_i·g_j / |g_j|²) g_j` for every other task `j`, taken in
//! a random order (from the step's seeded generator), against the
//! unprojected `g_j`.
//!
//! It needs one gradient per task, so a batch that carries `k ≥ 2` tasks
//! (rows with several labels, such as EWT's tag sets) costs `k` forward and
//! backward passes instead of one; single-task batches are untouched.
//! (`MultiTaskModel::loss` returns a single graph for all tasks, so each
//! task's loss is recomputed with the same dropout masks.)

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// The sum of the projected gradients of `grads` (one flat vector per
/// task, all of one length), and how many projections were made.
pub fn combine(grads: &[Vec<f32>], rng: &mut StdRng) -> (Vec<f32>, usize) {
    let n = grads.first().map_or(0, Vec::len);
    let mut sum = vec![0f64; n];
    let mut projections = 0;
    let norms: Vec<f64> = grads.iter().map(|g| dot(g, g)).collect();
    for (i, gi) in grads.iter().enumerate() {
        let mut g: Vec<f64> = gi.iter().map(|&x| f64::from(x)).collect();
        let mut others: Vec<usize> = (0..grads.len()).filter(|&j| j != i).collect();
        others.shuffle(rng);
        for j in others {
            if norms[j] <= 0.0 {
                continue;
            }
            let d: f64 = g
                .iter()
                .zip(&grads[j])
                .map(|(a, &b)| a * f64::from(b))
                .sum();
            if d < 0.0 {
                let scale = d / norms[j];
                for (a, &b) in g.iter_mut().zip(&grads[j]) {
                    *a -= scale * f64::from(b);
                }
                projections += 1;
            }
        }
        for (s, a) in sum.iter_mut().zip(g) {
            *s += a;
        }
    }
    (sum.into_iter().map(|x| x as f32).collect(), projections)
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(0)
    }

    #[test]
    fn conflicting_gradients_are_projected() {
        // g1·g2 = -1 < 0. g1 - (-1/2)·g2 = (0.5, 0.5); g2 - (-1/1)·g1 = (0, 1).
        let (sum, n) = combine(&[vec![1.0, 0.0], vec![-1.0, 1.0]], &mut rng());
        assert_eq!(n, 2);
        assert!(
            (sum[0] - 0.5).abs() < 1e-6 && (sum[1] - 1.5).abs() < 1e-6,
            "{sum:?}"
        );
        // Each projected gradient is orthogonal to the other task's.
        let g1 = [0.5f32, 0.5];
        assert!(dot(&g1, &[-1.0, 1.0]).abs() < 1e-9);
    }

    #[test]
    fn agreeing_gradients_are_summed_unchanged() {
        let (sum, n) = combine(&[vec![1.0, 0.0], vec![1.0, 1.0]], &mut rng());
        assert_eq!(n, 0);
        assert_eq!(sum, [2.0, 1.0]);
        // A zero gradient projects nothing.
        let (sum, n) = combine(&[vec![1.0, 2.0], vec![0.0, 0.0]], &mut rng());
        assert_eq!((sum, n), (vec![1.0, 2.0], 0));
    }

    #[test]
    fn opposite_gradients_cancel_to_zero() {
        // g2 = -g1: each projection removes everything.
        let (sum, n) = combine(&[vec![2.0, -1.0], vec![-2.0, 1.0]], &mut rng());
        assert_eq!(n, 2);
        assert!(sum.iter().all(|x| x.abs() < 1e-6), "{sum:?}");
    }

    #[test]
    fn three_tasks_depend_on_the_seeded_order_only() {
        let g = vec![vec![1.0, 0.2], vec![-0.8, 1.0], vec![-0.3, -1.0]];
        let a = combine(&g, &mut StdRng::seed_from_u64(4));
        let b = combine(&g, &mut StdRng::seed_from_u64(4));
        assert_eq!(a, b);
        assert!(a.1 >= 2);
        // The plain sum is (-0.1, 0.2); surgery changes it.
        assert!((a.0[0] + 0.1).abs() > 1e-3 || (a.0[1] - 0.2).abs() > 1e-3);
    }
}
