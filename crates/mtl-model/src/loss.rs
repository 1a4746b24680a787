//! Masked cross-entropy: rows without a label for a task (the task mask) and
//! sub-token positions without a label contribute nothing.

use candle_core::{D, DType, Tensor};

use crate::error::Result;

/// `logits`: `(N, C)`; `targets`: one entry per row, negative = ignored.
/// Returns the mean loss over labelled rows, or `None` if there are none.
pub fn masked_cross_entropy(logits: &Tensor, targets: &[i32]) -> Result<Option<Tensor>> {
    let n = targets.len();
    let labelled = targets.iter().filter(|&&t| t >= 0).count();
    if labelled == 0 {
        return Ok(None);
    }
    let device = logits.device();
    let idx: Vec<u32> = targets.iter().map(|&t| t.max(0) as u32).collect();
    let mask: Vec<f32> = targets
        .iter()
        .map(|&t| if t >= 0 { 1.0 } else { 0.0 })
        .collect();
    let idx = Tensor::from_vec(idx, (n, 1), device)?;
    let mask = Tensor::from_vec(mask, n, device)?;
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = logp.gather(&idx, 1)?.squeeze(1)?;
    let total = picked.mul(&mask)?.sum_all()?;
    Ok(Some(
        total
            .affine(-1.0 / labelled as f64, 0.0)?
            .to_dtype(DType::F32)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_hand_computed_value_and_ignores_masked_rows() {
        let d = Device::Cpu;
        let logits = Tensor::new(&[[0f32, 0.0], [2.0, 0.0], [5.0, -5.0]], &d).unwrap();
        // Row 0: -ln(0.5); row 1 target 1: -ln(1/(1+e^2)); row 2 ignored.
        let loss = masked_cross_entropy(&logits, &[0, 1, -100])
            .unwrap()
            .unwrap();
        let expected = (0.5f64.ln().abs() + (1.0 + 2f64.exp()).ln()) / 2.0;
        assert!((loss.to_scalar::<f32>().unwrap() as f64 - expected).abs() < 1e-5);
        assert!(
            masked_cross_entropy(&logits, &[-1, -1, -100])
                .unwrap()
                .is_none()
        );
    }
}
