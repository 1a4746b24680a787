//! One head per task, on top of the shared encoder.

pub mod classification;
pub mod tagging;

use candle_core::Tensor;

use crate::error::Result;

/// Sentence heads map `(B, T, D)` to `(B, C)`; token heads to `(B, T, C)`.
pub enum Head {
    Classification(classification::ClassificationHead),
    Tagging(tagging::TaggingHead),
}

impl Head {
    pub fn forward(&self, encoded: &Tensor, mask: &Tensor) -> Result<Tensor> {
        match self {
            Head::Classification(h) => h.forward(encoded, mask),
            Head::Tagging(h) => h.forward(encoded),
        }
    }
}

/// A plain affine layer with seeded initialisation.
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    pub fn new(p: &mut crate::params::ParamStore, input: usize, output: usize) -> Result<Self> {
        let bound = 1.0 / (input as f64).sqrt();
        Ok(Self {
            weight: p.uniform("weight", &[input, output], bound)?,
            bias: p.uniform("bias", &[output], bound)?,
        })
    }

    /// Applies to the last dimension of a tensor of any rank.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dims = xs.dims().to_vec();
        let last = *dims.last().unwrap_or(&0);
        let rows = xs.elem_count() / last.max(1);
        let out = xs
            .reshape((rows, last))?
            .matmul(&self.weight)?
            .broadcast_add(&self.bias)?;
        let mut out_dims = dims;
        if let Some(d) = out_dims.last_mut() {
            *d = self.bias.dim(0)?;
        }
        Ok(out.reshape(out_dims)?)
    }
}
