//! One head per task, on top of the shared encoder.

pub mod biaffine;
pub mod classification;
pub mod crf;
pub mod mst;
pub mod multilabel;
pub mod pool;
pub mod regression;
pub mod tagging;

use candle_core::Tensor;
use mtl_core::TaskKind;

use crate::error::Result;
use crate::params::ParamStore;
use crate::spec::HeadSpec;

/// Sentence heads map `(B, T, D)` (plus `(B, k)` side inputs) to `(B, C)`
/// (`(B,)` for regression); token heads to `(B, T, C)`.
pub enum Head {
    Classification(classification::ClassificationHead, pool::Pooler),
    Multilabel(multilabel::MultilabelHead, pool::Pooler),
    Regression(regression::RegressionHead, pool::Pooler),
    Tagging(tagging::TaggingHead),
    Crf(crf::CrfHead),
    Biaffine(biaffine::BiaffineHead),
}

impl Head {
    /// The head a task kind gets; `width` is the encoder's output width.
    pub fn new(p: &mut ParamStore, spec: &HeadSpec, width: usize) -> Result<Self> {
        let input = width + spec.features.len();
        Ok(match spec.kind {
            TaskKind::Tagging | TaskKind::Spans if spec.crf => Head::Crf(crf::CrfHead::new(
                p,
                width,
                spec.num_labels,
                &spec.crf_constraints,
            )?),
            TaskKind::Tagging | TaskKind::Spans => {
                Head::Tagging(tagging::TaggingHead::new(p, width, spec.num_labels)?)
            }
            TaskKind::Dependency => {
                Head::Biaffine(biaffine::BiaffineHead::new(p, width, spec.num_labels)?)
            }
            TaskKind::Classification => Head::Classification(
                classification::ClassificationHead::new(p, input, spec.num_labels)?,
                pool::Pooler::new(p, spec.pooling, width)?,
            ),
            TaskKind::Multilabel => Head::Multilabel(
                multilabel::MultilabelHead::new(p, input, spec.num_labels)?,
                pool::Pooler::new(p, spec.pooling, width)?,
            ),
            TaskKind::Regression => Head::Regression(
                regression::RegressionHead::new(p, input)?,
                pool::Pooler::new(p, spec.pooling, width)?,
            ),
        })
    }

    /// `side`: the task's `(B, k)` side inputs, where its head takes `k > 0`.
    pub fn forward(
        &self,
        encoded: &Tensor,
        mask: &Tensor,
        side: Option<&Tensor>,
        k: usize,
    ) -> Result<Tensor> {
        match self {
            Head::Tagging(h) => h.forward(encoded),
            Head::Crf(h) => h.forward(encoded),
            // Unmasked arc scores; the model masks, decodes and scores
            // relations with the head itself (see `heads::biaffine`).
            Head::Biaffine(h) => h.arc_scores(encoded),
            Head::Classification(h, pl) => {
                h.forward(&pool::sentence_input(pl, encoded, mask, side, k)?)
            }
            Head::Multilabel(h, pl) => {
                h.forward(&pool::sentence_input(pl, encoded, mask, side, k)?)
            }
            Head::Regression(h, pl) => {
                h.forward(&pool::sentence_input(pl, encoded, mask, side, k)?)
            }
        }
    }
}

/// A plain affine layer with seeded initialisation.
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
}

impl Linear {
    pub fn new(p: &mut ParamStore, input: usize, output: usize) -> Result<Self> {
        let bound = 1.0 / (input as f64).sqrt();
        Ok(Self {
            weight: p.uniform("weight", &[input, output], bound)?,
            bias: p.uniform("bias", &[output], bound)?,
        })
    }

    /// Applies to the last dimension of a tensor of any rank.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let dims = xs.dims().to_vec();
        let last = *dims.last().unwrap_or(&0);
        let rows = xs.elem_count() / last.max(1);
        let out = xs
            .reshape((rows, last))?
            .matmul(&self.weight)?
            .broadcast_add(&self.bias)?;
        let mut out_dims = dims;
        if let Some(d) = out_dims.last_mut() {
            *d = self.bias.dim(0)?;
        }
        Ok(out.reshape(out_dims)?)
    }
}
