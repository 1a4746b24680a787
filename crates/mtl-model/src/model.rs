//! The multi-task model: one shared encoder, one head per task.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use mtl_core::TaskKind;
use rand::rngs::StdRng;

use crate::batch::{Batch, Targets};
use crate::encoder::{BertConfig, Encoder, bert};
use crate::error::{Error, Result};
use crate::heads::Head;
use crate::loss::{masked_binary_cross_entropy, masked_cross_entropy, masked_mse};
use crate::params::ParamStore;
use crate::spec::{BERT, HeadSpec, ModelSpec};

/// Every encoder parameter's name starts with `encoder.` (a trainer that
/// freezes the encoder, or gives it its own learning rate, selects them by
/// it); heads' with `heads.<task>.`.
pub const ENCODER_SCOPE: &str = "encoder";

pub struct MultiTaskModel {
    pub spec: ModelSpec,
    encoder: Encoder,
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
        let mut p = ParamStore::new(seed, device);
        let encoder = p.scoped(ENCODER_SCOPE, |p| Encoder::new(p, &spec.encoder))?;
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

    /// [`MultiTaskModel::new`], then the pretrained checkpoint in `dir`
    /// (`model.safetensors`) copied into the encoder's variables; the heads
    /// keep their seeded weights. `spec.encoder` must be the checkpoint's
    /// (`EncoderSpec::from_pretrained(.., dir)`). The folder is needed only
    /// here: a saved bundle holds every weight.
    pub fn with_pretrained(
        spec: &ModelSpec,
        seed: u64,
        device: &Device,
        dir: &Path,
    ) -> Result<(Self, VarMap)> {
        if spec.encoder.kind != BERT {
            return Err(Error::Invalid(format!(
                "only the {BERT} encoder loads pretrained weights, not `{}`",
                spec.encoder.kind
            )));
        }
        let from_dir = BertConfig::read(dir)?.encoder_spec(spec.encoder.dropout);
        if from_dir != spec.encoder {
            return Err(Error::Bundle {
                path: dir.join(bert::CONFIG_FILE),
                message: format!(
                    "describes another encoder than the model spec's: {from_dir:?} vs {:?}",
                    spec.encoder
                ),
            });
        }
        let (model, varmap) = Self::new(spec, seed, device)?;
        bert::load_weights(&varmap, ENCODER_SCOPE, &bert::weights_file(dir))?;
        Ok((model, varmap))
    }

    /// The shared encoder's output, `(B, T, spec.encoder.output_dim())`:
    /// what every head reads (e.g. for sentence embeddings by mean
    /// pooling). `rng` turns dropout on.
    pub fn encode(&self, batch: &Batch, rng: Option<&mut StdRng>) -> Result<Tensor> {
        self.encoder
            .forward(&batch.input_ids, &batch.mask, batch.chars.as_ref(), rng)
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
        let encoded = self.encode(batch, rng)?;
        self.heads_forward(&encoded, batch)
    }

    /// [`MultiTaskModel::forward`] from the encoder's output `encoded`. A
    /// dependency task's output is its unmasked `(B, T, T)` arc scores.
    pub fn heads_forward(
        &self,
        encoded: &Tensor,
        batch: &Batch,
    ) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for (spec, head) in &self.heads {
            let k = spec.features.len();
            let y = head
                .forward(encoded, &batch.mask, batch.features.get(&spec.name), k)
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
        let encoded = self.encode(batch, rng)?;
        let outputs = self.heads_forward(&encoded, batch)?;
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
                (TaskKind::Tagging | TaskKind::Spans, Targets::Token(t)) if spec.crf => {
                    // Class weights do not apply to a sequence likelihood.
                    let head = self
                        .crf_head(task)
                        .ok_or_else(|| Error::Invalid(format!("task `{task}` has no CRF head")))?;
                    head.loss(l, t, batch.word_starts.as_deref())?
                }
                (TaskKind::Tagging | TaskKind::Spans, Targets::Token(t)) => {
                    let c = l.dim(2)?;
                    masked_cross_entropy(&l.reshape((t.len(), c))?, t, class_weights)?
                }
                (TaskKind::Dependency, Targets::Tree { heads, rels }) => {
                    let head = self.biaffine_head(task).ok_or_else(|| {
                        Error::Invalid(format!("task `{task}` has no dependency head"))
                    })?;
                    let starts = batch.word_starts.as_deref().ok_or_else(|| {
                        Error::Invalid(format!(
                            "task `{task}` parses words: the batch needs word starts \
                             (Batch::with_word_ids)"
                        ))
                    })?;
                    head.loss(&encoded, l, starts, heads, rels)?
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

    /// The dependency head of a `dependency` task.
    pub fn biaffine_head(&self, task: &str) -> Option<&crate::heads::biaffine::BiaffineHead> {
        self.heads.iter().find_map(|(s, h)| match h {
            Head::Biaffine(b) if s.name == task => Some(b),
            _ => None,
        })
    }

    /// The CRF head of a task with `crf = true`.
    pub fn crf_head(&self, task: &str) -> Option<&crate::heads::crf::CrfHead> {
        self.heads.iter().find_map(|(s, h)| match h {
            Head::Crf(c) if s.name == task => Some(c),
            _ => None,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeSet;

    use crate::bundle::TaskOutput;
    use crate::spec::{EncoderSpec, HeadSpec};
    use mtl_core::FeatureSet;
    use mtl_core::features::{FeatureStats, TaskFeatures};
    use mtl_core::task::TargetStats;
    use rand::{Rng, SeedableRng};

    use crate::encoder::bert::tests::Checkpoint;
    use crate::spec::{BIGRU, BILSTM, BertSpec, TRANSFORMER};

    /// Every encoder kind.
    pub(crate) const ENCODERS: [&str; 4] = [BILSTM, BIGRU, TRANSFORMER, BERT];

    pub(crate) fn tiny_spec(layers: usize) -> ModelSpec {
        tiny_spec_of(BILSTM, layers)
    }

    /// A tiny model with the given encoder, a classification and a spans
    /// head.
    pub(crate) fn tiny_spec_of(kind: &str, layers: usize) -> ModelSpec {
        let encoder = if kind == TRANSFORMER || kind == BERT {
            EncoderSpec {
                kind: kind.into(),
                vocab_size: 20,
                hidden_dim: 8,
                heads: 2,
                ff_dim: Some(12),
                layers,
                dropout: 0.1,
                max_positions: 16,
                bert: (kind == BERT).then(|| BertSpec {
                    type_vocab_size: 2,
                    layer_norm_eps: 1e-12,
                    hidden_act: "gelu".into(),
                }),
                ..Default::default()
            }
        } else {
            EncoderSpec {
                kind: kind.into(),
                vocab_size: 20,
                embedding_dim: 6,
                hidden_dim: 5,
                layers,
                dropout: 0.1,
                ..Default::default()
            }
        };
        ModelSpec {
            encoder,
            tasks: vec![
                HeadSpec::new("sent", TaskKind::Classification, 3),
                HeadSpec::new("tags", TaskKind::Spans, 4),
            ],
        }
    }

    /// Every head kind; the sentence-level ones take side inputs.
    pub(crate) fn all_kinds_spec(layers: usize) -> ModelSpec {
        all_kinds_spec_of(BILSTM, layers)
    }

    pub(crate) fn all_kinds_spec_of(kind: &str, layers: usize) -> ModelSpec {
        let mut spec = tiny_spec_of(kind, layers);
        spec.tasks[0].features = vec!["n_words".into()];
        spec.tasks[0].pooling = mtl_core::config::Pooling::First;
        let mut ml = HeadSpec::new("topics", TaskKind::Multilabel, 3)
            .with_pooling(mtl_core::config::Pooling::Attention);
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
        let mut ner = HeadSpec::new("ner", TaskKind::Spans, 5);
        ner.crf = true;
        ner.crf_constraints = crate::spec::CrfConstraints::for_scheme(
            &["O", "B-A", "I-A", "B-B", "I-B"].map(String::from),
            mtl_core::task::SpanScheme::Bio,
        );
        spec.tasks
            .extend([ml, HeadSpec::new("pos", TaskKind::Tagging, 2), reg, ner]);
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

    /// The training loss (dropout on, seeded) and its parts, for a model
    /// with the two heads of [`tiny_spec_of`] on a batch of two rows of 5
    /// and 3 sub-tokens.
    pub(crate) fn toy_loss(model: &MultiTaskModel, b: &Batch) -> (Tensor, BTreeMap<String, f32>) {
        let mut targets = BTreeMap::new();
        targets.insert("sent".to_string(), Targets::Sentence(vec![0, 2]));
        let rows: Vec<Option<&[i32]>> = vec![Some(&[-100, 1, 2, 3, -100]), Some(&[-100, 0, -100])];
        targets.insert("tags".to_string(), Targets::Token(b.token_targets(&rows)));
        let mut rng = StdRng::seed_from_u64(1);
        model
            .loss(b, &targets, &LossWeights::default(), Some(&mut rng))
            .unwrap()
            .unwrap()
    }

    /// Backpropagates `loss` and asserts that every parameter in `varmap`
    /// receives a non-zero gradient (`what` names the case); returns the
    /// parameters' names.
    pub(crate) fn assert_every_gradient_nonzero(
        loss: &Tensor,
        varmap: &VarMap,
        what: &str,
    ) -> BTreeSet<String> {
        let grads = loss.backward().unwrap();
        let data = varmap.data().lock().unwrap();
        for (name, var) in data.iter() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{what}: {name}: no gradient"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(norm > 0.0, "{what}: {name}: zero gradient");
        }
        data.keys().cloned().collect()
    }

    /// Per-task losses before and after `steps` AdamW steps on one batch.
    pub(crate) fn fit_steps(
        model: &MultiTaskModel,
        varmap: &VarMap,
        batch: &Batch,
        targets: &BTreeMap<String, Targets>,
        lr: f64,
        steps: usize,
    ) -> (BTreeMap<String, f32>, BTreeMap<String, f32>) {
        use candle_nn::{AdamW, Optimizer, ParamsAdamW};
        let mut opt = AdamW::new(
            varmap.all_vars(),
            ParamsAdamW {
                lr,
                weight_decay: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        let w = LossWeights::default();
        let (_, first) = model.loss(batch, targets, &w, None).unwrap().unwrap();
        for _ in 0..steps {
            let (loss, _) = model.loss(batch, targets, &w, None).unwrap().unwrap();
            opt.backward_step(&loss).unwrap();
        }
        let (_, last) = model.loss(batch, targets, &w, None).unwrap().unwrap();
        (first, last)
    }

    /// candle 0.11 silently drops gradients through some fused ops, so every
    /// parameter must be seen to receive a non-zero gradient.
    #[test]
    fn every_parameter_receives_a_gradient() {
        for kind in ENCODERS {
            for layers in [1, 2] {
                let d = Device::Cpu;
                let (model, varmap) =
                    MultiTaskModel::new(&tiny_spec_of(kind, layers), 7, &d).unwrap();
                let b = Batch::pad(&[&[1, 4, 5, 6, 2], &[1, 7, 2]], &d).unwrap();
                let (loss, parts) = toy_loss(&model, &b);
                assert_eq!(parts.len(), 2);
                let what = format!("{kind}, {layers} layers");
                let names = assert_every_gradient_nonzero(&loss, &varmap, &what);
                // Two heads of two parameters each, plus the encoder's.
                let encoder = match kind {
                    BILSTM => 1 + 2 * 3 * layers,
                    BIGRU => 1 + 2 * 4 * layers,
                    TRANSFORMER => 2 + 13 * layers + 2,
                    // Three tables and a norm; per layer four projections
                    // (the key without bias), two norms and two dense.
                    _ => 5 + 15 * layers,
                };
                assert_eq!(names.len(), 4 + encoder, "{kind}: {names:?}");
            }
        }
    }

    /// The same check with all five head kinds, side inputs and class
    /// weights in play.
    #[test]
    fn every_parameter_of_every_head_kind_receives_a_gradient() {
        for (kind, layers) in ENCODERS.iter().flat_map(|k| [(*k, 1), (*k, 2)]) {
            let (model, varmap) =
                MultiTaskModel::new(&all_kinds_spec_of(kind, layers), 7, &Device::Cpu).unwrap();
            assert_all_kinds_learn(&model, &varmap, &format!("{kind}, {layers} layers"));
        }
    }

    /// One backward pass over a batch that every head of
    /// [`all_kinds_spec_of`] has targets in: every parameter's gradient is
    /// non-zero.
    pub(crate) fn assert_all_kinds_learn(model: &MultiTaskModel, varmap: &VarMap, what: &str) {
        let d = Device::Cpu;
        let b = Batch::pad(&[&[1, 4, 5, 6, 2], &[1, 7, 2], &[1, 9, 9, 2]], &d)
            .unwrap()
            .with_word_ids(&[&[-1, 0, 1, 2, -1][..], &[-1, 0, -1], &[-1, 0, 0, -1]])
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
        let ner: Vec<Option<&[i32]>> =
            vec![Some(&[-100, 1, 2, 0, -100]), Some(&[-100, 3, -100]), None];
        targets.insert("ner".to_string(), Targets::Token(b.token_targets(&ner)));
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
        assert_eq!(parts.len(), 6, "{what}: {parts:?}");
        let names = assert_every_gradient_nonzero(&loss, varmap, what);
        for head in ["sent", "tags", "topics", "pos", "score", "ner"] {
            for p in ["weight", "bias"] {
                assert!(
                    names.contains(&format!("heads.{head}.{p}")),
                    "{what}: {head}.{p}"
                );
            }
        }
        assert!(names.contains("heads.topics.attention"), "{what}");
        for p in ["transitions", "start_transitions", "end_transitions"] {
            assert!(names.contains(&format!("heads.ner.{p}")), "{what}: {p}");
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
        let (first, last) = fit_steps(&model, &varmap, &b, &targets, 0.03, 80);
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
        for kind in ENCODERS {
            let d = Device::Cpu;
            let (model, _) = MultiTaskModel::new(&tiny_spec_of(kind, 2), 3, &d).unwrap();
            let alone = Batch::pad(&[&[1, 7, 2]], &d).unwrap();
            let padded = Batch::pad(&[&[1, 7, 2], &[1, 4, 5, 6, 8, 9, 2]], &d).unwrap();
            let a = model.forward(&alone, None).unwrap();
            let p = model.forward(&padded, None).unwrap();
            let sa = a["sent"].to_vec2::<f32>().unwrap();
            let sp = p["sent"].to_vec2::<f32>().unwrap();
            for (x, y) in sa[0].iter().zip(&sp[0]) {
                assert!(
                    (x - y).abs() < 1e-5,
                    "{kind}: sentence logits changed with padding"
                );
            }
            let ta = a["tags"].to_vec3::<f32>().unwrap();
            let tp = p["tags"].to_vec3::<f32>().unwrap();
            for pos in 0..3 {
                for (x, y) in ta[0][pos].iter().zip(&tp[0][pos]) {
                    assert!(
                        (x - y).abs() < 1e-5,
                        "{kind}: token logits changed with padding"
                    );
                }
            }
        }
    }

    /// Each encoder learns a toy tagging task within a few dozen steps. The
    /// tag of a token is its id's parity plus 2 if token 3 occurs anywhere
    /// in the row, so a token's tag depends on context the encoder must
    /// carry (recurrence or attention), not on its own embedding alone.
    #[test]
    fn every_encoder_learns_a_toy_tagging_task() {
        let d = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(5);
        let rows: Vec<Vec<u32>> = (0..48)
            .map(|_| {
                let len = rng.random_range(3..8);
                (0..len).map(|_| rng.random_range(3..12)).collect()
            })
            .collect();
        let tags: Vec<Vec<i32>> = rows
            .iter()
            .map(|r| {
                let has3 = if r.contains(&3) { 2 } else { 0 };
                r.iter().map(|&id| (id % 2) as i32 + has3).collect()
            })
            .collect();
        let ids: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let b = Batch::pad(&ids, &d).unwrap();
        let tag_rows: Vec<Option<&[i32]>> = tags.iter().map(|t| Some(t.as_slice())).collect();
        let targets = BTreeMap::from([(
            "tags".to_string(),
            Targets::Token(b.token_targets(&tag_rows)),
        )]);
        for kind in ENCODERS {
            let mut spec = tiny_spec_of(kind, 1);
            spec.encoder.dropout = 0.0;
            spec.encoder.hidden_dim = 16;
            spec.encoder.embedding_dim = 16;
            spec.encoder.ff_dim = Some(32);
            spec.tasks.retain(|h| h.name == "tags");
            let (model, varmap) = MultiTaskModel::new(&spec, 3, &d).unwrap();
            let (first, last) = fit_steps(&model, &varmap, &b, &targets, 0.02, 40);
            eprintln!("{kind}: {} -> {}", first["tags"], last["tags"]);
            assert!(
                last["tags"] < first["tags"] * 0.3,
                "{kind}: {first:?} -> {last:?}"
            );
            let out = crate::bundle::predict(&model, &b).unwrap();
            let TaskOutput::Token { label, .. } = &out["tags"] else {
                panic!("{:?}", out["tags"])
            };
            let (mut right, mut all) = (0, 0);
            for (l, t) in label.iter().zip(&tags) {
                // Batch::pad adds no specials: position i is token i.
                for (p, y) in l.iter().zip(t) {
                    right += usize::from(*p as i32 == *y);
                    all += 1;
                }
            }
            assert!(right * 10 >= all * 9, "{kind}: {right}/{all} tags right");
        }
    }

    /// A CRF spans head learns a toy BIO task over rows of `[CLS]`, words
    /// of one to three pieces and `[SEP]`, and then decodes every row's gold
    /// word tags exactly, read where eval and predict read them (each
    /// word's first sub-token). A word's first piece says `B-A` (3), `B-B`
    /// (5), "inside" (4, of whichever entity is open) or `O` (6..10);
    /// continuation pieces are 10..16 or, to tempt a sub-token chain, 3 or
    /// 5, and carry the word's label as with `label_all_subtokens`, which
    /// the word-level loss must skip. Decoding over every position instead
    /// of the words fails this test.
    #[test]
    fn a_crf_head_decodes_its_toy_training_spans_exactly() {
        use mtl_core::align::first_subtoken_positions;
        let d = Device::Cpu;
        let mut rng = StdRng::seed_from_u64(8);
        /// One toy row: sub-tokens, their words, their targets, word tags.
        struct Row {
            ids: Vec<u32>,
            word_ids: Vec<i32>,
            targets: Vec<i32>,
            tags: Vec<i32>,
        }
        // Labels: O, B-A, I-A, B-B, I-B (all_kinds_spec's `ner`).
        let mut rows: Vec<Row> = Vec::new();
        for _ in 0..48 {
            let n = rng.random_range(2..7);
            let mut tags: Vec<i32> = Vec::new();
            for _ in 0..n {
                let open = tags
                    .last()
                    .filter(|&&t| t != 0)
                    .map(|&t| if t % 2 == 1 { t } else { t - 1 });
                tags.push(match (rng.random_range(0..4), open) {
                    (0, Some(b)) | (1, Some(b)) => b + 1,
                    (0, _) => 1,
                    (1, _) => 3,
                    _ => 0,
                });
            }
            let (mut ids, mut word_ids, mut targets) = (vec![1u32], vec![-1i32], vec![-100i32]);
            for (w, &tag) in tags.iter().enumerate() {
                ids.push(match tag {
                    1 => 3,
                    3 => 5,
                    2 | 4 => 4,
                    _ => rng.random_range(6..10),
                });
                for _ in 0..rng.random_range(0..3) {
                    // A continuation piece that looks like a `B-` word
                    // start: a sub-token chain would take its `B-` as the
                    // entity the next "inside" word continues.
                    ids.push(if rng.random_bool(0.3) {
                        [3, 5][rng.random_range(0..2)]
                    } else {
                        rng.random_range(10..16)
                    });
                }
                while word_ids.len() < ids.len() {
                    word_ids.push(w as i32);
                    targets.push(tag);
                }
            }
            ids.push(2);
            word_ids.push(-1);
            targets.push(-100);
            rows.push(Row {
                ids,
                word_ids,
                targets,
                tags,
            });
        }
        let ids: Vec<&[u32]> = rows.iter().map(|r| r.ids.as_slice()).collect();
        let word_ids: Vec<&[i32]> = rows.iter().map(|r| r.word_ids.as_slice()).collect();
        let b = Batch::pad(&ids, &d)
            .unwrap()
            .with_word_ids(&word_ids)
            .unwrap();
        let per_row: Vec<Option<&[i32]>> =
            rows.iter().map(|r| Some(r.targets.as_slice())).collect();
        let targets =
            BTreeMap::from([("ner".to_string(), Targets::Token(b.token_targets(&per_row)))]);
        let mut spec = all_kinds_spec(1);
        spec.encoder.dropout = 0.0;
        spec.encoder.hidden_dim = 16;
        spec.encoder.embedding_dim = 16;
        spec.tasks.retain(|h| h.name == "ner");
        let (model, varmap) = MultiTaskModel::new(&spec, 3, &d).unwrap();
        let (first, last) = fit_steps(&model, &varmap, &b, &targets, 0.03, 60);
        assert!(last["ner"] < first["ner"] * 0.2, "{first:?} -> {last:?}");
        let out = crate::bundle::predict(&model, &b).unwrap();
        let TaskOutput::Token { label, .. } = &out["ner"] else {
            panic!("{:?}", out["ner"])
        };
        for (row, l) in rows.iter().zip(label) {
            let got: Vec<i32> = first_subtoken_positions(&row.word_ids, row.tags.len())
                .into_iter()
                .map(|p| l[p.unwrap()] as i32)
                .collect();
            assert_eq!(got, row.tags, "row {:?}", row.ids);
        }
    }

    /// Save, load and predict: the loaded model gives the same outputs.
    #[test]
    fn every_encoder_round_trips_through_a_bundle() {
        use crate::bundle::tests::save_bundle;
        use crate::bundle::{self, Bundle};
        let d = Device::Cpu;
        for kind in ENCODERS {
            let dir = tempfile::tempdir().unwrap();
            let spec = all_kinds_spec_of(kind, 2);
            let model = save_bundle(dir.path(), &spec, &all_kinds_features()).unwrap();
            let loaded = Bundle::load(&dir.path().join("model"), &d).unwrap();
            assert_eq!(loaded.spec, spec, "{kind}");
            let batch = Batch::pad(&[&[1, 4, 2], &[1, 5, 6, 7, 9, 2]], &d)
                .unwrap()
                .with_features(
                    &loaded.features,
                    &[raw_features(1.0, 0.0), raw_features(4.0, 1.0)],
                )
                .unwrap();
            let want = model.forward(&batch, None).unwrap();
            let got = loaded.model.forward(&batch, None).unwrap();
            for (task, w) in &want {
                let w = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let g = got[task].flatten_all().unwrap().to_vec1::<f32>().unwrap();
                assert_eq!(w, g, "{kind}: task {task}");
            }
            assert_eq!(
                bundle::predict(&model, &batch).unwrap(),
                loaded.predict(&batch).unwrap(),
                "{kind}"
            );
            // A differently seeded model does differ, so the test can fail.
            let (other, _) = MultiTaskModel::new(&spec, 12, &d).unwrap();
            let o = other.forward(&batch, None).unwrap()["sent"]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let w = want["sent"]
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            assert_ne!(o, w, "{kind}");
        }
    }

    #[test]
    fn an_unknown_encoder_is_an_error() {
        let mut spec = tiny_spec(1);
        spec.encoder.kind = "cnn".into();
        let err = MultiTaskModel::new(&spec, 1, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("`cnn`") && err.contains("transformer"),
            "{err}"
        );
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

    /// A tiny BERT checkpoint in a temporary folder, and the all-kinds
    /// spec built on it as train builds it.
    fn pretrained_all_kinds() -> (tempfile::TempDir, ModelSpec, Checkpoint) {
        use crate::encoder::bert::tests::{checkpoint_tensors, tiny_config, write_checkpoint};
        use mtl_core::config::{EncoderKind, ModelConfig};
        let dir = tempfile::tempdir().unwrap();
        let cfg = tiny_config();
        let tensors = checkpoint_tensors(&cfg, 21);
        write_checkpoint(dir.path(), &cfg, &tensors, "");
        let m = ModelConfig {
            encoder: EncoderKind::Bert,
            pretrained: Some(dir.path().display().to_string()),
            ..Default::default()
        };
        let mut spec = all_kinds_spec_of(BERT, 1);
        spec.encoder = EncoderSpec::from_pretrained(&m, dir.path()).unwrap();
        (dir, spec, tensors)
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// The encoder's variables hold the checkpoint; the heads hold the
    /// seeded initial weights, as without a checkpoint.
    #[test]
    fn a_pretrained_encoder_loads_and_the_heads_stay_seeded() {
        let d = Device::Cpu;
        let (dir, spec, tensors) = pretrained_all_kinds();
        assert_eq!(spec.encoder.output_dim(), 16);
        let (_, varmap) = MultiTaskModel::with_pretrained(&spec, 7, &d, dir.path()).unwrap();
        let (_, fresh) = MultiTaskModel::new(&spec, 7, &d).unwrap();
        let file: BTreeMap<&str, &Vec<f32>> =
            tensors.iter().map(|(n, _, v)| (n.as_str(), v)).collect();
        let data = varmap.data().lock().unwrap();
        let fresh = fresh.data().lock().unwrap();
        let mut encoder = 0;
        for (name, var) in data.iter() {
            if let Some(key) = name.strip_prefix("encoder.") {
                assert_eq!(&values(var.as_tensor()), file[key], "{name}");
                assert_ne!(
                    values(var.as_tensor()),
                    values(fresh[name].as_tensor()),
                    "{name}"
                );
                encoder += 1;
            } else {
                assert!(name.starts_with("heads."), "{name}");
                assert_eq!(
                    values(var.as_tensor()),
                    values(fresh[name].as_tensor()),
                    "{name}"
                );
            }
        }
        assert_eq!(encoder, 5 + 15 * 2);
    }

    #[test]
    fn every_parameter_of_a_pretrained_model_receives_a_gradient() {
        let (dir, spec, _) = pretrained_all_kinds();
        let (model, varmap) =
            MultiTaskModel::with_pretrained(&spec, 7, &Device::Cpu, dir.path()).unwrap();
        assert_all_kinds_learn(&model, &varmap, "pretrained bert");
    }

    /// A bundle of a fine-tuned pretrained model loads and predicts the
    /// same after the pretrained folder is gone.
    #[test]
    fn a_pretrained_model_round_trips_without_its_folder() {
        use crate::bundle::Bundle;
        use crate::bundle::tests::save_weights;
        let d = Device::Cpu;
        let (dir, spec, _) = pretrained_all_kinds();
        let (model, varmap) = MultiTaskModel::with_pretrained(&spec, 7, &d, dir.path()).unwrap();
        let out = tempfile::tempdir().unwrap();
        save_weights(out.path(), &spec, &varmap, &all_kinds_features()).unwrap();
        let bundle_dir = out.path().join("model");
        drop(dir);
        let loaded = Bundle::load(&bundle_dir, &d).unwrap();
        assert_eq!(loaded.spec, spec);
        let batch = Batch::pad(&[&[1, 4, 2], &[1, 5, 6, 7, 9, 2]], &d)
            .unwrap()
            .with_features(
                &loaded.features,
                &[raw_features(1.0, 0.0), raw_features(4.0, 1.0)],
            )
            .unwrap();
        let want = model.forward(&batch, None).unwrap();
        let got = loaded.model.forward(&batch, None).unwrap();
        for (task, w) in &want {
            assert_eq!(values(w), values(&got[task]), "task {task}");
        }
        // A model with the same seed but no checkpoint differs.
        let (fresh, _) = MultiTaskModel::new(&spec, 7, &d).unwrap();
        let f = fresh.forward(&batch, None).unwrap();
        assert_ne!(values(&f["sent"]), values(&want["sent"]));
    }

    #[test]
    fn a_spec_that_is_not_the_checkpoints_is_an_error() {
        let d = Device::Cpu;
        let (dir, mut spec, _) = pretrained_all_kinds();
        spec.encoder.ff_dim = Some(64);
        let err = MultiTaskModel::with_pretrained(&spec, 7, &d, dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("config.json"), "{err}");
        let err = MultiTaskModel::with_pretrained(&tiny_spec(1), 7, &d, dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("bert") && err.contains("`bilstm`"), "{err}");
        // from_config cannot know the checkpoint's sizes: building it fails
        // with a pointer to from_pretrained.
        let m = mtl_core::config::ModelConfig {
            encoder: mtl_core::config::EncoderKind::Bert,
            ..Default::default()
        };
        let spec = ModelSpec {
            encoder: EncoderSpec::from_config(&m, 20, 16),
            tasks: vec![],
        };
        let err = MultiTaskModel::new(&spec, 1, &d).err().unwrap().to_string();
        assert!(err.contains("from_pretrained"), "{err}");
    }
}
