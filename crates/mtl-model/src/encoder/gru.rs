//! One direction of one GRU layer, built like [`super::lstm`]: the input
//! projection of the whole sequence is one matmul, and the three gates'
//! recurrent terms come from one fused `(H, 3H)` matmul per step.
//!
//! The cell is PyTorch's: the reset gate scales the recurrent term of the
//! candidate *after* its matmul (`n = tanh(x W_in + b_in + r * (h W_hn +
//! b_hn))`), which is what lets the three recurrent terms share one matmul.

use candle_core::{D, Tensor};

use super::birnn::{Recurrent, masked_update, time_steps};
use crate::error::Result;
use crate::params::ParamStore;

pub struct GruDirection {
    /// `(in, 3H)`, gate order `[reset, update, candidate]`.
    w_ih: Tensor,
    /// `(3H,)`.
    b_ih: Tensor,
    /// `(H, 3H)`.
    w_hh: Tensor,
    /// `(3H,)`: a separate recurrent bias, because the candidate's part is
    /// scaled by the reset gate.
    b_hh: Tensor,
    hidden: usize,
    reverse: bool,
}

impl Recurrent for GruDirection {
    const NAME: &'static str = "gru";

    fn new(p: &mut ParamStore, input: usize, hidden: usize, reverse: bool) -> Result<Self> {
        // PyTorch's default: U(-1/sqrt(H), 1/sqrt(H)).
        let bound = 1.0 / (hidden as f64).sqrt();
        Ok(Self {
            w_ih: p.uniform("w_ih", &[input, 3 * hidden], bound)?,
            b_ih: p.uniform("b_ih", &[3 * hidden], bound)?,
            w_hh: p.uniform("w_hh", &[hidden, 3 * hidden], bound)?,
            b_hh: p.uniform("b_hh", &[3 * hidden], bound)?,
            hidden,
            reverse,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t, input) = xs.dims3()?;
        let hd = self.hidden;
        let proj = xs
            .reshape((b * t, input))?
            .matmul(&self.w_ih)?
            .broadcast_add(&self.b_ih)?
            .reshape((b, t, 3 * hd))?;
        let mut h = Tensor::zeros((b, hd), xs.dtype(), xs.device())?;
        let mut outputs: Vec<Tensor> = Vec::with_capacity(t);
        for step in time_steps(t, self.reverse) {
            let gi = proj.narrow(1, step, 1)?.squeeze(1)?;
            let gh = h.matmul(&self.w_hh)?.broadcast_add(&self.b_hh)?;
            let rz = candle_nn::ops::sigmoid(
                &gi.narrow(D::Minus1, 0, 2 * hd)?
                    .add(&gh.narrow(D::Minus1, 0, 2 * hd)?)?,
            )?;
            let r = rz.narrow(D::Minus1, 0, hd)?;
            let z = rz.narrow(D::Minus1, hd, hd)?;
            let n = gi
                .narrow(D::Minus1, 2 * hd, hd)?
                .add(&r.mul(&gh.narrow(D::Minus1, 2 * hd, hd)?)?)?
                .tanh()?;
            // h' = (1 - z) * n + z * h = n + z * (h - n).
            let h_new = n.add(&z.mul(&h.sub(&n)?)?)?;
            let m = mask.narrow(1, step, 1)?.squeeze(1)?;
            h = masked_update(&h, &h_new, &m)?;
            outputs.push(h.clone());
        }
        if self.reverse {
            outputs.reverse();
        }
        Ok(Tensor::stack(&outputs, 1)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// One step against the GRU equations computed by hand with scalars.
    #[test]
    fn one_step_matches_the_gru_equations() {
        let d = Device::Cpu;
        let mut p = ParamStore::new(4, &d);
        let cell = GruDirection::new(&mut p, 2, 1, false).unwrap();
        let xs = Tensor::new(&[[[0.5f32, -1.0]]], &d).unwrap();
        let mask = Tensor::ones((1, 1, 1), candle_core::DType::F32, &d).unwrap();
        let got = cell.forward(&xs, &mask).unwrap().flatten_all().unwrap();
        let got = got.to_vec1::<f32>().unwrap()[0];
        let w = cell.w_ih.to_vec2::<f32>().unwrap();
        let bi = cell.b_ih.to_vec1::<f32>().unwrap();
        let bh = cell.b_hh.to_vec1::<f32>().unwrap();
        let x = [0.5f32, -1.0];
        let pre = |g: usize| x[0] * w[0][g] + x[1] * w[1][g] + bi[g];
        let sig = |v: f32| 1.0 / (1.0 + (-v).exp());
        // h0 = 0, so the recurrent terms are the biases alone.
        let r = sig(pre(0) + bh[0]);
        let z = sig(pre(1) + bh[1]);
        let n = (pre(2) + r * bh[2]).tanh();
        let want = (1.0 - z) * n;
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }
}
