//! Regression: one real number per text, predicted in standardized target
//! units (`(y - mean) / std` with the training statistics); the model
//! converts back to target units when predicting.

use candle_core::Tensor;

use super::Linear;
use crate::error::Result;
use crate::params::ParamStore;

pub struct RegressionHead {
    out: Linear,
}

impl RegressionHead {
    pub fn new(p: &mut ParamStore, input: usize) -> Result<Self> {
        Ok(Self {
            out: Linear::new(p, input, 1)?,
        })
    }

    /// `pooled`: `(B, D + k)`; returns `(B,)` standardized predictions.
    pub fn forward(&self, pooled: &Tensor) -> Result<Tensor> {
        Ok(self.out.forward(pooled)?.squeeze(1)?)
    }
}
