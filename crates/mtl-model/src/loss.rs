//! Masked losses: rows without a label for a task (the task mask) and
//! sub-token positions without a label contribute nothing.
//!
//! Every loss is built from elementary tensor ops (max, exp, sum, log, abs,
//! gather) because some fused candle 0.11 ops pass no gradient.

use candle_core::{D, DType, Tensor};

use crate::error::{Error, Result};

/// `logits`: `(N, C)`; `targets`: one entry per row, negative = ignored.
/// With `class_weights` (one per class), the loss is the weighted mean
/// `-Σ w[y_i] log p_i(y_i) / Σ w[y_i]` over labelled rows, as PyTorch's
/// weighted cross-entropy; without, the plain mean. `None` if no row is
/// labelled.
pub fn masked_cross_entropy(
    logits: &Tensor,
    targets: &[i32],
    class_weights: Option<&[f32]>,
) -> Result<Option<Tensor>> {
    let (n, c) = logits.dims2()?;
    if n != targets.len() {
        return Err(Error::Invalid(format!(
            "{} targets for {n} rows of logits",
            targets.len()
        )));
    }
    if let Some(w) = class_weights
        && w.len() != c
    {
        return Err(Error::Invalid(format!(
            "{} class weights for {c} classes",
            w.len()
        )));
    }
    let mut weights = Vec::with_capacity(n);
    for &t in targets {
        if t < 0 {
            weights.push(0f32);
            continue;
        }
        let t = t as usize;
        if t >= c {
            return Err(Error::Invalid(format!(
                "target label id {t} is out of range for {c} classes"
            )));
        }
        weights.push(class_weights.map_or(1.0, |w| w[t]));
    }
    let denom: f64 = weights.iter().map(|&w| f64::from(w)).sum();
    if !targets.iter().any(|&t| t >= 0) || denom <= 0.0 {
        return Ok(None);
    }
    let device = logits.device();
    let idx: Vec<u32> = targets.iter().map(|&t| t.max(0) as u32).collect();
    let idx = Tensor::from_vec(idx, (n, 1), device)?;
    let weights = Tensor::from_vec(weights, n, device)?;
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let picked = logp.gather(&idx, 1)?.squeeze(1)?;
    let total = picked.mul(&weights)?.sum_all()?;
    Ok(Some(total.affine(-1.0 / denom, 0.0)?.to_dtype(DType::F32)?))
}

/// `logits`: `(N, L)`; `targets`: per row the label ids it carries, `None`
/// = row ignored. Mean binary cross-entropy over every (row, label) pair of
/// the labelled rows, in the stable form
/// `max(x, 0) - x·y + log(1 + exp(-|x|))`. `None` if no row is labelled.
pub fn masked_binary_cross_entropy(
    logits: &Tensor,
    targets: &[Option<Vec<u32>>],
) -> Result<Option<Tensor>> {
    let (n, l) = logits.dims2()?;
    if n != targets.len() {
        return Err(Error::Invalid(format!(
            "{} targets for {n} rows of logits",
            targets.len()
        )));
    }
    let mut y = vec![0f32; n * l];
    let mut mask = vec![0f32; n * l];
    let mut labelled = 0usize;
    for (i, row) in targets.iter().enumerate() {
        let Some(ids) = row else { continue };
        labelled += 1;
        mask[i * l..(i + 1) * l].fill(1.0);
        for &id in ids {
            let id = id as usize;
            if id >= l {
                return Err(Error::Invalid(format!(
                    "target label id {id} is out of range for {l} labels"
                )));
            }
            y[i * l + id] = 1.0;
        }
    }
    if labelled == 0 || l == 0 {
        return Ok(None);
    }
    let device = logits.device();
    let y = Tensor::from_vec(y, (n, l), device)?;
    let mask = Tensor::from_vec(mask, (n, l), device)?;
    let abs = logits.abs()?;
    // max(x, 0) = (x + |x|) / 2.
    let pos = logits.add(&abs)?.affine(0.5, 0.0)?;
    let softplus = abs.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    let per = pos.sub(&logits.mul(&y)?)?.add(&softplus)?;
    let total = per.mul(&mask)?.sum_all()?;
    Ok(Some(
        total
            .affine(1.0 / (labelled * l) as f64, 0.0)?
            .to_dtype(DType::F32)?,
    ))
}

/// `pred`: `(N,)`; `targets`: per row, `None` = ignored. Mean squared error
/// over labelled rows (targets already in the prediction's units). `None`
/// if no row is labelled.
pub fn masked_mse(pred: &Tensor, targets: &[Option<f32>]) -> Result<Option<Tensor>> {
    let n = pred.dim(0)?;
    if n != targets.len() || pred.rank() != 1 {
        return Err(Error::Invalid(format!(
            "{} targets for predictions of shape {:?}",
            targets.len(),
            pred.dims()
        )));
    }
    let labelled = targets.iter().filter(|t| t.is_some()).count();
    if labelled == 0 {
        return Ok(None);
    }
    let device = pred.device();
    let y: Vec<f32> = targets.iter().map(|t| t.unwrap_or(0.0)).collect();
    let mask: Vec<f32> = targets
        .iter()
        .map(|t| if t.is_some() { 1.0 } else { 0.0 })
        .collect();
    let y = Tensor::from_vec(y, n, device)?;
    let mask = Tensor::from_vec(mask, n, device)?;
    let total = pred.sub(&y)?.sqr()?.mul(&mask)?.sum_all()?;
    Ok(Some(
        total
            .affine(1.0 / labelled as f64, 0.0)?
            .to_dtype(DType::F32)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn scalar(t: Tensor) -> f64 {
        t.to_scalar::<f32>().unwrap() as f64
    }

    #[test]
    fn matches_hand_computed_value_and_ignores_masked_rows() {
        let d = Device::Cpu;
        let logits = Tensor::new(&[[0f32, 0.0], [2.0, 0.0], [5.0, -5.0]], &d).unwrap();
        // Row 0: -ln(0.5); row 1 target 1: -ln(1/(1+e^2)); row 2 ignored.
        let loss = masked_cross_entropy(&logits, &[0, 1, -100], None)
            .unwrap()
            .unwrap();
        let expected = (0.5f64.ln().abs() + (1.0 + 2f64.exp()).ln()) / 2.0;
        assert!((scalar(loss) - expected).abs() < 1e-5);
        assert!(
            masked_cross_entropy(&logits, &[-1, -1, -100], None)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn class_weighted_cross_entropy_is_the_weighted_mean() {
        let d = Device::Cpu;
        let logits = Tensor::new(&[[0f32, 0.0], [2.0, 0.0], [1.0, 3.0]], &d).unwrap();
        let w = [0.5f32, 3.0];
        let loss = masked_cross_entropy(&logits, &[0, 1, -1], Some(&w))
            .unwrap()
            .unwrap();
        // Row 0 (class 0, w 0.5): ln 2. Row 1 (class 1, w 3): ln(1 + e^2).
        let expected = (0.5 * 2f64.ln() + 3.0 * (1.0 + 2f64.exp()).ln()) / 3.5;
        assert!((scalar(loss) - expected).abs() < 1e-5);
        // Equal weights give the unweighted mean.
        let equal = masked_cross_entropy(&logits, &[0, 1, 1], Some(&[2.0, 2.0]))
            .unwrap()
            .unwrap();
        let plain = masked_cross_entropy(&logits, &[0, 1, 1], None)
            .unwrap()
            .unwrap();
        assert!((scalar(equal) - scalar(plain)).abs() < 1e-6);
    }

    #[test]
    fn cross_entropy_rejects_bad_ids_and_weights() {
        let d = Device::Cpu;
        let logits = Tensor::new(&[[0f32, 0.0]], &d).unwrap();
        assert!(masked_cross_entropy(&logits, &[2], None).is_err());
        assert!(masked_cross_entropy(&logits, &[0], Some(&[1.0])).is_err());
    }

    #[test]
    fn binary_cross_entropy_matches_hand_computed_value() {
        let d = Device::Cpu;
        let logits =
            Tensor::new(&[[0f32, 2.0, -1.0], [3.0, 3.0, 3.0], [-4.0, 0.5, 1.0]], &d).unwrap();
        let targets = vec![Some(vec![1]), None, Some(vec![])];
        let loss = masked_binary_cross_entropy(&logits, &targets)
            .unwrap()
            .unwrap();
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let bce = |x: f64, y: f64| -(y * sig(x).ln() + (1.0 - y) * (1.0 - sig(x)).ln());
        let expected = (bce(0.0, 0.0)
            + bce(2.0, 1.0)
            + bce(-1.0, 0.0)
            + bce(-4.0, 0.0)
            + bce(0.5, 0.0)
            + bce(1.0, 0.0))
            / 6.0;
        assert!((scalar(loss) - expected).abs() < 1e-5);
        assert!(
            masked_binary_cross_entropy(&logits, &[None, None, None])
                .unwrap()
                .is_none()
        );
        assert!(masked_binary_cross_entropy(&logits, &[Some(vec![3]), None, None]).is_err());
    }

    #[test]
    fn binary_cross_entropy_is_finite_for_huge_logits() {
        let d = Device::Cpu;
        let logits = Tensor::new(&[[200f32, -200.0]], &d).unwrap();
        let loss = masked_binary_cross_entropy(&logits, &[Some(vec![1])])
            .unwrap()
            .unwrap();
        // Label 0 wrong by 200, label 1 wrong by 200: (200 + 200) / 2.
        assert!((scalar(loss) - 200.0).abs() < 1e-3);
    }

    #[test]
    fn mse_matches_hand_computed_value() {
        let d = Device::Cpu;
        let pred = Tensor::new(&[1f32, -2.0, 0.5], &d).unwrap();
        let loss = masked_mse(&pred, &[Some(0.0), None, Some(2.5)])
            .unwrap()
            .unwrap();
        assert!((scalar(loss) - (1.0 + 4.0) / 2.0).abs() < 1e-6);
        assert!(masked_mse(&pred, &[None, None, None]).unwrap().is_none());
    }
}
