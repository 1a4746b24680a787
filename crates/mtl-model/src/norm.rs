//! Layer normalization built from plain tensor ops.
//!
//! candle 0.11's `candle_nn::ops::layer_norm` and `candle_nn::LayerNorm`
//! pass no gradient to their input, silently: everything below them would
//! stop learning. Composing it from mean, sub, sqr, sqrt and div keeps every
//! step on the autograd tape.

use candle_core::{D, Tensor};

use crate::error::Result;
use crate::params::ParamStore;

/// The epsilon of PyTorch's layer norm (BERT checkpoints give their own).
pub const EPS: f64 = 1e-5;

pub struct LayerNorm {
    /// `(D,)`: the scale, or in the "1p" form the scale minus one.
    gamma: Tensor,
    /// `(D,)`, initialised to 0.
    beta: Tensor,
    one_plus: bool,
    eps: f64,
}

impl LayerNorm {
    /// The "1p" form of Megatron and Gemma, with parameters `gamma` (the
    /// scale minus one, initialised to 0) and `beta`: weight decay then
    /// pulls the scale towards 1, not towards 0, and the seeded
    /// `ParamStore` needs no constant-one init.
    pub fn new(p: &mut ParamStore, dim: usize) -> Result<Self> {
        Ok(Self {
            gamma: p.zeros("gamma", &[dim])?,
            beta: p.zeros("beta", &[dim])?,
            one_plus: true,
            eps: EPS,
        })
    }

    /// The form of pretrained checkpoints: parameters `weight` (the scale
    /// itself, initialised to 1) and `bias`, as PyTorch's `LayerNorm` names
    /// them, so that checkpoint tensors load as they are.
    pub fn plain(p: &mut ParamStore, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            gamma: p.ones("weight", &[dim])?,
            beta: p.zeros("bias", &[dim])?,
            one_plus: false,
            eps,
        })
    }

    /// Normalizes the last dimension of `xs`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if self.one_plus {
            layer_norm(xs, &self.gamma.affine(1.0, 1.0)?, &self.beta, self.eps)
        } else {
            layer_norm(xs, &self.gamma, &self.beta, self.eps)
        }
    }
}

/// `(x - mean) / sqrt(var + eps) * gamma + beta` over the last dimension,
/// with the biased variance (as PyTorch).
pub fn layer_norm(xs: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    let centered = xs.broadcast_sub(&xs.mean_keepdim(D::Minus1)?)?;
    let std = centered
        .sqr()?
        .mean_keepdim(D::Minus1)?
        .affine(1.0, eps)?
        .sqrt()?;
    Ok(centered
        .broadcast_div(&std)?
        .broadcast_mul(gamma)?
        .broadcast_add(beta)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_a_hand_computed_value() {
        let d = Device::Cpu;
        // Row [1, 2, 3, 6]: mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5.
        let x = Tensor::new(&[[1f32, 2.0, 3.0, 6.0], [5.0, 5.0, 5.0, 5.0]], &d).unwrap();
        let gamma = Tensor::new(&[1f32, 2.0, 1.0, 0.5], &d).unwrap();
        let beta = Tensor::new(&[0f32, 0.0, 1.0, 0.0], &d).unwrap();
        let y = layer_norm(&x, &gamma, &beta, 0.0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let s = 3.5f32.sqrt();
        let want = [-2.0 / s, 2.0 * (-1.0 / s), 1.0, 0.5 * 3.0 / s];
        for (got, want) in y[0].iter().zip(want) {
            assert!((got - want).abs() < 1e-5, "{:?} vs {want:?}", y[0]);
        }
        // A constant row is all zeros before beta; eps keeps it finite.
        let y = layer_norm(&x, &gamma, &beta, EPS)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(y[1], vec![0.0, 0.0, 1.0, 0.0]);
    }

    /// The reason this module exists: the input's gradient must match a
    /// finite difference, and gamma and beta must receive theirs.
    #[test]
    fn passes_the_right_gradient_to_its_input() {
        let d = Device::Cpu;
        let x = Var::new(&[[0.3f32, -1.2, 2.0, 0.7, 0.1]], &d).unwrap();
        let gamma = Var::new(&[1.0f32, 0.5, -1.0, 2.0, 1.5], &d).unwrap();
        let beta = Var::new(&[0.1f32, 0.0, 0.2, -0.3, 0.0], &d).unwrap();
        // A weighted sum, so the gradient is not zero by symmetry.
        let w = Tensor::new(&[[1.0f32, -2.0, 0.5, 3.0, -1.0]], &d).unwrap();
        let f = |x: &Tensor| {
            layer_norm(x, &gamma, &beta, EPS)
                .unwrap()
                .mul(&w)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = f(x.as_tensor()).backward().unwrap();
        let gx = grads.get(&x).unwrap().to_vec2::<f32>().unwrap()[0].clone();
        let h = 1e-2f32;
        for i in 0..5 {
            let mut bump = vec![0f32; 5];
            bump[i] = h;
            let dx = Tensor::from_vec(bump, (1, 5), &d).unwrap();
            let up = f(&x.add(&dx).unwrap()).to_scalar::<f32>().unwrap();
            let down = f(&x.sub(&dx).unwrap()).to_scalar::<f32>().unwrap();
            let numeric = (up - down) / (2.0 * h);
            assert!(
                (gx[i] - numeric).abs() < 2e-2,
                "d/dx{i}: autograd {} vs numeric {numeric}",
                gx[i]
            );
        }
        assert!(gx.iter().any(|g| g.abs() > 0.1), "{gx:?}");
        for (name, v) in [("gamma", &gamma), ("beta", &beta)] {
            let g = grads.get(v).unwrap().abs().unwrap().sum_all().unwrap();
            assert!(g.to_scalar::<f32>().unwrap() > 0.0, "{name}");
        }
    }
}
