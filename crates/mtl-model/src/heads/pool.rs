//! The input of every sentence-level head: the encoder output pooled over
//! the real positions (mean, first position, or a learned attention),
//! followed by the task's standardized side inputs.

use candle_core::Tensor;
use mtl_core::config::Pooling;

use crate::error::{Error, Result};
use crate::params::ParamStore;

/// Score given to padded positions before the attention softmax.
const MASKED: f64 = -1e4;

/// How one sentence head pools `(B, T, D)` into `(B, D)`.
pub enum Pooler {
    Mean,
    First,
    /// The learned scoring vector `(D,)` of this head.
    Attention(Tensor),
}

impl Pooler {
    pub fn new(p: &mut ParamStore, pooling: Pooling, width: usize) -> Result<Self> {
        Ok(match pooling {
            Pooling::Mean => Pooler::Mean,
            Pooling::First => Pooler::First,
            Pooling::Attention => {
                Pooler::Attention(p.uniform("attention", &[width], 1.0 / (width as f64).sqrt())?)
            }
        })
    }

    /// `encoded`: `(B, T, D)`, `mask`: `(B, T)`; returns `(B, D)`.
    pub fn pool(&self, encoded: &Tensor, mask: &Tensor) -> Result<Tensor> {
        match self {
            Pooler::Mean => {
                let m = mask.unsqueeze(2)?;
                let summed = encoded.broadcast_mul(&m)?.sum(1)?;
                let count = mask.sum_keepdim(1)?.clamp(1.0, f64::INFINITY)?;
                Ok(summed.broadcast_div(&count)?)
            }
            Pooler::First => Ok(encoded.narrow(1, 0, 1)?.squeeze(1)?),
            Pooler::Attention(v) => {
                let (b, t, d) = encoded.dims3()?;
                let scores = encoded
                    .reshape((b * t, d))?
                    .matmul(&v.unsqueeze(1)?)?
                    .reshape((b, t))?;
                // Padding gets MASKED: (1 - mask) * MASKED.
                let pad = mask.affine(-MASKED, MASKED)?;
                // candle_nn::ops::softmax is built from elementary ops and
                // passes gradients (unlike softmax_last_dim).
                let w = candle_nn::ops::softmax(&scores.add(&pad)?, 1)?;
                Ok(encoded.broadcast_mul(&w.unsqueeze(2)?)?.sum(1)?)
            }
        }
    }
}

/// `encoded`: `(B, T, D)`, `mask`: `(B, T)`, `side`: `(B, k)` or `None`
/// when `k` is 0. Returns `(B, D + k)`.
pub fn sentence_input(
    pooler: &Pooler,
    encoded: &Tensor,
    mask: &Tensor,
    side: Option<&Tensor>,
    k: usize,
) -> Result<Tensor> {
    let pooled = pooler.pool(encoded, mask)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn each_pooling_matches_hand_computed_values_and_ignores_padding() {
        let d = Device::Cpu;
        // One row of two real positions and one padded (huge) position.
        let enc = Tensor::new(&[[[1f32, 0.0], [3.0, 2.0], [100.0, 100.0]]], &d).unwrap();
        let mask = Tensor::new(&[[1f32, 1.0, 0.0]], &d).unwrap();
        let pool = |p: &Pooler| p.pool(&enc, &mask).unwrap().to_vec2::<f32>().unwrap()[0].clone();
        assert_eq!(pool(&Pooler::Mean), vec![2.0, 1.0]);
        assert_eq!(pool(&Pooler::First), vec![1.0, 0.0]);
        // Scores v·x: 1 and 5; weights softmax(1, 5).
        let v = Tensor::new(&[1f32, 1.0], &d).unwrap();
        let got = pool(&Pooler::Attention(v));
        let w1 = 1.0 / (1.0 + 4f32.exp());
        let want = [w1 * 1.0 + (1.0 - w1) * 3.0, (1.0 - w1) * 2.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }
}
