//! The multi-task model: one shared encoder, one head per task.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use mtl_core::TaskKind;
use rand::rngs::StdRng;

use crate::batch::{Batch, Targets};
use crate::encoder::BiLstmEncoder;
use crate::error::{Error, Result};
use crate::heads::Head;
use crate::loss::{masked_binary_cross_entropy, masked_cross_entropy, masked_mse};
use crate::params::ParamStore;
use crate::spec::{HeadSpec, ModelSpec};

pub struct MultiTaskModel {
    pub spec: ModelSpec,
    encoder: BiLstmEncoder,
    heads: Vec<(HeadSpec, Head)>,
}

/// How much each task's loss counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LossWeights {
    /// Per task multiplier of its loss; a task left out weighs 1.
    pub tasks: BTreeMap<String, f64>,
    /// Per classification, tagging or spans task: one weight per label id
    /// (`TaskLabels::class_weights`); a task left out weighs every class 1.
    pub classes: BTreeMap<String, Vec<f32>>,
}

impl MultiTaskModel {
    /// Builds the model with seeded random weights; the `VarMap` holds every
    /// trainable parameter (for the optimizer, saving and loading).
    pub fn new(spec: &ModelSpec, seed: u64, device: &Device) -> Result<(Self, VarMap)> {
        if spec.encoder.kind != "bilstm" {
            return Err(Error::Invalid(format!(
                "unknown encoder `{}`",
                spec.encoder.kind
            )));
        }
        let mut p = ParamStore::new(seed, device);
        let encoder = p.scoped("encoder", |p| BiLstmEncoder::new(p, &spec.encoder))?;
        let width = spec.encoder.output_dim();
        let mut heads = Vec::new();
        for h in &spec.tasks {
            if h.kind.is_token_level() && !h.features.is_empty() {
                return Err(Error::Invalid(format!(
                    "task `{}` is {}: only sentence-level heads take side inputs",
                    h.name,
                    h.kind.name()
                )));
            }
            let head = p.scoped(&format!("heads.{}", h.name), |p| Head::new(p, h, width))?;
            heads.push((h.clone(), head));
        }
        Ok((
            Self {
                spec: spec.clone(),
                encoder,
                heads,
            },
            p.into_varmap(),
        ))
    }

    /// Raw outputs per task: logits `(B, C)` for classification and
    /// multilabel, `(B, T, C)` for token tasks, and standardized values
    /// `(B,)` for regression. `rng` turns dropout on. A head that takes side
    /// inputs needs them in `batch.features`.
    pub fn forward(
        &self,
        batch: &Batch,
        rng: Option<&mut StdRng>,
    ) -> Result<BTreeMap<String, Tensor>> {
        let encoded = self.encoder.forward(&batch.input_ids, &batch.mask, rng)?;
        let mut out = BTreeMap::new();
        for (spec, head) in &self.heads {
            let k = spec.features.len();
            let y = head
                .forward(&encoded, &batch.mask, batch.features.get(&spec.name), k)
                .map_err(|e| match e {
                    Error::Invalid(m) => Error::Invalid(format!(
                        "task `{}` (side inputs: {}): {m}",
                        spec.name,
                        spec.features.join(", ")
                    )),
                    other => other,
                })?;
            out.insert(spec.name.clone(), y);
        }
        Ok(out)
    }

    /// Weighted sum of the per-task losses over the tasks this batch has
    /// labels for, and each of those (unweighted) losses as a number.
    /// Regression targets are in target units; the loss is the MSE of the
    /// standardized target.
    pub fn loss(
        &self,
        batch: &Batch,
        targets: &BTreeMap<String, Targets>,
        weights: &LossWeights,
        rng: Option<&mut StdRng>,
    ) -> Result<Option<(Tensor, BTreeMap<String, f32>)>> {
        let outputs = self.forward(batch, rng)?;
        let mut total: Option<Tensor> = None;
        let mut parts = BTreeMap::new();
        for (task, target) in targets {
            let (l, spec) = outputs
                .get(task)
                .zip(self.spec.head(task))
                .ok_or_else(|| Error::Invalid(format!("no head for task `{task}`")))?;
            let class_weights = weights.classes.get(task).map(Vec::as_slice);
            let loss = match (spec.kind, target) {
                (TaskKind::Classification, Targets::Sentence(t)) => {
                    masked_cross_entropy(l, t, class_weights)?
                }
                (TaskKind::Tagging | TaskKind::Spans, Targets::Token(t)) => {
                    let c = l.dim(2)?;
                    masked_cross_entropy(&l.reshape((t.len(), c))?, t, class_weights)?
                }
                (TaskKind::Multilabel, Targets::Multilabel(t)) => {
                    masked_binary_cross_entropy(l, t)?
                }
                (TaskKind::Regression, Targets::Regression(t)) => {
                    let (mean, std) = spec.target_scale();
                    let z: Vec<Option<f32>> = t
                        .iter()
                        .map(|y| y.map(|y| ((f64::from(y) - mean) / std) as f32))
                        .collect();
                    masked_mse(l, &z)?
                }
                (kind, _) => {
                    return Err(Error::Invalid(format!(
                        "task `{task}` is {} but its targets are of another kind",
                        kind.name()
                    )));
                }
            };
            if let Some(loss) = loss {
                parts.insert(task.clone(), loss.to_scalar::<f32>()?);
                let w = weights.tasks.get(task).copied().unwrap_or(1.0);
                let weighted = loss.affine(w, 0.0)?;
                total = Some(match total {
                    Some(acc) => acc.add(&weighted)?,
                    None => weighted,
                });
            }
        }
        Ok(total.map(|t| (t, parts)))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::bundle::TaskOutput;
    use crate::spec::{EncoderSpec, HeadSpec};
    use mtl_core::FeatureSet;
    use mtl_core::features::{FeatureStats, TaskFeatures};
    use mtl_core::task::TargetStats;
    use rand::{Rng, SeedableRng};

    pub(crate) fn tiny_spec(layers: usize) -> ModelSpec {
        ModelSpec {
            encoder: EncoderSpec {
                kind: "bilstm".into(),
                vocab_size: 20,
                embedding_dim: 6,
                hidden_dim: 5,
                layers,
                dropout: 0.1,
            },
            tasks: vec![
                HeadSpec::new("sent", TaskKind::Classification, 3),
                HeadSpec::new("tags", TaskKind::Spans, 4),
            ],
        }
    }

    /// Every head kind; the sentence-level ones take side inputs.
    pub(crate) fn all_kinds_spec(layers: usize) -> ModelSpec {
        let mut spec = tiny_spec(layers);
        spec.tasks[0].features = vec!["n_words".into()];
        let mut ml = HeadSpec::new("topics", TaskKind::Multilabel, 3);
        ml.features = vec!["n_words".into(), "upper_ratio".into()];
        let mut reg = HeadSpec::new("score", TaskKind::Regression, 0);
        reg.features = vec!["upper_ratio".into()];
        reg.target = Some(TargetStats {
            count: 10,
            mean: 3.0,
            std: 2.0,
            min: 0.0,
            max: 6.0,
        });
        spec.tasks
            .extend([ml, HeadSpec::new("pos", TaskKind::Tagging, 2), reg]);
        spec
    }

    /// The feature set matching [`all_kinds_spec`].
    pub(crate) fn all_kinds_features() -> FeatureSet {
        let mut set = FeatureSet::default();
        for (f, mean, std) in [("n_words", 4.0, 2.0), ("upper_ratio", 0.5, 0.25)] {
            set.stats.insert(f.into(), FeatureStats { mean, std });
        }
        for (task, sel) in [
            ("sent", vec!["n_words"]),
            ("topics", vec!["n_words", "upper_ratio"]),
            ("score", vec!["upper_ratio"]),
        ] {
            set.tasks.insert(
                task.into(),
                TaskFeatures {
                    ranking: vec![],
                    selected: sel.into_iter().map(String::from).collect(),
                },
            );
        }
        set
    }

    pub(crate) fn raw_features(n_words: f32, upper: f32) -> BTreeMap<String, f32> {
        BTreeMap::from([
            ("n_words".to_string(), n_words),
            ("upper_ratio".to_string(), upper),
        ])
    }

    fn batch_and_targets(b: &Batch) -> BTreeMap<String, Targets> {
        let mut targets = BTreeMap::new();
        targets.insert("sent".to_string(), Targets::Sentence(vec![0, 2]));
        let rows: Vec<Option<&[i32]>> = vec![Some(&[-100, 1, 2, 3, -100]), Some(&[-100, 0, -100])];
        targets.insert("tags".to_string(), Targets::Token(b.token_targets(&rows)));
        targets
    }

    fn grad_norms(loss: &Tensor, varmap: &VarMap) -> BTreeMap<String, f32> {
        let grads = loss.backward().unwrap();
        let data = varmap.data().lock().unwrap();
        data.iter()
            .map(|(name, var)| {
                let g = grads
                    .get(var.as_tensor())
                    .unwrap_or_else(|| panic!("{name}: no gradient"));
                let norm = g
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                (name.clone(), norm)
            })
            .collect()
    }

    /// candle 0.11 silently drops gradients through some fused ops, so every
    /// parameter must be seen to receive a non-zero gradient.
    #[test]
    fn every_parameter_receives_a_gradient() {
        for layers in [1, 2] {
            let d = Device::Cpu;
            let (model, varmap) = MultiTaskModel::new(&tiny_spec(layers), 7, &d).unwrap();
            let b = Batch::pad(&[&[1, 4, 5, 6, 2], &[1, 7, 2]], &d).unwrap();
            let targets = batch_and_targets(&b);
            let mut rng = StdRng::seed_from_u64(1);
            let (loss, parts) = model
                .loss(&b, &targets, &LossWeights::default(), Some(&mut rng))
                .unwrap()
                .unwrap();
            assert_eq!(parts.len(), 2);
            let norms = grad_norms(&loss, &varmap);
            assert!(
                norms.len() >= 5 + 6 * layers,
                "unexpected parameter count {}",
                norms.len()
            );
            for (name, norm) in norms {
                assert!(norm > 0.0, "{name}: zero gradient");
            }
        }
    }

    /// The same check with all five head kinds, side inputs and class
    /// weights in play.
    #[test]
    fn every_parameter_of_every_head_kind_receives_a_gradient() {
        for layers in [1, 2] {
            let d = Device::Cpu;
            let (model, varmap) = MultiTaskModel::new(&all_kinds_spec(layers), 7, &d).unwrap();
            let b = Batch::pad(&[&[1, 4, 5, 6, 2], &[1, 7, 2], &[1, 9, 9, 2]], &d)
                .unwrap()
                .with_features(
                    &all_kinds_features(),
                    &[
                        raw_features(3.0, 0.1),
                        raw_features(1.0, 0.9),
                        raw_features(2.0, 0.4),
                    ],
                )
                .unwrap();
            let mut targets = BTreeMap::new();
            targets.insert("sent".to_string(), Targets::Sentence(vec![0, 2, -1]));
            let tags: Vec<Option<&[i32]>> = vec![Some(&[-100, 1, 2, 3, -100]), None, None];
            targets.insert("tags".to_string(), Targets::Token(b.token_targets(&tags)));
            let pos: Vec<Option<&[i32]>> =
                vec![None, Some(&[-100, 1, -100]), Some(&[-100, 0, 1, -100])];
            targets.insert("pos".to_string(), Targets::Token(b.token_targets(&pos)));
            targets.insert(
                "topics".to_string(),
                Targets::Multilabel(vec![Some(vec![0, 2]), Some(vec![]), None]),
            );
            targets.insert(
                "score".to_string(),
                Targets::Regression(vec![None, Some(5.0), Some(1.5)]),
            );
            let weights = LossWeights {
                tasks: BTreeMap::from([("score".to_string(), 0.5)]),
                classes: BTreeMap::from([
                    ("sent".to_string(), vec![1.0, 2.0, 0.5]),
                    ("tags".to_string(), vec![1.0, 1.0, 3.0, 1.0]),
                ]),
            };
            let mut rng = StdRng::seed_from_u64(1);
            let (loss, parts) = model
                .loss(&b, &targets, &weights, Some(&mut rng))
                .unwrap()
                .unwrap();
            assert_eq!(parts.len(), 5, "{parts:?}");
            let norms = grad_norms(&loss, &varmap);
            for head in ["sent", "tags", "topics", "pos", "score"] {
                for p in ["weight", "bias"] {
                    assert!(
                        norms.contains_key(&format!("heads.{head}.{p}")),
                        "{head}.{p}"
                    );
                }
            }
            for (name, norm) in norms {
                assert!(norm > 0.0, "{name}: zero gradient");
            }
        }
    }

    #[test]
    fn a_head_with_side_inputs_needs_them() {
        let d = Device::Cpu;
        let (model, _) = MultiTaskModel::new(&all_kinds_spec(1), 7, &d).unwrap();
        let b = Batch::pad(&[&[1, 4, 2]], &d).unwrap();
        let err = model.forward(&b, None).err().unwrap().to_string();
        assert!(
            err.contains("with_features") && err.contains("task `"),
            "{err}"
        );
        let mut spec = tiny_spec(1);
        spec.tasks[1].features = vec!["n_words".into()];
        assert!(
            MultiTaskModel::new(&spec, 7, &d).is_err(),
            "token heads take no side inputs"
        );
    }

    #[test]
    fn targets_of_the_wrong_kind_are_an_error() {
        let d = Device::Cpu;
        let (model, _) = MultiTaskModel::new(&tiny_spec(1), 7, &d).unwrap();
        let b = Batch::pad(&[&[1, 4, 2]], &d).unwrap();
        let targets = BTreeMap::from([("sent".to_string(), Targets::Regression(vec![Some(1.0)]))]);
        let err = model
            .loss(&b, &targets, &LossWeights::default(), None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("`sent`") && err.contains("classification"),
            "{err}"
        );
    }

    /// A multilabel head learns "which of tokens 3, 4, 5 occur", and a
    /// regression head learns `10 + 3 * upper_ratio` from its side input.
    #[test]
    fn multilabel_and_regression_heads_learn() {
        use candle_nn::{AdamW, Optimizer, ParamsAdamW};
        let d = Device::Cpu;
        let mut spec = all_kinds_spec(1);
        spec.encoder.dropout = 0.0;
        spec.encoder.hidden_dim = 8;
        spec.tasks
            .retain(|h| h.name == "topics" || h.name == "score");
        spec.tasks[1].target = Some(TargetStats {
            count: 64,
            mean: 11.5,
            std: 0.75,
            min: 10.0,
            max: 13.0,
        });
        let features = all_kinds_features();
        let (model, varmap) = MultiTaskModel::new(&spec, 3, &d).unwrap();
        let mut rng = StdRng::seed_from_u64(9);
        let mut rows = Vec::new();
        for _ in 0..64 {
            let len = rng.random_range(2..7);
            let ids: Vec<u32> = (0..len).map(|_| rng.random_range(3..12)).collect();
            let upper: f32 = rng.random_range(0.0..1.0);
            let topics: Vec<u32> = (0..3u32).filter(|t| ids.contains(&(t + 3))).collect();
            rows.push((
                ids,
                raw_features(len as f32, upper),
                topics,
                10.0 + 3.0 * upper,
            ));
        }
        let ids: Vec<&[u32]> = rows.iter().map(|r| r.0.as_slice()).collect();
        let feats: Vec<&BTreeMap<String, f32>> = rows.iter().map(|r| &r.1).collect();
        let b = Batch::pad(&ids, &d)
            .unwrap()
            .with_features(&features, &feats)
            .unwrap();
        let targets = BTreeMap::from([
            (
                "topics".to_string(),
                Targets::Multilabel(rows.iter().map(|r| Some(r.2.clone())).collect()),
            ),
            (
                "score".to_string(),
                Targets::Regression(rows.iter().map(|r| Some(r.3)).collect()),
            ),
        ]);
        let mut opt = AdamW::new(
            varmap.all_vars(),
            ParamsAdamW {
                lr: 0.03,
                weight_decay: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        let w = LossWeights::default();
        let (_, first) = model.loss(&b, &targets, &w, None).unwrap().unwrap();
        for _ in 0..80 {
            let (loss, _) = model.loss(&b, &targets, &w, None).unwrap().unwrap();
            opt.backward_step(&loss).unwrap();
        }
        let (_, last) = model.loss(&b, &targets, &w, None).unwrap().unwrap();
        assert!(
            last["topics"] < first["topics"] * 0.5,
            "{first:?} -> {last:?}"
        );
        assert!(
            last["score"] < first["score"] * 0.2,
            "{first:?} -> {last:?}"
        );
        // Predictions come back in target units and label ids.
        let out = crate::bundle::predict(&model, &b).unwrap();
        let TaskOutput::Regression { value } = &out["score"] else {
            panic!("{:?}", out["score"])
        };
        let mae: f32 = value
            .iter()
            .zip(&rows)
            .map(|(v, r)| (v - r.3).abs())
            .sum::<f32>()
            / rows.len() as f32;
        assert!(mae < 0.4, "mean absolute error {mae}");
        let TaskOutput::Multilabel { probs, labels } = &out["topics"] else {
            panic!("{:?}", out["topics"])
        };
        assert_eq!(probs[0].len(), 3);
        let exact = labels.iter().zip(&rows).filter(|(l, r)| **l == r.2).count();
        assert!(
            exact * 10 >= rows.len() * 8,
            "{exact}/{} exact label sets",
            rows.len()
        );
    }

    #[test]
    fn padding_does_not_change_a_row_in_eval_mode() {
        let d = Device::Cpu;
        let (model, _) = MultiTaskModel::new(&tiny_spec(1), 3, &d).unwrap();
        let alone = Batch::pad(&[&[1, 7, 2]], &d).unwrap();
        let padded = Batch::pad(&[&[1, 7, 2], &[1, 4, 5, 6, 8, 9, 2]], &d).unwrap();
        let a = model.forward(&alone, None).unwrap();
        let p = model.forward(&padded, None).unwrap();
        let sa = a["sent"].to_vec2::<f32>().unwrap();
        let sp = p["sent"].to_vec2::<f32>().unwrap();
        for (x, y) in sa[0].iter().zip(&sp[0]) {
            assert!((x - y).abs() < 1e-5, "sentence logits changed with padding");
        }
        let ta = a["tags"].to_vec3::<f32>().unwrap();
        let tp = p["tags"].to_vec3::<f32>().unwrap();
        for pos in 0..3 {
            for (x, y) in ta[0][pos].iter().zip(&tp[0][pos]) {
                assert!((x - y).abs() < 1e-5, "token logits changed with padding");
            }
        }
    }

    #[test]
    fn same_seed_same_weights() {
        let d = Device::Cpu;
        let (_, a) = MultiTaskModel::new(&tiny_spec(1), 5, &d).unwrap();
        let (_, b) = MultiTaskModel::new(&tiny_spec(1), 5, &d).unwrap();
        let a = a.data().lock().unwrap();
        let b = b.data().lock().unwrap();
        for (name, va) in a.iter() {
            let diff = va
                .as_tensor()
                .sub(b[name].as_tensor())
                .unwrap()
                .abs()
                .unwrap()
                .sum_all()
                .unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{name}");
        }
    }
}
