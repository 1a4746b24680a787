//! Per-batch padding. Artifacts store unpadded id lists; a batch pads to its
//! own longest row, so length-sorted batches waste little work.

use candle_core::{Device, Tensor};
use mtl_core::artifact::IGNORE_INDEX;

use crate::error::Result;

pub struct Batch {
    /// `(B, T)` u32, padded with 0.
    pub input_ids: Tensor,
    /// `(B, T)` f32: 1 on real positions, 0 on padding.
    pub mask: Tensor,
    pub lengths: Vec<usize>,
}

impl Batch {
    pub fn pad(rows: &[&[u32]], device: &Device) -> Result<Batch> {
        if rows.is_empty() {
            return Err(crate::Error::Invalid("cannot build an empty batch".into()));
        }
        let t = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
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
        })
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
pub enum Targets {
    /// One per row; negative = no label.
    Sentence(Vec<i32>),
    /// Flattened `B * T` from [`Batch::token_targets`].
    Token(Vec<i32>),
}
