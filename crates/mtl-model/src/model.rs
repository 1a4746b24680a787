//! The multi-task model: one shared encoder, one head per task.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::rngs::StdRng;

use crate::batch::{Batch, Targets};
use crate::encoder::BiLstmEncoder;
use crate::error::{Error, Result};
use crate::heads::{Head, classification::ClassificationHead, tagging::TaggingHead};
use crate::loss::masked_cross_entropy;
use crate::params::ParamStore;
use crate::spec::ModelSpec;

pub struct MultiTaskModel {
    pub spec: ModelSpec,
    encoder: BiLstmEncoder,
    heads: Vec<(String, Head)>,
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
            let head = p.scoped(&format!("heads.{}", h.name), |p| {
                Ok(if h.kind.is_token_level() {
                    Head::Tagging(TaggingHead::new(p, width, h.num_labels)?)
                } else {
                    Head::Classification(ClassificationHead::new(p, width, h.num_labels)?)
                })
            })?;
            heads.push((h.name.clone(), head));
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

    /// Logits per task: `(B, C)` for sentence tasks, `(B, T, C)` for token
    /// tasks. `rng` turns dropout on.
    pub fn forward(
        &self,
        batch: &Batch,
        rng: Option<&mut StdRng>,
    ) -> Result<BTreeMap<String, Tensor>> {
        let encoded = self.encoder.forward(&batch.input_ids, &batch.mask, rng)?;
        let mut out = BTreeMap::new();
        for (name, head) in &self.heads {
            out.insert(name.clone(), head.forward(&encoded, &batch.mask)?);
        }
        Ok(out)
    }

    /// Weighted sum of the per-task losses over the tasks this batch has
    /// labels for, and each of those losses as a number.
    pub fn loss(
        &self,
        batch: &Batch,
        targets: &BTreeMap<String, Targets>,
        weights: &BTreeMap<String, f64>,
        rng: Option<&mut StdRng>,
    ) -> Result<Option<(Tensor, BTreeMap<String, f32>)>> {
        let logits = self.forward(batch, rng)?;
        let mut total: Option<Tensor> = None;
        let mut parts = BTreeMap::new();
        for (task, target) in targets {
            let l = logits
                .get(task)
                .ok_or_else(|| Error::Invalid(format!("no head for task `{task}`")))?;
            let loss = match target {
                Targets::Sentence(t) => masked_cross_entropy(l, t)?,
                Targets::Token(t) => {
                    let c = l.dim(2)?;
                    masked_cross_entropy(&l.reshape((t.len(), c))?, t)?
                }
            };
            if let Some(loss) = loss {
                parts.insert(task.clone(), loss.to_scalar::<f32>()?);
                let w = weights.get(task).copied().unwrap_or(1.0);
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
mod tests {
    use super::*;
    use crate::spec::{EncoderSpec, HeadSpec};
    use mtl_core::TaskKind;
    use rand::SeedableRng;

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
                HeadSpec {
                    name: "sent".into(),
                    kind: TaskKind::Classification,
                    num_labels: 3,
                },
                HeadSpec {
                    name: "tags".into(),
                    kind: TaskKind::Spans,
                    num_labels: 4,
                },
            ],
        }
    }

    fn batch_and_targets(b: &Batch) -> BTreeMap<String, Targets> {
        let mut targets = BTreeMap::new();
        targets.insert("sent".to_string(), Targets::Sentence(vec![0, 2]));
        let rows: Vec<Option<&[i32]>> = vec![Some(&[-100, 1, 2, 3, -100]), Some(&[-100, 0, -100])];
        targets.insert("tags".to_string(), Targets::Token(b.token_targets(&rows)));
        targets
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
                .loss(&b, &targets, &BTreeMap::new(), Some(&mut rng))
                .unwrap()
                .unwrap();
            assert_eq!(parts.len(), 2);
            let grads = loss.backward().unwrap();
            let data = varmap.data().lock().unwrap();
            assert!(
                data.len() >= 5 + 6 * layers,
                "unexpected parameter count {}",
                data.len()
            );
            for (name, var) in data.iter() {
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
                assert!(norm > 0.0, "{name}: zero gradient");
            }
        }
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
