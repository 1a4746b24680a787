//! One direction of one LSTM layer.
//!
//! candle's stock `rnn::lstm` runs the input projection inside the time loop.
//! Here the input projection of the whole sequence is one matmul, and the
//! four gates come from one fused `(H, 4H)` recurrent matmul per step, which
//! leaves only the unavoidable sequential work in the loop.

use candle_core::{D, DType, Tensor};

use super::birnn::{Recurrent, masked_update, time_steps};
use crate::error::Result;
use crate::params::ParamStore;

pub struct LstmDirection {
    /// `(in, 4H)`, gate order `[input, forget, output, cell]`.
    w_ih: Tensor,
    /// `(H, 4H)`.
    w_hh: Tensor,
    /// `(4H,)`.
    bias: Tensor,
    hidden: usize,
    reverse: bool,
}

#[cfg(test)]
impl LstmDirection {
    /// The same weights outside any autograd graph, as a loaded bundle has.
    pub(crate) fn detached(&self) -> Self {
        Self {
            w_ih: self.w_ih.detach(),
            w_hh: self.w_hh.detach(),
            bias: self.bias.detach(),
            hidden: self.hidden,
            reverse: self.reverse,
        }
    }
}

impl Recurrent for LstmDirection {
    const NAME: &'static str = "lstm";

    fn new(p: &mut ParamStore, input: usize, hidden: usize, reverse: bool) -> Result<Self> {
        // PyTorch's default: U(-1/sqrt(H), 1/sqrt(H)).
        let bound = 1.0 / (hidden as f64).sqrt();
        Ok(Self {
            w_ih: p.uniform("w_ih", &[input, 4 * hidden], bound)?,
            w_hh: p.uniform("w_hh", &[hidden, 4 * hidden], bound)?,
            bias: p.uniform("bias", &[4 * hidden], bound)?,
            hidden,
            reverse,
        })
    }

    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t, input) = xs.dims3()?;
        let h4 = 4 * self.hidden;
        let proj = xs
            .reshape((b * t, input))?
            .matmul(&self.w_ih)?
            .broadcast_add(&self.bias)?
            .reshape((b, t, h4))?;
        let mut h = Tensor::zeros((b, self.hidden), xs.dtype(), xs.device())?;
        let mut c = h.clone();
        let mut outputs: Vec<Tensor> = Vec::with_capacity(t);
        for step in time_steps(t, self.reverse) {
            let gates = proj
                .narrow(1, step, 1)?
                .squeeze(1)?
                .add(&h.matmul(&self.w_hh)?)?;
            let sig = candle_nn::ops::sigmoid(&gates.narrow(D::Minus1, 0, 3 * self.hidden)?)?;
            let cell = gates
                .narrow(D::Minus1, 3 * self.hidden, self.hidden)?
                .tanh()?;
            let i = sig.narrow(D::Minus1, 0, self.hidden)?;
            let f = sig.narrow(D::Minus1, self.hidden, self.hidden)?;
            let o = sig.narrow(D::Minus1, 2 * self.hidden, self.hidden)?;
            let c_new = f.mul(&c)?.add(&i.mul(&cell)?)?;
            let h_new = o.mul(&c_new.tanh()?)?;
            let m = mask.narrow(1, step, 1)?.squeeze(1)?;
            h = masked_update(&h, &h_new, &m)?;
            c = masked_update(&c, &c_new, &m)?;
            outputs.push(h.clone());
        }
        if self.reverse {
            outputs.reverse();
        }
        Ok(Tensor::stack(&outputs, 1)?)
    }

    /// On CPU in f32, both directions through the fused kernel
    /// (`lstm_kernel.rs`): one input-projection matmul for both, then one
    /// graph node for the whole recurrence. Elsewhere, [`Self::forward`].
    fn bidirectional(fwd: &Self, bwd: &Self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        if !xs.device().is_cpu() || xs.dtype() != DType::F32 {
            let f = fwd.forward(xs, mask)?;
            let r = bwd.forward(xs, mask)?;
            return Ok(Tensor::cat(&[f, r], 2)?);
        }
        let (b, t, input) = xs.dims3()?;
        let w_ih = Tensor::cat(&[&fwd.w_ih, &bwd.w_ih], 1)?;
        let bias = Tensor::cat(&[&fwd.bias, &bwd.bias], 0)?;
        let proj = xs
            .reshape((b * t, input))?
            .matmul(&w_ih)?
            .broadcast_add(&bias)?
            .reshape((b, t, 8 * fwd.hidden))?;
        let w_hh = Tensor::stack(&[&fwd.w_hh, &bwd.w_hh], 0)?;
        super::lstm_kernel::bilstm(&proj, &w_hh, &mask.squeeze(2)?)
    }
}
