//! Shared encoders: token ids in, one vector per position out. The kinds
//! are those of `mtl_core::config::EncoderKind`; [`EncoderSpec::kind`] names
//! one. The recurrent encoders and the transformer can also read each
//! position's word characters through a character CNN ([`charcnn`]).

pub mod bert;
pub mod birnn;
pub mod charcnn;
pub mod gru;
pub mod lstm;
mod lstm_kernel;
pub mod transformer;

use candle_core::Tensor;
use rand::rngs::StdRng;

pub use bert::{BertConfig, BertEncoder};
pub use birnn::{BiRnn, Recurrent};
pub use charcnn::CharCnn;
pub use gru::GruDirection;
pub use lstm::LstmDirection;
pub use transformer::TransformerEncoder;

use crate::batch::BatchChars;
use crate::error::{Error, Result};
use crate::params::ParamStore;
use crate::spec::{BERT, BIGRU, BILSTM, EncoderSpec, TRANSFORMER};

pub type BiLstmEncoder = BiRnn<LstmDirection>;
pub type BiGruEncoder = BiRnn<GruDirection>;

pub enum Encoder {
    BiLstm(BiLstmEncoder),
    BiGru(BiGruEncoder),
    Transformer(TransformerEncoder),
    Bert(BertEncoder),
}

impl Encoder {
    /// The encoder `spec.kind` names, with seeded weights (a pretrained
    /// encoder's are overwritten afterwards, see
    /// [`crate::MultiTaskModel::with_pretrained`]).
    pub fn new(p: &mut ParamStore, spec: &EncoderSpec) -> Result<Self> {
        if spec.kind == BERT && spec.char_cnn.is_some() {
            return Err(Error::Invalid(format!(
                "the {BERT} encoder takes no char_cnn (its pretrained embeddings expect nothing else)"
            )));
        }
        Ok(match spec.kind.as_str() {
            BILSTM => Encoder::BiLstm(BiRnn::new(p, spec)?),
            BIGRU => Encoder::BiGru(BiRnn::new(p, spec)?),
            TRANSFORMER => Encoder::Transformer(TransformerEncoder::new(p, spec)?),
            BERT => Encoder::Bert(BertEncoder::new(p, spec)?),
            other => {
                return Err(Error::Invalid(format!(
                    "unknown encoder `{other}` (expected {BILSTM}, {BIGRU}, {TRANSFORMER} or \
                     {BERT})"
                )));
            }
        })
    }

    /// `ids`: `(B, T)` u32, `mask`: `(B, T)` f32 with 1 on real tokens and
    /// padding at the end of each row, `chars`: each position's word's
    /// characters ([`crate::Batch::chars`]), needed by an encoder with `char_cnn` and
    /// ignored by others. Returns `(B, T, output_dim)`. `rng` is `Some` in
    /// training (dropout on) and `None` at inference.
    pub fn forward(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        chars: Option<&BatchChars>,
        rng: Option<&mut StdRng>,
    ) -> Result<Tensor> {
        match self {
            Encoder::BiLstm(e) => e.forward(ids, mask, chars, rng),
            Encoder::BiGru(e) => e.forward(ids, mask, chars, rng),
            Encoder::Transformer(e) => e.forward(ids, mask, chars, rng),
            Encoder::Bert(e) => e.forward(ids, mask, rng),
        }
    }
}

/// The character CNN's `(B, T, filters)` for a batch of `(B, T)` `ids`:
/// each position's word's vector, computed once per distinct word. An error
/// when the batch has no characters or they do not fit `ids`.
fn char_features(cnn: &CharCnn, chars: Option<&BatchChars>, ids: &Tensor) -> Result<Tensor> {
    let chars = chars.ok_or_else(|| {
        Error::Invalid(
            "the model reads characters (char_cnn) but the batch has none (Batch::with_chars)"
                .into(),
        )
    })?;
    let (b, t) = ids.dims2()?;
    if chars.positions.dims() != [b, t] {
        return Err(Error::Invalid(format!(
            "the batch's characters are for {:?} positions, not ({b}, {t}) like its ids",
            chars.positions.dims()
        )));
    }
    let words = cnn.forward(&chars.words)?;
    let f = words.dim(1)?;
    Ok(words
        .index_select(&chars.positions.flatten_all()?, 0)?
        .reshape((b, t, f))?)
}

/// Looks up `(B, T)` ids in a `(V, D)` table: `(B, T, D)`.
fn embed(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let (b, t) = ids.dims2()?;
    let dim = table.dim(1)?;
    Ok(table
        .index_select(&ids.flatten_all()?, 0)?
        .reshape((b, t, dim))?)
}
