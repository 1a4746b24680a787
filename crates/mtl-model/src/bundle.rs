//! The model bundle: everything prediction needs, in one folder.
//!
//! ```text
//! model/
//!   model.json          ModelSpec + Preprocess (format_version 1)
//!   model.safetensors   weights
//!   tokenizer.json      the tokenizer used in training
//!   labels.json         label vocabularies (mtl_core::LabelSet)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{D, Device};
use candle_nn::VarMap;
use mtl_core::LabelSet;
use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::model::MultiTaskModel;
use crate::spec::{ModelSpec, Preprocess};

pub const FORMAT_VERSION: u32 = 1;
pub const MODEL_JSON: &str = "model.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleMeta {
    pub format_version: u32,
    pub spec: ModelSpec,
    pub preprocess: Preprocess,
}

pub struct Bundle {
    pub spec: ModelSpec,
    pub preprocess: Preprocess,
    pub labels: LabelSet,
    pub model: MultiTaskModel,
    pub dir: PathBuf,
}

/// Predictions of one task for one batch.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutput {
    /// Label id and its probability, one per row.
    Sentence { label: Vec<u32>, prob: Vec<f32> },
    /// Per row, one label id and probability per sub-token position.
    Token {
        label: Vec<Vec<u32>>,
        prob: Vec<Vec<f32>>,
    },
}

/// Writes a bundle into `dir` (normally a staging folder). `tokenizer_json`
/// and the label set are copied in unchanged.
pub fn save(
    dir: &Path,
    meta: &BundleMeta,
    varmap: &VarMap,
    tokenizer_json: &Path,
    labels: &LabelSet,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| mtl_core::CoreError::io(dir, e))?;
    let weights = dir.join(WEIGHTS);
    let tmp = mtl_core::fsio::tmp_sibling(&weights);
    varmap.save(&tmp)?;
    std::fs::rename(&tmp, &weights).map_err(|e| mtl_core::CoreError::io(&weights, e))?;
    let tok =
        std::fs::read(tokenizer_json).map_err(|e| mtl_core::CoreError::io(tokenizer_json, e))?;
    mtl_core::fsio::atomic_write(&dir.join(TOKENIZER), &tok)?;
    mtl_core::fsio::write_json(&dir.join(LabelSet::FILE), labels)?;
    mtl_core::fsio::write_json(&dir.join(MODEL_JSON), meta)?;
    Ok(())
}

impl Bundle {
    pub fn load(dir: &Path, device: &Device) -> Result<Bundle> {
        let meta: BundleMeta = mtl_core::fsio::read_json(&dir.join(MODEL_JSON))?;
        if meta.format_version != FORMAT_VERSION {
            return Err(Error::Bundle {
                path: dir.join(MODEL_JSON),
                message: format!(
                    "bundle format {} is not supported (expected {FORMAT_VERSION})",
                    meta.format_version
                ),
            });
        }
        let labels = LabelSet::read(&dir.join(LabelSet::FILE))?;
        for h in &meta.spec.tasks {
            let n = labels.get(&h.name)?.len();
            if n != h.num_labels {
                return Err(Error::Bundle {
                    path: dir.join(LabelSet::FILE),
                    message: format!(
                        "task `{}` has {n} labels but the model has {}",
                        h.name, h.num_labels
                    ),
                });
            }
        }
        let (model, mut varmap) = MultiTaskModel::new(&meta.spec, 0, device)?;
        let weights = dir.join(WEIGHTS);
        varmap.load(&weights).map_err(|e| Error::Bundle {
            path: weights.clone(),
            message: e.to_string(),
        })?;
        Ok(Bundle {
            spec: meta.spec,
            preprocess: meta.preprocess,
            labels,
            model,
            dir: dir.to_path_buf(),
        })
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(TOKENIZER)
    }

    /// Most likely label and its probability for every task.
    pub fn predict(&self, batch: &Batch) -> Result<BTreeMap<String, TaskOutput>> {
        predict(&self.model, batch)
    }
}

/// Inference with any model, e.g. one still being trained.
pub fn predict(model: &MultiTaskModel, batch: &Batch) -> Result<BTreeMap<String, TaskOutput>> {
    let logits = model.forward(batch, None)?;
    let mut out = BTreeMap::new();
    for (task, l) in logits {
        let probs = candle_nn::ops::softmax(&l, D::Minus1)?;
        let best = probs.argmax(D::Minus1)?;
        let best_p = probs.max(D::Minus1)?;
        let output = if l.rank() == 2 {
            TaskOutput::Sentence {
                label: best.to_vec1::<u32>()?,
                prob: best_p.to_vec1::<f32>()?,
            }
        } else {
            let labels = best.to_vec2::<u32>()?;
            let ps = best_p.to_vec2::<f32>()?;
            TaskOutput::Token {
                label: cut_to_lengths(labels, &batch.lengths),
                prob: cut_to_lengths(ps, &batch.lengths),
            }
        };
        out.insert(task, output);
    }
    Ok(out)
}

/// Drops the padded tail of each row.
fn cut_to_lengths<T>(rows: Vec<Vec<T>>, lengths: &[usize]) -> Vec<Vec<T>> {
    rows.into_iter()
        .zip(lengths)
        .map(|(mut r, &n)| {
            r.truncate(n);
            r
        })
        .collect()
}
