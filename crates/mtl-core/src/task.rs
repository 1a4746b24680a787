//! Task types and label vocabularies: what a task predicts and how its labels
//! map to class ids. `labels.json` is written by split and travels unchanged
//! into the model bundle, so train, eval and predict agree on every id.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// One label per text.
    Classification,
    /// One label per word.
    Tagging,
    /// Entity spans as per-word tags, scored at entity level.
    Spans,
    /// Any number of labels per text (zero included).
    Multilabel,
    /// One real number per text.
    Regression,
    /// A dependency tree over the words: every word's head (another word
    /// or the root) and the relation to it. The task's `column` holds the
    /// relations (CoNLL-U DEPREL); the heads come from the dataset's HEAD
    /// column, so only `conllu` datasets carry it.
    Dependency,
}

impl TaskKind {
    /// Whether labels are per word (and so aligned to sub-tokens).
    pub fn is_token_level(self) -> bool {
        matches!(
            self,
            TaskKind::Tagging | TaskKind::Spans | TaskKind::Dependency
        )
    }

    /// Whether the task has a label vocabulary (all but regression).
    pub fn has_vocab(self) -> bool {
        self != TaskKind::Regression
    }

    /// The name used in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Classification => "classification",
            TaskKind::Tagging => "tagging",
            TaskKind::Spans => "spans",
            TaskKind::Multilabel => "multilabel",
            TaskKind::Regression => "regression",
            TaskKind::Dependency => "dependency",
        }
    }
}

/// Training-split statistics of a regression target: the mean is the
/// baseline prediction, and train standardizes targets with mean and std.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TargetStats {
    pub count: u64,
    pub mean: f64,
    /// Population standard deviation; 1 when the targets are all equal.
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SpanScheme {
    /// IOB2: every entity starts with `B-`.
    #[default]
    Bio,
    Bioes,
}

/// One task's label vocabulary, ids in the order of `labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskLabels {
    pub kind: TaskKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<SpanScheme>,
    /// Empty for regression.
    pub labels: Vec<String>,
    /// Training-split count of each label, for baselines and reports. For
    /// multilabel, the number of training texts carrying the label.
    pub train_counts: Vec<u64>,
    /// One loss weight per label id, resolved from the task's
    /// `class_weights`; `None` weighs every class 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<Vec<f64>>,
    /// Regression only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetStats>,
}

impl TaskLabels {
    pub fn id(&self, label: &str) -> Option<usize> {
        self.labels.iter().position(|l| l == label)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Id of the most frequent training label: the majority baseline.
    pub fn majority(&self) -> usize {
        let mut best = 0;
        for (i, &c) in self.train_counts.iter().enumerate() {
            if c > self.train_counts[best] {
                best = i;
            }
        }
        best
    }
}

/// `labels.json`: every task's vocabulary, keyed by task name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LabelSet {
    pub tasks: BTreeMap<String, TaskLabels>,
}

impl LabelSet {
    pub const FILE: &'static str = "labels.json";

    pub fn read(path: &Path) -> Result<Self> {
        crate::fsio::read_json(path)
    }

    pub fn get(&self, task: &str) -> Result<&TaskLabels> {
        self.tasks.get(task).ok_or_else(|| {
            CoreError::artifact(Self::FILE, format!("no label vocabulary for task `{task}`"))
        })
    }
}
