//! Embeddings and a stack of bidirectional LSTM layers.

use candle_core::Tensor;
use rand::rngs::StdRng;

use super::lstm::LstmDirection;
use crate::dropout::dropout;
use crate::error::Result;
use crate::params::ParamStore;
use crate::spec::EncoderSpec;

pub struct BiLstmEncoder {
    embeddings: Tensor,
    layers: Vec<(LstmDirection, LstmDirection)>,
    dropout: f32,
}

impl BiLstmEncoder {
    pub fn new(p: &mut ParamStore, spec: &EncoderSpec) -> Result<Self> {
        let embeddings = p.normal("embeddings", &[spec.vocab_size, spec.embedding_dim], 0.1)?;
        let mut layers = Vec::with_capacity(spec.layers);
        for l in 0..spec.layers {
            let input = if l == 0 {
                spec.embedding_dim
            } else {
                2 * spec.hidden_dim
            };
            let fwd = p.scoped(&format!("lstm{l}_fwd"), |p| {
                LstmDirection::new(p, input, spec.hidden_dim, false)
            })?;
            let bwd = p.scoped(&format!("lstm{l}_bwd"), |p| {
                LstmDirection::new(p, input, spec.hidden_dim, true)
            })?;
            layers.push((fwd, bwd));
        }
        Ok(Self {
            embeddings,
            layers,
            dropout: spec.dropout,
        })
    }

    /// `ids`: `(B, T)` u32, `mask`: `(B, T)` f32. Returns `(B, T, 2H)`.
    /// `rng` is `Some` in training (dropout on) and `None` at inference.
    pub fn forward(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        mut rng: Option<&mut StdRng>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let dim = self.embeddings.dim(1)?;
        let mut xs = self
            .embeddings
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, t, dim))?;
        let mask3 = mask.unsqueeze(2)?;
        for (fwd, bwd) in &self.layers {
            if let Some(rng) = rng.as_deref_mut() {
                xs = dropout(&xs, self.dropout, rng)?;
            }
            let f = fwd.forward(&xs, &mask3)?;
            let r = bwd.forward(&xs, &mask3)?;
            xs = Tensor::cat(&[f, r], 2)?;
        }
        if let Some(rng) = rng {
            xs = dropout(&xs, self.dropout, rng)?;
        }
        Ok(xs)
    }
}
