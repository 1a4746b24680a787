//! Optimiser step pieces: global-norm gradient clipping and the learning-rate
//! schedule (linear warmup, then linear decay to zero).

use candle_core::Var;
use candle_core::backprop::GradStore;

use crate::error::Result;

/// Scales all gradients so their global L2 norm is at most `max_norm`.
/// Returns the norm before clipping.
pub fn clip_grad_norm(vars: &[Var], grads: &mut GradStore, max_norm: f64) -> Result<f64> {
    let mut sq = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
        }
    }
    let norm = sq.sqrt();
    if norm > max_norm && norm.is_finite() {
        let scale = max_norm / norm;
        for v in vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                let scaled = g.affine(scale, 0.0)?;
                grads.insert(v.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}

/// Learning rate at `step` (0-based) of `total`: warmup over the first 10%.
pub fn lr_at(base: f64, step: usize, total: usize) -> f64 {
    let warmup = (total / 10).max(1);
    if step < warmup {
        base * (step + 1) as f64 / warmup as f64
    } else {
        let rest = (total - warmup).max(1) as f64;
        base * (1.0 - (step - warmup) as f64 / rest).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn schedule_warms_up_then_decays() {
        assert!((lr_at(1.0, 0, 100) - 0.1).abs() < 1e-9);
        assert!((lr_at(1.0, 9, 100) - 1.0).abs() < 1e-9);
        assert!(lr_at(1.0, 50, 100) < 1.0);
        assert!(lr_at(1.0, 99, 100) < 0.02);
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let v = Var::from_tensor(&Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap()).unwrap();
        let loss = v
            .as_tensor()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .affine(10.0, 0.0)
            .unwrap();
        let mut grads = loss.backward().unwrap();
        let vars = vec![v.clone()];
        let before = clip_grad_norm(&vars, &mut grads, 1.0).unwrap();
        assert!((before - (20f64.powi(2) + 40f64.powi(2)).sqrt()).abs() < 1e-3);
        let g = grads.get(v.as_tensor()).unwrap();
        let after = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .sqrt();
        assert!((after - 1.0).abs() < 1e-5);
    }
}
