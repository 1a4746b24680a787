//! Per-token classification, used for tagging and (for now) span tasks.

use candle_core::Tensor;

use super::Linear;
use crate::error::Result;
use crate::params::ParamStore;

pub struct TaggingHead {
    out: Linear,
}

impl TaggingHead {
    pub fn new(p: &mut ParamStore, input: usize, labels: usize) -> Result<Self> {
        Ok(Self {
            out: Linear::new(p, input, labels)?,
        })
    }

    pub fn forward(&self, encoded: &Tensor) -> Result<Tensor> {
        self.out.forward(encoded)
    }
}
