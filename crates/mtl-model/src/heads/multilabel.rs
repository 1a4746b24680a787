//! Multilabel classification: one independent logit per label (sigmoid at
//! prediction time, binary cross-entropy in training).

use candle_core::Tensor;

use super::Linear;
use crate::error::Result;
use crate::params::ParamStore;

pub struct MultilabelHead {
    out: Linear,
}

impl MultilabelHead {
    pub fn new(p: &mut ParamStore, input: usize, labels: usize) -> Result<Self> {
        Ok(Self {
            out: Linear::new(p, input, labels)?,
        })
    }

    /// `pooled`: `(B, D + k)`; returns `(B, L)` logits.
    pub fn forward(&self, pooled: &Tensor) -> Result<Tensor> {
        self.out.forward(pooled)
    }
}
