//! `split/features.json`: which clean-stage features feed which
//! sentence-level head, and how to standardize them. Split writes it; train
//! copies it into the model bundle, so that predict computes the same
//! inputs from raw text.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureStats {
    /// Mean over the training rows.
    pub mean: f64,
    /// Population standard deviation over the training rows; 1 when the
    /// feature is constant, so standardizing never divides by zero.
    pub std: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedFeature {
    pub feature: String,
    /// Mutual information in nats between the binned feature and the
    /// task's training labels.
    pub mi: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TaskFeatures {
    /// Every feature, highest mutual information first.
    pub ranking: Vec<RankedFeature>,
    /// The side inputs of this task's head, in input order.
    pub selected: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FeatureSet {
    /// Every feature of [`crate::artifact::FEATURES`].
    pub stats: BTreeMap<String, FeatureStats>,
    /// Sentence-level tasks only (classification, multilabel, regression).
    pub tasks: BTreeMap<String, TaskFeatures>,
}

impl FeatureSet {
    pub const FILE: &'static str = "features.json";

    pub fn read(path: &Path) -> Result<Self> {
        crate::fsio::read_json(path)
    }

    /// The side inputs of a task's head; empty when it has none.
    pub fn selected(&self, task: &str) -> &[String] {
        self.tasks
            .get(task)
            .map(|t| t.selected.as_slice())
            .unwrap_or(&[])
    }

    /// Every feature some task uses, in [`crate::artifact::FEATURES`]
    /// order: the `feat_*` columns tokenize carries.
    pub fn used(&self) -> Vec<&'static str> {
        crate::artifact::FEATURES
            .into_iter()
            .filter(|f| {
                self.tasks
                    .values()
                    .any(|t| t.selected.iter().any(|s| s == f))
            })
            .collect()
    }

    /// `(x - mean) / std` of a feature value.
    pub fn standardize(&self, feature: &str, x: f64) -> f64 {
        match self.stats.get(feature) {
            Some(s) => (x - s.mean) / s.std,
            None => x,
        }
    }
}
