//! Per-class loss weights, resolved from a task's `class_weights` into one
//! weight per label id, so that train only multiplies.
//!
//! `balanced` gives label `c` the weight `n / (k * count_c)`, with `n` the
//! number of training labels (words for token tasks) and `k` the vocabulary
//! size, as scikit-learn does. A label with no training count (possible
//! only if counts are taken after a policy removed it) weighs 1 rather than
//! infinity. An explicit map weighs the labels it names and leaves the
//! others at 1; naming a label outside the vocabulary is a config error.

use mtl_core::config::ClassWeights;
use mtl_core::{CoreError, PipelineConfig, TaskLabels};

use crate::error::Result;

/// `None` when the task (index `i` in `cfg.tasks`) has no `class_weights`.
pub fn resolve(cfg: &PipelineConfig, i: usize, labels: &TaskLabels) -> Result<Option<Vec<f64>>> {
    let Some(spec) = &cfg.tasks[i].class_weights else {
        return Ok(None);
    };
    Ok(Some(match spec {
        ClassWeights::Preset(_) => balanced(&labels.train_counts),
        ClassWeights::Explicit(map) => {
            if let Some(label) = map.keys().find(|l| labels.id(l).is_none()) {
                return Err(CoreError::ConfigValue {
                    path: cfg.source.path.clone(),
                    key: format!("tasks[{i}].class_weights.{label}"),
                    message: format!(
                        "`{label}` is not a training label of task `{}` (labels: {})",
                        cfg.tasks[i].name,
                        labels.labels.join(", ")
                    ),
                }
                .into());
            }
            labels
                .labels
                .iter()
                .map(|l| map.get(l).copied().unwrap_or(1.0))
                .collect()
        }
    }))
}

pub fn balanced(counts: &[u64]) -> Vec<f64> {
    let n: u64 = counts.iter().sum();
    let k = counts.len() as f64;
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                1.0
            } else {
                n as f64 / (k * c as f64)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::TaskKind;
    use std::path::Path;

    fn cfg(weights: &str) -> PipelineConfig {
        let toml = format!(
            "[pipeline]\nname = \"p\"\n[[datasets]]\nname = \"d\"\nformat = \"jsonl\"\n\
             files = {{ all = \"d.jsonl\" }}\n[[tasks]]\nname = \"t\"\ndataset = \"d\"\n\
             column = \"c\"\ntype = \"classification\"\nclass_weights = {weights}\n"
        );
        PipelineConfig::from_toml_str(&toml, Path::new("p.toml")).unwrap()
    }

    fn labels() -> TaskLabels {
        TaskLabels {
            kind: TaskKind::Classification,
            scheme: None,
            labels: vec!["a".into(), "b".into(), "c".into()],
            train_counts: vec![6, 2, 4],
            class_weights: None,
            target: None,
        }
    }

    #[test]
    fn balanced_weights_follow_inverse_frequency() {
        let w = resolve(&cfg("\"balanced\""), 0, &labels())
            .unwrap()
            .unwrap();
        // n = 12, k = 3: 12 / (3 * count).
        assert_eq!(w, vec![12.0 / 18.0, 2.0, 1.0]);
        assert_eq!(balanced(&[4, 0]), vec![0.5, 1.0]);
    }

    #[test]
    fn explicit_weights_default_to_one_and_reject_unknown_labels() {
        let w = resolve(&cfg("{ b = 3.0 }"), 0, &labels()).unwrap().unwrap();
        assert_eq!(w, vec![1.0, 3.0, 1.0]);
        let err = resolve(&cfg("{ b = 3.0, zz = 2.0 }"), 0, &labels())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`tasks[0].class_weights.zz`"), "{err}");
        assert!(err.contains("p.toml"), "{err}");
    }
}
