//! A from-scratch pre-LN transformer encoder: token embeddings plus learned
//! positions, then per layer `x + attn(LN(x))` and `x + ffn(LN(x))`, and a
//! final layer norm. With `char_cnn`, each position's character-CNN word
//! vector, projected to the model width, is added to its embedding (the
//! same as concatenating and projecting both, with the token part's
//! projection fixed to the identity, so the width stays `hidden_dim`).
//!
//! Every op here is one that candle 0.11 differentiates: layer norm comes
//! from [`crate::norm`] and softmax from `candle_nn::ops::softmax` (the fused
//! `softmax_last_dim` passes no gradient).

use candle_core::{D, Tensor};
use rand::rngs::StdRng;

use super::charcnn::CharCnn;
use crate::batch::BatchChars;
use crate::dropout::dropout;
use crate::error::{Error, Result};
use crate::heads::Linear;
use crate::norm::LayerNorm;
use crate::params::ParamStore;
use crate::spec::EncoderSpec;

/// Added to the attention score of a padded key. Large and finite, not
/// `-inf`: a row whose keys are all masked then gets uniform weights
/// instead of `NaN`, and a real key's weight next to it is exactly 0.
const MASKED_SCORE: f64 = -1e9;

/// The initial standard deviation of embeddings and positions (BERT's).
const EMBEDDING_STD: f64 = 0.02;

pub struct TransformerEncoder {
    /// `(V, H)`.
    embeddings: Tensor,
    /// `(P, H)`.
    positions: Tensor,
    /// The character CNN and its `(filters, H)` projection, no bias (the
    /// embeddings have none either).
    char_cnn: Option<(CharCnn, Tensor)>,
    layers: Vec<Layer>,
    final_norm: LayerNorm,
    heads: usize,
    dropout: f32,
}

struct Layer {
    attn_norm: LayerNorm,
    /// `(H, H)` each, no bias: a key bias gets no gradient at all (softmax
    /// ignores a shift shared by every key), and the norm's `beta` already
    /// shifts queries and values. Separate tensors, not one fused `(H, 3H)`
    /// parameter, so the gradient test sees each of them: through a
    /// gradient-dropping softmax the values would still learn and hide
    /// frozen queries and keys.
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_out: Linear,
    ff_norm: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
}

impl TransformerEncoder {
    pub fn new(p: &mut ParamStore, spec: &EncoderSpec) -> Result<Self> {
        let h = spec.hidden_dim;
        let bad = |m: String| Err(Error::Invalid(format!("transformer encoder: {m}")));
        if spec.heads == 0 || !h.is_multiple_of(spec.heads) {
            return bad(format!(
                "heads ({}) must be > 0 and divide hidden_dim ({h})",
                spec.heads
            ));
        }
        if spec.max_positions == 0 || spec.ff_dim() == 0 {
            return bad("max_positions and ff_dim must be > 0".into());
        }
        let embeddings = p.normal("embeddings", &[spec.vocab_size, h], EMBEDDING_STD)?;
        let positions = p.normal("positions", &[spec.max_positions, h], EMBEDDING_STD)?;
        let mut layers = Vec::with_capacity(spec.layers);
        for l in 0..spec.layers {
            layers.push(p.scoped(&format!("layer{l}"), |p| {
                Ok(Layer {
                    attn_norm: p.scoped("attn_norm", |p| LayerNorm::new(p, h))?,
                    query: p.uniform("query", &[h, h], 1.0 / (h as f64).sqrt())?,
                    key: p.uniform("key", &[h, h], 1.0 / (h as f64).sqrt())?,
                    value: p.uniform("value", &[h, h], 1.0 / (h as f64).sqrt())?,
                    attn_out: p.scoped("attn_out", |p| Linear::new(p, h, h))?,
                    ff_norm: p.scoped("ff_norm", |p| LayerNorm::new(p, h))?,
                    ff_in: p.scoped("ff_in", |p| Linear::new(p, h, spec.ff_dim()))?,
                    ff_out: p.scoped("ff_out", |p| Linear::new(p, spec.ff_dim(), h))?,
                })
            })?);
        }
        let final_norm = p.scoped("final_norm", |p| LayerNorm::new(p, h))?;
        // Drawn last, so the other weights of a seed do not depend on it.
        let char_cnn = spec
            .char_cnn
            .map(|c| {
                p.scoped("char_cnn", |p| {
                    let cnn = CharCnn::new(p, &c)?;
                    let proj = p.normal("proj", &[c.filters, h], EMBEDDING_STD)?;
                    Ok((cnn, proj))
                })
            })
            .transpose()?;
        Ok(Self {
            embeddings,
            positions,
            char_cnn,
            layers,
            final_norm,
            heads: spec.heads,
            dropout: spec.dropout,
        })
    }

    /// `ids`: `(B, T)` u32, `mask`: `(B, T)` f32 with 1 on real tokens,
    /// `chars`: the positions' word characters (needed with `char_cnn`). Returns
    /// `(B, T, H)`. `rng` turns dropout on. A padded position attends like
    /// any other but no position attends to it, so real rows do not depend
    /// on how much padding the batch has.
    pub fn forward(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        chars: Option<&BatchChars>,
        mut rng: Option<&mut StdRng>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let max = self.positions.dim(0)?;
        if t > max {
            return Err(Error::Invalid(format!(
                "a batch of {t} positions is longer than the transformer's {max} (max_positions)"
            )));
        }
        let mut xs =
            super::embed(&self.embeddings, ids)?.broadcast_add(&self.positions.narrow(0, 0, t)?)?;
        if let Some((cnn, proj)) = &self.char_cnn {
            let c = super::char_features(cnn, chars, ids)?;
            let f = c.dim(2)?;
            let c = c
                .reshape((b * t, f))?
                .matmul(proj)?
                .reshape((b, t, proj.dim(1)?))?;
            xs = xs.add(&c)?;
        }
        // 0 on real keys, MASKED_SCORE on padding; `(B, 1, 1, T)` broadcasts
        // over heads and queries.
        let key_bias = mask
            .affine(-MASKED_SCORE, MASKED_SCORE)?
            .reshape((b, 1, 1, t))?;
        let mut drop = |x: Tensor| match rng.as_deref_mut() {
            Some(rng) => dropout(&x, self.dropout, rng),
            None => Ok(x),
        };
        xs = drop(xs)?;
        for layer in &self.layers {
            let a = self.attention(layer, &layer.attn_norm.forward(&xs)?, &key_bias)?;
            xs = xs.add(&drop(a)?)?;
            let f = layer.ff_norm.forward(&xs)?;
            let f = layer
                .ff_out
                .forward(&layer.ff_in.forward(&f)?.gelu_erf()?)?;
            xs = xs.add(&drop(f)?)?;
        }
        drop(self.final_norm.forward(&xs)?)
    }

    /// Multi-head self-attention of `(B, T, H)` with an additive key bias.
    fn attention(&self, layer: &Layer, xs: &Tensor, key_bias: &Tensor) -> Result<Tensor> {
        let (b, t, h) = xs.dims3()?;
        let nh = self.heads;
        let dh = h / nh;
        // One matmul for the three projections: (B, T, 3, nh, dh) ->
        // (3, B, nh, T, dh).
        let w = Tensor::cat(&[&layer.query, &layer.key, &layer.value], 1)?;
        let qkv = xs
            .reshape((b * t, h))?
            .matmul(&w)?
            .reshape((b, t, 3, nh, dh))?
            .permute((2, 0, 3, 1, 4))?;
        let q = qkv
            .get(0)?
            .contiguous()?
            .affine(1.0 / (dh as f64).sqrt(), 0.0)?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(key_bias)?;
        let weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        let ctx = weights.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h))?;
        layer.attn_out.forward(&ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn spec() -> EncoderSpec {
        EncoderSpec {
            kind: crate::spec::TRANSFORMER.into(),
            vocab_size: 10,
            hidden_dim: 8,
            heads: 2,
            layers: 1,
            dropout: 0.0,
            max_positions: 6,
            ..Default::default()
        }
    }

    /// With every key of a row masked the weights are uniform, not NaN.
    #[test]
    fn a_fully_masked_row_stays_finite() {
        let d = Device::Cpu;
        let mut p = ParamStore::new(1, &d);
        let enc = TransformerEncoder::new(&mut p, &spec()).unwrap();
        let ids = Tensor::new(&[[1u32, 2, 3], [0, 0, 0]], &d).unwrap();
        let mask = Tensor::new(&[[1f32, 1.0, 1.0], [0.0, 0.0, 0.0]], &d).unwrap();
        let out = enc.forward(&ids, &mask, None, None).unwrap();
        let v = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{v:?}");
    }

    /// A padded key gets exactly zero attention: changing the padded
    /// token's id changes nothing for the real ones.
    #[test]
    fn padded_keys_get_no_attention() {
        let d = Device::Cpu;
        let mut p = ParamStore::new(1, &d);
        let enc = TransformerEncoder::new(&mut p, &spec()).unwrap();
        let mask = Tensor::new(&[[1f32, 1.0, 0.0, 0.0]], &d).unwrap();
        let a = Tensor::new(&[[4u32, 5, 0, 0]], &d).unwrap();
        let b = Tensor::new(&[[4u32, 5, 9, 7]], &d).unwrap();
        let real = |ids: &Tensor| {
            enc.forward(ids, &mask, None, None)
                .unwrap()
                .narrow(1, 0, 2)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(real(&a), real(&b));
        // Without the mask the padded tokens would be seen.
        let ones = Tensor::ones((1, 4), candle_core::DType::F32, &d).unwrap();
        let seen = |ids: &Tensor| {
            enc.forward(ids, &ones, None, None)
                .unwrap()
                .narrow(1, 0, 2)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_ne!(seen(&a), seen(&b));
    }

    #[test]
    fn a_batch_longer_than_the_positions_is_an_error() {
        let d = Device::Cpu;
        let mut p = ParamStore::new(1, &d);
        let enc = TransformerEncoder::new(&mut p, &spec()).unwrap();
        let ids = Tensor::zeros((1, 7), candle_core::DType::U32, &d).unwrap();
        let mask = Tensor::ones((1, 7), candle_core::DType::F32, &d).unwrap();
        let err = enc
            .forward(&ids, &mask, None, None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("max_positions") && err.contains('7'), "{err}");
    }

    #[test]
    fn heads_must_divide_the_width() {
        let d = Device::Cpu;
        let mut p = ParamStore::new(1, &d);
        let bad = EncoderSpec { heads: 3, ..spec() };
        let err = TransformerEncoder::new(&mut p, &bad).err().unwrap();
        assert!(err.to_string().contains("heads (3)"), "{err}");
    }
}
