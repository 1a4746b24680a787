//! Sentence classification: masked mean pooling, then a linear layer.

use candle_core::Tensor;

use super::Linear;
use crate::error::Result;
use crate::params::ParamStore;

pub struct ClassificationHead {
    out: Linear,
}

impl ClassificationHead {
    pub fn new(p: &mut ParamStore, input: usize, labels: usize) -> Result<Self> {
        Ok(Self {
            out: Linear::new(p, input, labels)?,
        })
    }

    pub fn forward(&self, encoded: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let m = mask.unsqueeze(2)?;
        let summed = encoded.broadcast_mul(&m)?.sum(1)?;
        let count = mask.sum_keepdim(1)?.clamp(1.0, f64::INFINITY)?;
        let pooled = summed.broadcast_div(&count)?;
        self.out.forward(&pooled)
    }
}
