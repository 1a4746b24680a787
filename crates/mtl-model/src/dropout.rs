//! Dropout with masks from a caller-owned seeded generator, so training is
//! reproducible (candle's own dropout draws from an unseeded CPU generator).

use candle_core::Tensor;
use rand::Rng;
use rand::rngs::StdRng;

use crate::error::Result;

pub fn dropout(xs: &Tensor, p: f32, rng: &mut StdRng) -> Result<Tensor> {
    if p <= 0.0 {
        return Ok(xs.clone());
    }
    let n = xs.elem_count();
    let scale = 1.0 / (1.0 - p);
    let mask: Vec<f32> = (0..n)
        .map(|_| if rng.random::<f32>() < p { 0.0 } else { scale })
        .collect();
    let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?;
    Ok(xs.mul(&mask)?)
}
