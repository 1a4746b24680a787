//! Sentence classification: pooled encoder output (plus side inputs), then
//! a linear layer to one logit per class.

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

    /// `pooled`: `(B, D + k)` from [`super::pool::sentence_input`]; returns
    /// `(B, C)` logits.
    pub fn forward(&self, pooled: &Tensor) -> Result<Tensor> {
        self.out.forward(pooled)
    }
}
