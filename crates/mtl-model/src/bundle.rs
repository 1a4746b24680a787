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
//!   chars.json          with char_cnn: the character vocabulary
//!                       (mtl_core::CharVocab), copied from beside the tokenizer
//!   thresholds.json     per multilabel task, one decision threshold per label
//!                       ([`Thresholds`], tuned on dev by mtl-train); absent
//!                       in older bundles, which then use 0.5 for every label
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{D, Device, Tensor};
use candle_nn::VarMap;
use mtl_core::{CharVocab, FeatureSet, LabelSet, TaskKind};
use serde::{Deserialize, Serialize};

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::model::MultiTaskModel;
use crate::spec::{ModelSpec, Preprocess};

pub const FORMAT_VERSION: u32 = 1;
pub const MODEL_JSON: &str = "model.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";
pub const THRESHOLDS: &str = "thresholds.json";

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
    /// With `char_cnn`: the character vocabulary that gives each word its
    /// character ids for [`Batch::with_chars`] (`chars.json`).
    pub chars: Option<CharVocab>,
    /// Multilabel decision thresholds; a task or label without one uses
    /// [`MULTILABEL_THRESHOLD`].
    pub thresholds: Thresholds,
    pub model: MultiTaskModel,
    pub dir: PathBuf,
    device: Device,
}

/// Predictions of one task for one batch.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutput {
    /// Label id and its probability, one per row.
    Sentence { label: Vec<u32>, prob: Vec<f32> },
    /// Per row, one label id and probability per sub-token position; a
    /// word's label is the one at its first sub-token (for a CRF head, the
    /// other positions up to the next word repeat it, see `heads::crf`).
    Token {
        label: Vec<Vec<u32>>,
        prob: Vec<Vec<f32>>,
    },
    /// Per row, the probability of every label (id order) and the ids whose
    /// probability is at least the label's threshold ([`Thresholds`]).
    Multilabel {
        probs: Vec<Vec<f32>>,
        labels: Vec<Vec<u32>>,
    },
    /// One value per row, in the target's own units.
    Regression { value: Vec<f32> },
    /// Per row and sub-token position, meaningful at word starts only: the
    /// position of the word's head (0 = the root), its relation id and
    /// that relation's probability. The heads of a row always form one
    /// tree over its words (see `heads::mst`).
    Tree {
        head: Vec<Vec<u32>>,
        label: Vec<Vec<u32>>,
        prob: Vec<Vec<f32>>,
    },
}

/// A multilabel head predicts every label whose probability reaches this,
/// unless the bundle's [`Thresholds`] give the label its own.
pub const MULTILABEL_THRESHOLD: f32 = 0.5;

/// `thresholds.json`: per multilabel task, the probability at which each
/// label (id order) is predicted. Tasks not listed use
/// [`MULTILABEL_THRESHOLD`] for every label.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Thresholds(pub BTreeMap<String, Vec<f32>>);

impl Thresholds {
    /// Label `label` of `task`'s threshold.
    pub fn get(&self, task: &str, label: usize) -> f32 {
        self.0
            .get(task)
            .and_then(|t| t.get(label))
            .copied()
            .unwrap_or(MULTILABEL_THRESHOLD)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads `thresholds.json` from a bundle folder; none there gives the
    /// defaults. Checked against the heads of `spec`.
    pub fn read(dir: &Path, spec: &ModelSpec) -> Result<Thresholds> {
        let path = dir.join(THRESHOLDS);
        if !path.exists() {
            return Ok(Thresholds::default());
        }
        let t: Thresholds = mtl_core::fsio::read_json(&path)?;
        t.check(spec)
            .map_err(|message| Error::Bundle { path, message })?;
        Ok(t)
    }

    /// Writes `thresholds.json` into a bundle folder (atomically).
    pub fn write(&self, dir: &Path) -> Result<()> {
        Ok(mtl_core::fsio::write_json(&dir.join(THRESHOLDS), self)?)
    }

    /// Every task must be a multilabel head with one threshold per label,
    /// each a probability: anything else would silently predict nothing or
    /// everything.
    fn check(&self, spec: &ModelSpec) -> std::result::Result<(), String> {
        for (task, values) in &self.0 {
            let h = spec
                .head(task)
                .ok_or_else(|| format!("task `{task}` is not a task of the model"))?;
            if h.kind != TaskKind::Multilabel {
                return Err(format!(
                    "task `{task}` is {}, not multilabel",
                    h.kind.name()
                ));
            }
            if values.len() != h.num_labels {
                return Err(format!(
                    "task `{task}` has {} thresholds for {} labels",
                    values.len(),
                    h.num_labels
                ));
            }
            if let Some(x) = values.iter().find(|x| !(0.0..=1.0).contains(*x)) {
                return Err(format!(
                    "task `{task}` has threshold {x}, not a probability in [0, 1]"
                ));
            }
        }
        Ok(())
    }
}

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
    copy_chars(dir, meta, tokenizer_json)?;
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
        let thresholds = Thresholds::read(dir, &meta.spec)?;
        let chars = read_chars(dir, &meta.spec)?;
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
            chars,
            thresholds,
            model,
            dir: dir.to_path_buf(),
            device: device.clone(),
        })
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(TOKENIZER)
    }

    /// The device the weights were loaded on: batches go there.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every task's prediction (see [`TaskOutput`]), multilabel tasks cut
    /// at the bundle's [`Thresholds`]. Heads with side inputs need a batch
    /// built with [`Batch::with_features`] and [`Bundle::features`].
    pub fn predict(&self, batch: &Batch) -> Result<BTreeMap<String, TaskOutput>> {
        predict_with(&self.model, batch, &self.thresholds)
    }
}

/// A model with `char_cnn` carries the tokenize stage's `chars.json`, which
/// sits beside `tokenizer_json`, so that predict needs nothing else.
fn copy_chars(dir: &Path, meta: &BundleMeta, tokenizer_json: &Path) -> Result<()> {
    if meta.spec.encoder.char_cnn.is_none() {
        return Ok(());
    }
    let from = tokenizer_json.with_file_name(CharVocab::FILE);
    if !from.is_file() {
        return Err(Error::Bundle {
            path: from,
            message: "not found: a model with char_cnn needs the character vocabulary beside \
                      tokenizer.json (tokenize with tokenize.char_ids = true)"
                .into(),
        });
    }
    read_chars_file(&from, &meta.spec)?;
    let bytes = std::fs::read(&from).map_err(|e| mtl_core::CoreError::io(&from, e))?;
    Ok(mtl_core::fsio::atomic_write(
        &dir.join(CharVocab::FILE),
        &bytes,
    )?)
}

/// The bundle's `chars.json` when its model has `char_cnn`.
fn read_chars(dir: &Path, spec: &ModelSpec) -> Result<Option<CharVocab>> {
    if spec.encoder.char_cnn.is_none() {
        return Ok(None);
    }
    read_chars_file(&dir.join(CharVocab::FILE), spec).map(Some)
}

/// `chars.json` at `path`, which must have as many ids as the model's
/// character embeddings.
fn read_chars_file(path: &Path, spec: &ModelSpec) -> Result<CharVocab> {
    let chars = CharVocab::read(path)?;
    let want = spec.encoder.char_cnn.map_or(0, |c| c.vocab_size);
    if chars.len() != want {
        return Err(Error::Bundle {
            path: path.to_path_buf(),
            message: format!("{} character ids, but the model embeds {want}", chars.len()),
        });
    }
    Ok(chars)
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

/// Inference with any model, e.g. one still being trained; multilabel tasks
/// use [`MULTILABEL_THRESHOLD`].
pub fn predict(model: &MultiTaskModel, batch: &Batch) -> Result<BTreeMap<String, TaskOutput>> {
    predict_with(model, batch, &Thresholds::default())
}

/// [`predict`] with per-label multilabel thresholds.
pub fn predict_with(
    model: &MultiTaskModel,
    batch: &Batch,
    thresholds: &Thresholds,
) -> Result<BTreeMap<String, TaskOutput>> {
    let encoded = model.encode(batch, None)?;
    let mut outputs = model.heads_forward(&encoded, batch)?;
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
                // Constrained Viterbi over the words (one step per word, at
                // its first sub-token; see `heads::crf`), each word's label
                // on its first sub-token and copied onto the positions up to
                // the next word. A batch without word starts
                // (`Batch::with_word_ids`) falls back to every real
                // position. The probability is the emission softmax of the
                // chosen label at each position.
                let label = head.decode(&l, &batch.lengths, batch.word_starts.as_deref())?;
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
            TaskKind::Dependency => {
                let head = model.biaffine_head(&h.name).ok_or_else(|| {
                    Error::Invalid(format!("task `{}` has no dependency head", h.name))
                })?;
                let starts = batch.word_starts.as_deref().ok_or_else(|| {
                    Error::Invalid(format!(
                        "task `{}` parses words: the batch needs word starts \
                         (Batch::with_word_ids)",
                        h.name
                    ))
                })?;
                decode_trees(head, &encoded, &l, starts, &batch.lengths)?
            }
            TaskKind::Multilabel => {
                let probs = candle_nn::ops::sigmoid(&l)?.to_vec2::<f32>()?;
                let labels = multilabel_decode(&probs, |i| thresholds.get(&h.name, i));
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

/// One tree per row from its arc scores `arcs` (`(B, T, T)`), decoded over
/// the row's words (`starts`) as a maximum spanning tree, then each word's
/// relation at its chosen head.
fn decode_trees(
    head: &crate::heads::biaffine::BiaffineHead,
    encoded: &Tensor,
    arcs: &Tensor,
    starts: &[Vec<usize>],
    lengths: &[usize],
) -> Result<TaskOutput> {
    let (b, t, _) = arcs.dims3()?;
    if starts.len() != b {
        return Err(Error::Invalid(format!(
            "word starts for {} rows, but the batch has {b}",
            starts.len()
        )));
    }
    let scores = arcs.to_vec3::<f32>()?;
    let mut heads = vec![0u32; b * t];
    for (row, (s, ws)) in scores.iter().zip(starts).enumerate() {
        if let Some(&p) = ws.iter().find(|&&p| p >= t) {
            return Err(Error::Invalid(format!(
                "word start {p} is outside the {t} positions"
            )));
        }
        // Node 0 is the root (position 0), node k the k-th word start.
        let node = |k: usize| if k == 0 { 0 } else { ws[k - 1] };
        let n = ws.len();
        let mut matrix = vec![0f32; (n + 1) * (n + 1)];
        for d in 1..=n {
            for h in 0..=n {
                matrix[d * (n + 1) + h] = s[node(d)][node(h)];
            }
        }
        let tree = crate::heads::mst::decode(&matrix, n)?;
        for (d, &h) in tree.iter().enumerate() {
            heads[row * t + node(d + 1)] = node(h) as u32;
        }
    }
    let head_pos = Tensor::from_vec(heads.clone(), (b, t), arcs.device())?;
    let probs = candle_nn::ops::softmax(&head.rel_scores(encoded, &head_pos)?, D::Minus1)?;
    let label = probs.argmax(D::Minus1)?.to_vec2::<u32>()?;
    let prob = probs.max(D::Minus1)?.to_vec2::<f32>()?;
    let head: Vec<Vec<u32>> = heads.chunks(t).map(<[u32]>::to_vec).collect();
    Ok(TaskOutput::Tree {
        head: cut_to_lengths(head, lengths),
        label: cut_to_lengths(label, lengths),
        prob: cut_to_lengths(prob, lengths),
    })
}

/// Per row, the ids whose probability reaches their label's threshold.
fn multilabel_decode(probs: &[Vec<f32>], threshold: impl Fn(usize) -> f32) -> Vec<Vec<u32>> {
    probs
        .iter()
        .map(|row| {
            (0..row.len())
                .filter(|&i| row[i] >= threshold(i))
                .map(|i| i as u32)
                .collect()
        })
        .collect()
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
pub(crate) mod tests {
    use super::*;
    use crate::model::tests::{all_kinds_features, all_kinds_spec, raw_features};
    use mtl_core::TaskLabels;

    /// A label set that fits `spec`'s heads: `l0`, `l1`, ... per task.
    pub(crate) fn labels_of(spec: &ModelSpec) -> LabelSet {
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

    /// Saves a fresh model of `spec` (seed 11) as [`save_weights`] does;
    /// returns the model.
    pub(crate) fn save_bundle(
        dir: &Path,
        spec: &ModelSpec,
        features: &FeatureSet,
    ) -> Result<MultiTaskModel> {
        let (model, varmap) = MultiTaskModel::new(spec, 11, &Device::Cpu).unwrap();
        save_weights(dir, spec, &varmap, features)?;
        Ok(model)
    }

    /// Saves `varmap`, the weights of a `spec` model, as the bundle
    /// `dir/model`, with a stub `dir/tokenizer.json` as its tokenizer, so
    /// `dir` stands for the tokenize folder (a `chars.json` there goes
    /// along).
    pub(crate) fn save_weights(
        dir: &Path,
        spec: &ModelSpec,
        varmap: &VarMap,
        features: &FeatureSet,
    ) -> Result<()> {
        let tok = dir.join("tokenizer.json");
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
            varmap,
            &tok,
            &labels_of(spec),
            features,
        )
    }

    #[test]
    fn a_bundle_with_every_head_kind_loads_and_predicts() {
        let dir = tempfile::tempdir().unwrap();
        let spec = all_kinds_spec(1);
        save_bundle(dir.path(), &spec, &all_kinds_features()).unwrap();
        let b = Bundle::load(&dir.path().join("model"), &Device::Cpu).unwrap();
        assert_eq!(b.features, all_kinds_features());
        assert_eq!(b.spec, spec);
        // Row 1: [CLS] w0 w0 w1 [SEP], a word of two pieces.
        let word_ids: [&[i32]; 2] = [&[-1, 0, -1], &[-1, 0, 0, 1, -1]];
        let batch = Batch::pad(&[&[1, 4, 2], &[1, 5, 6, 7, 2]], &Device::Cpu)
            .unwrap()
            .with_word_ids(&word_ids)
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
                // Word tags (first sub-tokens) from the constrained
                // word-level Viterbi: never O → I-X or start → I-X.
                for (row, starts) in label.iter().zip(batch.word_starts.as_ref().unwrap()) {
                    let mut prev = 0;
                    for &p in starts {
                        let y = row[p];
                        assert!(!(y == 2 && prev != 1 && prev != 2), "{row:?}");
                        assert!(!(y == 4 && prev != 3 && prev != 4), "{row:?}");
                        prev = y;
                    }
                }
                // The continuation piece repeats its word's tag.
                assert_eq!(label[1][2], label[1][1]);
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
        save_bundle(dir.path(), &spec, &all_kinds_features()).unwrap();
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
        save_bundle(dir.path(), &spec, &FeatureSet::default()).unwrap();
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
        assert!(b.thresholds.is_empty());
        assert!(b.spec.tasks.iter().all(|h| h.features.is_empty()));
        let batch = Batch::pad(&[&[1, 4, 2]], &Device::Cpu).unwrap();
        assert_eq!(b.predict(&batch).unwrap().len(), 2);
    }

    #[test]
    fn features_json_that_disagrees_with_the_heads_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut features = all_kinds_features();
        features.tasks.get_mut("topics").unwrap().selected.reverse();
        save_bundle(dir.path(), &all_kinds_spec(1), &features).unwrap();
        let err = Bundle::load(&dir.path().join("model"), &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("features.json") && err.contains("`topics`"),
            "{err}"
        );
    }

    #[test]
    fn decoding_cuts_each_label_at_its_own_threshold() {
        let probs = vec![vec![0.3, 0.3, 0.9], vec![0.2, 0.5, 0.1]];
        let t = [0.25, 0.5, 0.95];
        // 0.3 ≥ 0.25 is positive, 0.3 < 0.5 is not, 0.9 < 0.95 is not; a
        // probability equal to its threshold is positive.
        assert_eq!(multilabel_decode(&probs, |i| t[i]), vec![vec![0], vec![1]]);
        let tuned = Thresholds([("topics".to_string(), t.to_vec())].into());
        assert_eq!(tuned.get("topics", 0), 0.25);
        assert_eq!(tuned.get("topics", 9), MULTILABEL_THRESHOLD);
        assert_eq!(tuned.get("other", 0), MULTILABEL_THRESHOLD);
    }

    #[test]
    fn thresholds_round_trip_through_the_bundle_and_drive_its_predictions() {
        let dir = tempfile::tempdir().unwrap();
        let spec = all_kinds_spec(1);
        save_bundle(dir.path(), &spec, &all_kinds_features()).unwrap();
        let model = dir.path().join("model");
        let batch = |b: &Bundle| {
            Batch::pad(&[&[1, 4, 2], &[1, 5, 6, 7, 2]], &Device::Cpu)
                .unwrap()
                .with_features(
                    &b.features,
                    &[raw_features(1.0, 0.0), raw_features(3.0, 1.0)],
                )
                .unwrap()
        };
        let plain = Bundle::load(&model, &Device::Cpu).unwrap();
        let TaskOutput::Multilabel { probs, .. } =
            &plain.predict(&batch(&plain)).unwrap()["topics"]
        else {
            panic!()
        };
        // Label 0 just below row 0's probability, label 1 just above it,
        // label 2 at 0 (always predicted).
        let p = &probs[0];
        let tuned = Thresholds(
            [(
                "topics".to_string(),
                vec![p[0] - 1e-4, (p[1] + 1e-4).min(1.0), 0.0],
            )]
            .into(),
        );
        tuned.write(&model).unwrap();
        let b = Bundle::load(&model, &Device::Cpu).unwrap();
        assert_eq!(b.thresholds, tuned);
        let TaskOutput::Multilabel {
            probs: again,
            labels,
        } = &b.predict(&batch(&b)).unwrap()["topics"]
        else {
            panic!()
        };
        assert_eq!(again, probs);
        assert_eq!(labels[0], vec![0, 2]);
        for (row, l) in again.iter().zip(labels) {
            let want: Vec<u32> = (0..3)
                .filter(|&i| row[i as usize] >= tuned.get("topics", i as usize))
                .collect();
            assert_eq!(*l, want);
        }
    }

    #[test]
    fn thresholds_that_do_not_fit_the_heads_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        save_bundle(dir.path(), &all_kinds_spec(1), &all_kinds_features()).unwrap();
        let model = dir.path().join("model");
        let cases = [
            (r#"{"topics": [0.5, 0.5]}"#, "2 thresholds for 3 labels"),
            (r#"{"topics": [0.5, 1.5, 0.5]}"#, "not a probability"),
            (r#"{"sent": [0.5, 0.5]}"#, "not multilabel"),
            (r#"{"nope": [0.5]}"#, "`nope` is not a task"),
        ];
        for (json, want) in cases {
            std::fs::write(model.join(THRESHOLDS), json).unwrap();
            let err = Bundle::load(&model, &Device::Cpu)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(THRESHOLDS) && err.contains(want), "{err}");
        }
    }
}
