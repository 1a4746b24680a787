//! The model's shape, saved as `model.json` in every bundle so that a model
//! can be rebuilt without the pipeline config.

use std::collections::BTreeMap;

use mtl_core::TaskKind;
use mtl_core::config::CleanOptions;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderSpec {
    /// Only `bilstm` so far; the field exists so bundles stay readable when
    /// other encoders arrive.
    pub kind: String,
    pub vocab_size: usize,
    pub embedding_dim: usize,
    pub hidden_dim: usize,
    pub layers: usize,
    pub dropout: f32,
}

impl EncoderSpec {
    /// Width of the encoder's output per position.
    pub fn output_dim(&self) -> usize {
        2 * self.hidden_dim
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    pub name: String,
    pub kind: TaskKind,
    pub num_labels: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub encoder: EncoderSpec,
    pub tasks: Vec<HeadSpec>,
}

impl ModelSpec {
    pub fn head(&self, name: &str) -> Option<&HeadSpec> {
        self.tasks.iter().find(|h| h.name == name)
    }
}

/// What prediction must replay before the model sees raw text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Cleaning options per training dataset.
    pub clean: BTreeMap<String, CleanOptions>,
    /// Sub-tokens per example, specials included.
    pub max_length: usize,
}
