//! The model's shape, saved as `model.json` in every bundle so that a model
//! can be rebuilt without the pipeline config.

use std::collections::BTreeMap;

use mtl_core::TaskKind;
use mtl_core::config::CleanOptions;
use mtl_core::task::TargetStats;
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
    /// Size of the label vocabulary; 0 for regression, whose head has one
    /// output.
    pub num_labels: usize,
    /// Side inputs of a sentence-level head, in input order (the task's
    /// `selected` features in `features.json`). Empty for token heads and in
    /// bundles written before side inputs existed.
    #[serde(default)]
    pub features: Vec<String>,
    /// Regression only: the training targets' statistics. The head learns
    /// the standardized target `(y - mean) / std` and predicts in target
    /// units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetStats>,
}

impl HeadSpec {
    /// A head without side inputs or target statistics.
    pub fn new(name: impl Into<String>, kind: TaskKind, num_labels: usize) -> Self {
        Self {
            name: name.into(),
            kind,
            num_labels,
            features: Vec::new(),
            target: None,
        }
    }

    /// Width of the head's output per row (or per position for token
    /// heads).
    pub fn output_dim(&self) -> usize {
        match self.kind {
            TaskKind::Regression => 1,
            _ => self.num_labels,
        }
    }

    /// `(mean, std)` used to standardize regression targets; `(0, 1)`
    /// without statistics, and a degenerate std counts as 1.
    pub fn target_scale(&self) -> (f64, f64) {
        match self.target {
            Some(t) => {
                let std = if t.std.is_finite() && t.std > 0.0 {
                    t.std
                } else {
                    1.0
                };
                (t.mean, std)
            }
            None => (0.0, 1.0),
        }
    }
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
