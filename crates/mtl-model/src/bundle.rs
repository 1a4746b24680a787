//! The model bundle: everything prediction needs, in one folder.
//!
//! ```text
//! model/
//!   model.json          ModelSpec + Preprocess (format_version 1)
//!   model.safetensors   weights
//!   tokenizer.json      the tokenizer used in training
//!   labels.json         label vocabularies (mtl_core::LabelSet)
//!   features.json       side inputs and their statistics (mtl_core::FeatureSet);
//!                       absent in older bundles, which then have none
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{D, Device};
use candle_nn::VarMap;
use mtl_core::{FeatureSet, LabelSet, TaskKind};
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
    /// Which features feed which head, and their training statistics:
    /// prediction computes them from raw text and builds batches with
    /// [`Batch::with_features`].
    pub features: FeatureSet,
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
    /// Per row, the probability of every label (id order) and the ids whose
    /// probability is at least [`MULTILABEL_THRESHOLD`].
    Multilabel {
        probs: Vec<Vec<f32>>,
        labels: Vec<Vec<u32>>,
    },
    /// One value per row, in the target's own units.
    Regression { value: Vec<f32> },
}

/// A multilabel head predicts every label whose probability reaches this.
pub const MULTILABEL_THRESHOLD: f32 = 0.5;

/// Writes a bundle into `dir` (normally a staging folder). `tokenizer_json`,
/// the label set and the feature set are copied in unchanged.
pub fn save(
    dir: &Path,
    meta: &BundleMeta,
    varmap: &VarMap,
    tokenizer_json: &Path,
    labels: &LabelSet,
    features: &FeatureSet,
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
    mtl_core::fsio::write_json(&dir.join(FeatureSet::FILE), features)?;
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
        let features_path = dir.join(FeatureSet::FILE);
        let features = if features_path.exists() {
            FeatureSet::read(&features_path)?
        } else {
            FeatureSet::default()
        };
        check_features(&meta.spec, &features, &features_path)?;
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
            features,
            model,
            dir: dir.to_path_buf(),
        })
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(TOKENIZER)
    }

    /// Every task's prediction (see [`TaskOutput`]). Heads with side inputs
    /// need a batch built with [`Batch::with_features`] and
    /// [`Bundle::features`].
    pub fn predict(&self, batch: &Batch) -> Result<BTreeMap<String, TaskOutput>> {
        predict(&self.model, batch)
    }
}

/// Every head's side inputs must be selected for its task in
/// `features.json`, in the same order, with statistics to standardize them.
fn check_features(spec: &ModelSpec, features: &FeatureSet, path: &Path) -> Result<()> {
    for h in &spec.tasks {
        if h.features.is_empty() {
            continue;
        }
        let bad = |message: String| Error::Bundle {
            path: path.to_path_buf(),
            message,
        };
        if features.selected(&h.name) != h.features.as_slice() {
            return Err(bad(format!(
                "task `{}` was trained with side inputs [{}] but features.json selects [{}]",
                h.name,
                h.features.join(", "),
                features.selected(&h.name).join(", ")
            )));
        }
        if let Some(f) = h.features.iter().find(|f| !features.stats.contains_key(*f)) {
            return Err(bad(format!(
                "no statistics for feature `{f}` (a side input of task `{}`)",
                h.name
            )));
        }
    }
    Ok(())
}

/// Inference with any model, e.g. one still being trained.
pub fn predict(model: &MultiTaskModel, batch: &Batch) -> Result<BTreeMap<String, TaskOutput>> {
    let mut outputs = model.forward(batch, None)?;
    let mut out = BTreeMap::new();
    for h in &model.spec.tasks {
        let l = outputs
            .remove(&h.name)
            .ok_or_else(|| Error::Invalid(format!("no output for task `{}`", h.name)))?;
        let output = match h.kind {
            TaskKind::Classification => {
                let probs = candle_nn::ops::softmax(&l, D::Minus1)?;
                TaskOutput::Sentence {
                    label: probs.argmax(D::Minus1)?.to_vec1::<u32>()?,
                    prob: probs.max(D::Minus1)?.to_vec1::<f32>()?,
                }
            }
            TaskKind::Tagging | TaskKind::Spans if h.crf => {
                let head = model
                    .crf_head(&h.name)
                    .ok_or_else(|| Error::Invalid(format!("task `{}` has no CRF head", h.name)))?;
                // Viterbi over every real position (batches carry no word
                // starts); the probability is the emission softmax of the
                // chosen label.
                let label = head.decode(&l, &batch.lengths)?;
                let prob = crate::heads::crf::emission_probs(&l, &label)?;
                TaskOutput::Token { label, prob }
            }
            TaskKind::Tagging | TaskKind::Spans => {
                let probs = candle_nn::ops::softmax(&l, D::Minus1)?;
                TaskOutput::Token {
                    label: cut_to_lengths(
                        probs.argmax(D::Minus1)?.to_vec2::<u32>()?,
                        &batch.lengths,
                    ),
                    prob: cut_to_lengths(probs.max(D::Minus1)?.to_vec2::<f32>()?, &batch.lengths),
                }
            }
            TaskKind::Multilabel => {
                let probs = candle_nn::ops::sigmoid(&l)?.to_vec2::<f32>()?;
                let labels = probs
                    .iter()
                    .map(|row| {
                        (0..row.len() as u32)
                            .filter(|&i| row[i as usize] >= MULTILABEL_THRESHOLD)
                            .collect()
                    })
                    .collect();
                TaskOutput::Multilabel { probs, labels }
            }
            TaskKind::Regression => {
                let (mean, std) = h.target_scale();
                let value = l
                    .to_vec1::<f32>()?
                    .into_iter()
                    .map(|z| (f64::from(z) * std + mean) as f32)
                    .collect();
                TaskOutput::Regression { value }
            }
        };
        out.insert(h.name.clone(), output);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{all_kinds_features, all_kinds_spec, raw_features};
    use mtl_core::TaskLabels;

    fn labels(spec: &ModelSpec) -> LabelSet {
        let mut set = LabelSet::default();
        for h in &spec.tasks {
            set.tasks.insert(
                h.name.clone(),
                TaskLabels {
                    kind: h.kind,
                    scheme: None,
                    labels: (0..h.num_labels).map(|i| format!("l{i}")).collect(),
                    train_counts: vec![1; h.num_labels],
                    class_weights: None,
                    target: h.target,
                },
            );
        }
        set
    }

    fn save_bundle(dir: &Path, spec: &ModelSpec, features: &FeatureSet) {
        let (_, varmap) = MultiTaskModel::new(spec, 11, &Device::Cpu).unwrap();
        let tok = dir.join("tok.json");
        std::fs::write(&tok, "{}").unwrap();
        let meta = BundleMeta {
            format_version: FORMAT_VERSION,
            spec: spec.clone(),
            preprocess: Preprocess {
                clean: BTreeMap::new(),
                max_length: 16,
                ..Default::default()
            },
        };
        save(
            &dir.join("model"),
            &meta,
            &varmap,
            &tok,
            &labels(spec),
            features,
        )
        .unwrap();
    }

    #[test]
    fn a_bundle_with_every_head_kind_loads_and_predicts() {
        let dir = tempfile::tempdir().unwrap();
        let spec = all_kinds_spec(1);
        save_bundle(dir.path(), &spec, &all_kinds_features());
        let b = Bundle::load(&dir.path().join("model"), &Device::Cpu).unwrap();
        assert_eq!(b.features, all_kinds_features());
        assert_eq!(b.spec, spec);
        let batch = Batch::pad(&[&[1, 4, 2], &[1, 5, 6, 7, 2]], &Device::Cpu)
            .unwrap()
            .with_features(
                &b.features,
                &[raw_features(1.0, 0.0), raw_features(3.0, 1.0)],
            )
            .unwrap();
        let out = b.predict(&batch).unwrap();
        assert_eq!(out.len(), 6);
        match &out["ner"] {
            TaskOutput::Token { label, prob } => {
                assert_eq!((label[0].len(), label[1].len()), (3, 5));
                assert!(prob.iter().flatten().all(|p| (0.0..=1.0).contains(p)));
                // Viterbi with the constraints: never O → I-X or start → I-X.
                for row in label {
                    let mut prev = 0;
                    for &y in row {
                        assert!(!(y == 2 && prev != 1 && prev != 2), "{row:?}");
                        assert!(!(y == 4 && prev != 3 && prev != 4), "{row:?}");
                        prev = y;
                    }
                }
            }
            other => panic!("{other:?}"),
        }
        match &out["topics"] {
            TaskOutput::Multilabel { probs, labels } => {
                assert_eq!(probs.len(), 2);
                for (p, l) in probs.iter().zip(labels) {
                    assert_eq!(p.len(), 3);
                    let want: Vec<u32> = (0..3).filter(|&i| p[i as usize] >= 0.5).collect();
                    assert_eq!(*l, want);
                }
            }
            other => panic!("{other:?}"),
        }
        match &out["score"] {
            TaskOutput::Regression { value } => assert_eq!(value.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(matches!(out["sent"], TaskOutput::Sentence { .. }));
        match &out["pos"] {
            TaskOutput::Token { label, .. } => assert_eq!(label[0].len(), 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn regression_predictions_are_in_target_units() {
        let dir = tempfile::tempdir().unwrap();
        let spec = all_kinds_spec(1);
        save_bundle(dir.path(), &spec, &all_kinds_features());
        let b = Bundle::load(&dir.path().join("model"), &Device::Cpu).unwrap();
        let batch = Batch::pad(&[&[1, 4, 2]], &Device::Cpu)
            .unwrap()
            .with_features(&b.features, &[raw_features(1.0, 0.0)])
            .unwrap();
        let z = b.model.forward(&batch, None).unwrap()["score"]
            .to_vec1::<f32>()
            .unwrap()[0];
        let TaskOutput::Regression { value } = &b.predict(&batch).unwrap()["score"] else {
            panic!()
        };
        // all_kinds_spec: mean 3, std 2.
        assert!((value[0] - (z * 2.0 + 3.0)).abs() < 1e-5);
    }

    #[test]
    fn an_old_bundle_without_features_json_loads() {
        let dir = tempfile::tempdir().unwrap();
        let spec = crate::model::tests::tiny_spec(1);
        save_bundle(dir.path(), &spec, &FeatureSet::default());
        let model = dir.path().join("model");
        std::fs::remove_file(model.join(FeatureSet::FILE)).unwrap();
        // model.json as written before heads had `features`.
        let mut meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(model.join(MODEL_JSON)).unwrap()).unwrap();
        for t in meta["spec"]["tasks"].as_array_mut().unwrap() {
            t.as_object_mut().unwrap().remove("features");
        }
        std::fs::write(model.join(MODEL_JSON), meta.to_string()).unwrap();
        let b = Bundle::load(&model, &Device::Cpu).unwrap();
        assert_eq!(b.features, FeatureSet::default());
        assert!(b.spec.tasks.iter().all(|h| h.features.is_empty()));
        let batch = Batch::pad(&[&[1, 4, 2]], &Device::Cpu).unwrap();
        assert_eq!(b.predict(&batch).unwrap().len(), 2);
    }

    #[test]
    fn features_json_that_disagrees_with_the_heads_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut features = all_kinds_features();
        features.tasks.get_mut("topics").unwrap().selected.reverse();
        save_bundle(dir.path(), &all_kinds_spec(1), &features);
        let err = Bundle::load(&dir.path().join("model"), &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("features.json") && err.contains("`topics`"),
            "{err}"
        );
    }
}
