//! Shared encoders: token ids in, one vector per position out. The kinds
//! are those of `mtl_core::config::EncoderKind`; [`EncoderSpec::kind`] names
//! one.

pub mod bert;
pub mod birnn;
pub mod gru;
pub mod lstm;
pub mod transformer;

use candle_core::Tensor;
use rand::rngs::StdRng;

pub use bert::{BertConfig, BertEncoder};
pub use birnn::{BiRnn, Recurrent};
pub use gru::GruDirection;
pub use lstm::LstmDirection;
pub use transformer::TransformerEncoder;

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
    /// padding at the end of each row. Returns `(B, T, output_dim)`. `rng`
    /// is `Some` in training (dropout on) and `None` at inference.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor, rng: Option<&mut StdRng>) -> Result<Tensor> {
        match self {
            Encoder::BiLstm(e) => e.forward(ids, mask, rng),
            Encoder::BiGru(e) => e.forward(ids, mask, rng),
            Encoder::Transformer(e) => e.forward(ids, mask, rng),
            Encoder::Bert(e) => e.forward(ids, mask, rng),
        }
    }
}

/// Looks up `(B, T)` ids in a `(V, D)` table: `(B, T, D)`.
fn embed(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let (b, t) = ids.dims2()?;
    let dim = table.dim(1)?;
    Ok(table
        .index_select(&ids.flatten_all()?, 0)?
        .reshape((b, t, dim))?)
}
