//! Embeddings and a stack of bidirectional recurrent layers, generic over
//! the recurrent cell: `BiRnn<LstmDirection>` is the BiLSTM encoder,
//! `BiRnn<GruDirection>` the BiGRU. With `char_cnn`, each position's
//! character-CNN word vector is concatenated to its token embedding before
//! the first layer.

use candle_core::Tensor;
use rand::rngs::StdRng;

use super::charcnn::CharCnn;
use crate::batch::BatchChars;
use crate::dropout::dropout;
use crate::error::Result;
use crate::params::ParamStore;
use crate::spec::EncoderSpec;

/// One direction of one recurrent layer.
pub trait Recurrent: Sized {
    /// Parameter scope stem: layer `l`'s directions live under
    /// `{NAME}{l}_fwd` and `{NAME}{l}_bwd` (bundles depend on these names).
    const NAME: &'static str;

    fn new(p: &mut ParamStore, input: usize, hidden: usize, reverse: bool) -> Result<Self>;

    /// `xs`: `(B, T, in)`, `mask`: `(B, T, 1)` with 1 on real tokens.
    /// Returns `(B, T, H)`. Padding sits at the end of each row; the mask
    /// freezes the state there so the reverse direction starts at each
    /// row's last real token.
    fn forward(&self, xs: &Tensor, mask: &Tensor) -> Result<Tensor>;

    /// Both directions of one layer, `(B, T, 2H)`: forward states, then
    /// backward states.
    /// The default runs the two directions one after the other; a cell
    /// with a fused kernel overrides it (see `lstm_kernel.rs`).
    fn bidirectional(fwd: &Self, bwd: &Self, xs: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let f = fwd.forward(xs, mask)?;
        let r = bwd.forward(xs, mask)?;
        Ok(Tensor::cat(&[f, r], 2)?)
    }
}

/// Time steps in processing order.
pub(crate) fn time_steps(t: usize, reverse: bool) -> Box<dyn Iterator<Item = usize>> {
    if reverse {
        Box::new((0..t).rev())
    } else {
        Box::new(0..t)
    }
}

/// `m * new + (1 - m) * old`, written to reuse one subtraction: the state
/// moves on at real tokens and stays put on padding.
pub(crate) fn masked_update(old: &Tensor, new: &Tensor, m: &Tensor) -> Result<Tensor> {
    Ok(old.add(&new.sub(old)?.broadcast_mul(m)?)?)
}

pub struct BiRnn<C> {
    embeddings: Tensor,
    char_cnn: Option<CharCnn>,
    layers: Vec<(C, C)>,
    dropout: f32,
}

impl<C: Recurrent> BiRnn<C> {
    pub fn new(p: &mut ParamStore, spec: &EncoderSpec) -> Result<Self> {
        let embeddings = p.normal("embeddings", &[spec.vocab_size, spec.embedding_dim], 0.1)?;
        let mut layers = Vec::with_capacity(spec.layers);
        for l in 0..spec.layers {
            let input = if l == 0 {
                spec.embedding_dim + spec.char_cnn.map_or(0, |c| c.filters)
            } else {
                2 * spec.hidden_dim
            };
            let fwd = p.scoped(&format!("{}{l}_fwd", C::NAME), |p| {
                C::new(p, input, spec.hidden_dim, false)
            })?;
            let bwd = p.scoped(&format!("{}{l}_bwd", C::NAME), |p| {
                C::new(p, input, spec.hidden_dim, true)
            })?;
            layers.push((fwd, bwd));
        }
        // Drawn last, so the other weights of a seed do not depend on it.
        let char_cnn = spec
            .char_cnn
            .map(|c| p.scoped("char_cnn", |p| CharCnn::new(p, &c)))
            .transpose()?;
        Ok(Self {
            embeddings,
            char_cnn,
            layers,
            dropout: spec.dropout,
        })
    }

    /// `ids`: `(B, T)` u32, `mask`: `(B, T)` f32, `chars`: the positions' word
    /// characters (needed with `char_cnn`). Returns `(B, T, 2H)`. `rng` is `Some` in
    /// training (dropout on) and `None` at inference.
    pub fn forward(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        chars: Option<&BatchChars>,
        mut rng: Option<&mut StdRng>,
    ) -> Result<Tensor> {
        let mut xs = super::embed(&self.embeddings, ids)?;
        if let Some(cnn) = &self.char_cnn {
            xs = Tensor::cat(&[xs, super::char_features(cnn, chars, ids)?], 2)?;
        }
        let mask3 = mask.unsqueeze(2)?;
        for (fwd, bwd) in &self.layers {
            if let Some(rng) = rng.as_deref_mut() {
                xs = dropout(&xs, self.dropout, rng)?;
            }
            xs = C::bidirectional(fwd, bwd, &xs, &mask3)?;
        }
        if let Some(rng) = rng {
            xs = dropout(&xs, self.dropout, rng)?;
        }
        Ok(xs)
    }
}
