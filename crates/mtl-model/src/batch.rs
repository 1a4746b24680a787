//! Per-batch padding and side inputs. Artifacts store unpadded id lists; a
//! batch pads to its own longest row ([`Batch::pad`]), so length-sorted
//! batches waste little work, or to a fixed length ([`Batch::pad_to`],
//! `tokenize.pad_to`) for deterministic shapes.
//!
//! Sentence-level heads can take side inputs (clean-stage features, see
//! `features.json`). Build a batch with them in two steps:
//!
//! ```text
//! let batch = Batch::pad(&rows, &device)?            // rows: &[&[u32]]
//!     .with_features(&feature_set, &raw_values)?;    // raw_values: &[M], M: Borrow<BTreeMap<String, f32>>
//! ```
//!
//! `with_features(self, set: &FeatureSet, rows: &[M]) -> Result<Batch>`
//! takes one map per row (feature name → raw value, e.g. the `feat_<name>`
//! columns), standardizes every value with [`FeatureSet::standardize`] and
//! stores, for every task with selected features, a `(B, k)` tensor in
//! [`Batch::features`], columns in the task's `selected` order. A row
//! missing a needed feature, or holding a non-finite value, is an error.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use mtl_core::FeatureSet;
use mtl_core::artifact::IGNORE_INDEX;

use crate::error::{Error, Result};

pub struct Batch {
    /// `(B, T)` u32, padded with 0.
    pub input_ids: Tensor,
    /// `(B, T)` f32: 1 on real positions, 0 on padding.
    pub mask: Tensor,
    pub lengths: Vec<usize>,
    /// Standardized side inputs per task, `(B, k)` f32; only tasks whose
    /// head takes side inputs. Filled by [`Batch::with_features`].
    pub features: BTreeMap<String, Tensor>,
}

impl Batch {
    /// Pads every row to the batch's longest row.
    pub fn pad(rows: &[&[u32]], device: &Device) -> Result<Batch> {
        Self::padded(rows, None, device)
    }

    /// Pads every row to exactly `len` positions; a row longer than `len`
    /// is an error naming both lengths.
    pub fn pad_to(rows: &[&[u32]], len: usize, device: &Device) -> Result<Batch> {
        Self::padded(rows, Some(len), device)
    }

    /// [`Batch::pad_to`] with `Some(len)`, [`Batch::pad`] with `None`: the
    /// form to call with `tokenize.pad_to` as it is.
    pub fn padded(rows: &[&[u32]], pad_to: Option<usize>, device: &Device) -> Result<Batch> {
        if rows.is_empty() {
            return Err(Error::Invalid("cannot build an empty batch".into()));
        }
        let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let t = match pad_to {
            None => longest.max(1),
            Some(0) => return Err(Error::Invalid("pad_to must be at least 1".into())),
            Some(n) => {
                if let Some(i) = rows.iter().position(|r| r.len() > n) {
                    return Err(Error::Invalid(format!(
                        "batch row {i} has {} sub-tokens, more than pad_to = {n}",
                        rows[i].len()
                    )));
                }
                n
            }
        };
        let b = rows.len();
        let mut ids = vec![0u32; b * t];
        let mut mask = vec![0f32; b * t];
        for (i, r) in rows.iter().enumerate() {
            ids[i * t..i * t + r.len()].copy_from_slice(r);
            mask[i * t..i * t + r.len()].fill(1.0);
        }
        Ok(Batch {
            input_ids: Tensor::from_vec(ids, (b, t), device)?,
            mask: Tensor::from_vec(mask, (b, t), device)?,
            lengths: rows.iter().map(|r| r.len()).collect(),
            features: BTreeMap::new(),
        })
    }

    /// Adds every task's standardized side inputs (see the module docs).
    /// `rows` holds one map of raw feature values per batch row.
    pub fn with_features<M: Borrow<BTreeMap<String, f32>>>(
        mut self,
        set: &FeatureSet,
        rows: &[M],
    ) -> Result<Batch> {
        if rows.len() != self.size() {
            return Err(Error::Invalid(format!(
                "side inputs for {} rows, but the batch has {}",
                rows.len(),
                self.size()
            )));
        }
        let device = self.input_ids.device().clone();
        for (task, tf) in &set.tasks {
            let k = tf.selected.len();
            if k == 0 {
                continue;
            }
            let mut data = Vec::with_capacity(rows.len() * k);
            for (i, row) in rows.iter().enumerate() {
                let row = row.borrow();
                for f in &tf.selected {
                    let x = row.get(f).copied().ok_or_else(|| {
                        Error::Invalid(format!(
                            "batch row {i}: task `{task}` takes feature `{f}`, which the row lacks"
                        ))
                    })?;
                    if !x.is_finite() {
                        return Err(Error::Invalid(format!(
                            "batch row {i}: feature `{f}` is {x}"
                        )));
                    }
                    data.push(set.standardize(f, f64::from(x)) as f32);
                }
            }
            self.features.insert(
                task.clone(),
                Tensor::from_vec(data, (rows.len(), k), &device)?,
            );
        }
        Ok(self)
    }

    pub fn size(&self) -> usize {
        self.lengths.len()
    }

    pub fn max_len(&self) -> usize {
        self.input_ids.dims().get(1).copied().unwrap_or(0)
    }

    /// Flattens per-row sub-token targets to `B * T`, padding with the ignore
    /// index. A `None` row (no label for this task) is ignored entirely.
    pub fn token_targets(&self, rows: &[Option<&[i32]>]) -> Vec<i32> {
        let t = self.max_len();
        let mut out = vec![IGNORE_INDEX; rows.len() * t];
        for (i, r) in rows.iter().enumerate() {
            if let Some(r) = r {
                let n = r.len().min(t);
                out[i * t..i * t + n].copy_from_slice(&r[..n]);
            }
        }
        out
    }
}

/// Gold targets of one task for one batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One per row; negative = no label.
    Sentence(Vec<i32>),
    /// Flattened `B * T` from [`Batch::token_targets`].
    Token(Vec<i32>),
    /// Per row, the label ids it carries (an empty list is a labelled row
    /// with no label); `None` = the row does not carry the task.
    Multilabel(Vec<Option<Vec<u32>>>),
    /// Per row, the target in its own units (the model standardizes it);
    /// `None` = no label.
    Regression(Vec<Option<f32>>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::features::{FeatureStats, TaskFeatures};

    pub(crate) fn feature_set() -> FeatureSet {
        let mut set = FeatureSet::default();
        set.stats.insert(
            "n_words".into(),
            FeatureStats {
                mean: 4.0,
                std: 2.0,
            },
        );
        set.stats.insert(
            "upper_ratio".into(),
            FeatureStats {
                mean: 0.5,
                std: 0.25,
            },
        );
        set.tasks.insert(
            "sent".into(),
            TaskFeatures {
                ranking: vec![],
                selected: vec!["upper_ratio".into(), "n_words".into()],
            },
        );
        set.tasks.insert("other".into(), TaskFeatures::default());
        set
    }

    fn values(n_words: f32, upper: f32) -> BTreeMap<String, f32> {
        BTreeMap::from([
            ("n_words".to_string(), n_words),
            ("upper_ratio".to_string(), upper),
            ("digit_ratio".to_string(), 9.0),
        ])
    }

    #[test]
    fn pad_to_gives_a_fixed_width() {
        let d = Device::Cpu;
        let b = Batch::pad_to(&[&[1, 2], &[3]], 5, &d).unwrap();
        assert_eq!(b.input_ids.dims(), [2, 5]);
        assert_eq!(b.max_len(), 5);
        assert_eq!(b.lengths, vec![2, 1]);
        assert_eq!(
            b.input_ids.to_vec2::<u32>().unwrap(),
            [[1, 2, 0, 0, 0], [3, 0, 0, 0, 0]]
        );
        assert_eq!(
            b.mask.to_vec2::<f32>().unwrap(),
            [[1.0, 1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]]
        );
        assert_eq!(b.token_targets(&[Some(&[7, 8]), None]).len(), 10);
        // Without pad_to, the longest row decides.
        let b = Batch::padded(&[&[1, 2], &[3]], None, &d).unwrap();
        assert_eq!(b.input_ids.dims(), [2, 2]);
        // Exactly pad_to is fine; longer is an error naming the lengths.
        assert!(Batch::pad_to(&[&[1, 2, 3]], 3, &d).is_ok());
        let err = Batch::pad_to(&[&[1], &[1, 2, 3, 4]], 3, &d)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("row 1") && err.contains("4 sub-tokens") && err.contains("pad_to = 3"),
            "{err}"
        );
        assert!(Batch::pad_to(&[&[]], 0, &d).is_err());
    }

    #[test]
    fn side_inputs_are_standardized_in_selected_order() {
        let d = Device::Cpu;
        let b = Batch::pad(&[&[1, 2], &[3]], &d)
            .unwrap()
            .with_features(&feature_set(), &[values(6.0, 0.5), values(2.0, 1.0)])
            .unwrap();
        assert_eq!(b.features.keys().collect::<Vec<_>>(), ["sent"]);
        assert_eq!(
            b.features["sent"].to_vec2::<f32>().unwrap(),
            [[0.0, 1.0], [2.0, -1.0]]
        );
    }

    #[test]
    fn a_missing_or_bad_side_input_is_a_clear_error() {
        let d = Device::Cpu;
        let mut row = values(1.0, 1.0);
        row.remove("n_words");
        let err = Batch::pad(&[&[1]], &d)
            .unwrap()
            .with_features(&feature_set(), &[&row])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`n_words`") && err.contains("`sent`"), "{err}");
        let err = Batch::pad(&[&[1]], &d)
            .unwrap()
            .with_features(&feature_set(), &[values(f32::NAN, 1.0)])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("NaN"), "{err}");
        let err = Batch::pad(&[&[1]], &d)
            .unwrap()
            .with_features(&feature_set(), &[values(1.0, 1.0), values(1.0, 1.0)])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("2 rows"), "{err}");
    }
}
