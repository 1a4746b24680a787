//! The input of every sentence-level head: masked mean pooling of the
//! encoder output, followed by the task's standardized side inputs.

use candle_core::Tensor;

use crate::error::{Error, Result};

/// `encoded`: `(B, T, D)`, `mask`: `(B, T)`, `side`: `(B, k)` or `None`
/// when `k` is 0. Returns `(B, D + k)`.
pub fn sentence_input(
    encoded: &Tensor,
    mask: &Tensor,
    side: Option<&Tensor>,
    k: usize,
) -> Result<Tensor> {
    let m = mask.unsqueeze(2)?;
    let summed = encoded.broadcast_mul(&m)?.sum(1)?;
    let count = mask.sum_keepdim(1)?.clamp(1.0, f64::INFINITY)?;
    let pooled = summed.broadcast_div(&count)?;
    if k == 0 {
        return Ok(pooled);
    }
    let side = side.ok_or_else(|| {
        Error::Invalid(format!(
            "the head takes {k} side inputs but the batch has none (build it with Batch::with_features)"
        ))
    })?;
    let b = pooled.dim(0)?;
    if side.dims() != [b, k] {
        return Err(Error::Invalid(format!(
            "side inputs have shape {:?}, the head expects [{b}, {k}]",
            side.dims()
        )));
    }
    Ok(Tensor::cat(&[&pooled, &side.to_dtype(pooled.dtype())?], 1)?)
}
