//! Prediction: raw text in, every task's output out, from a model bundle
//! alone. It replays the training-time cleaning (mtl-clean) and tokenizer
//! (mtl-tokenize) recorded in the bundle, computes the side-input features
//! some heads take from the cleaned text with the clean stage's own
//! expressions ([`mtl_clean::features_of`]), gives each word its character
//! ids from the bundle's `chars.json` when the model reads characters
//! (`model.char_cnn`; the tokenize stage's [`mtl_tokenize::CharVocab`]),
//! runs the shared model once per batch for all tasks, and maps token predictions back to words and
//! entity spans back to the original text.
//!
//! Texts longer than the model's `max_length` are cut, or, when the model
//! was trained with `tokenize.truncation = "window"`, split into the same
//! windows as in training ([`mtl_tokenize::encode_examples`]) and merged
//! back: each word's tag from the window that scores it
//! ([`mtl_core::align::merge_windows`], as eval merges), sentence outputs
//! from the first window. Batches are padded to `pad_to` when the model
//! was trained so ([`ReplayOptions`]).
//!
//! It never trains, never scores against gold labels, and never reads the
//! pipeline config: the bundle is the whole contract.
//!
//! # Words
//!
//! Raw text is cut into words before cleaning ([`segmentation`]): at
//! whitespace, as the clean stage splits JSONL, CSV and text datasets, or
//! following UD English (EWT) and the Penn Treebank ([`segment`]: `days,`
//! is `days` `,`, `don't` is `do` `n't`), as CoNLL-U treebanks give their
//! words. `--segment auto` picks UD for a bundle trained on a treebank.
//! Pre-tokenized input (words separated by spaces) is whitespace
//! segmentation. Cleaning then runs word by word ([`words`]).
//!
//! # Modes
//!
//! - One file ([`run`]): text lines, JSONL, CSV, TSV or Parquet in
//!   ([`input`]), JSONL or CoNLL-U ([`conllu`]) out, written through a
//!   temporary name and a rename.
//! - A folder, incrementally ([`batch::run_dir`]): every input file not yet
//!   predicted with the same content and the same model, under a lock.
//! - Throughput ([`bench::measure`]): predictions per second of one or
//!   several bundles on the same texts.
//!
//! # Output
//!
//! One JSON object per input row, in input order, with `id` (the input's
//! id column, else the line number), `line` (see [`input`] for what a line
//! is per format), `text`, the cleaned `words`, and one key per task:
//!
//! | task kind | value |
//! |---|---|
//! | classification | `{"label": "pos", "prob": 0.93}` |
//! | tagging | `{"tags": ["DET", ...], "probs": [0.9, ...]}`, one per word (`null` for words cut off by truncation) |
//! | spans | as tagging, plus `"spans": [{"label", "start", "end", "start_word", "end_word", "text"}]` |
//! | multilabel | `{"labels": ["sports", "tech"], "probs": {"politics": 0.1, "sports": 0.8, "tech": 0.6}}`: `labels` are those with probability at least the label's threshold (the bundle's `thresholds.json`, tuned on dev by mtl-train; [`mtl_model::MULTILABEL_THRESHOLD`], 0.5, without one), in vocabulary order, possibly none; `probs` holds every label |
//! | regression | the predicted number, in the target's units, e.g. `3.71` |
//! | dependency | `{"heads": [2, 0, ...], "deprels": ["nsubj", "root", ...], "probs": [...]}`, per word its head's word number (0 = the root) and relation |
//!
//! A span's `start` and `end` are character offsets (Unicode scalar values,
//! end exclusive) into the original input text, before cleaning: they run
//! from the start of the raw word (before cleaning) of the entity's first
//! word to the end of its last word's, so the slice is the entity's surface
//! form as written, tags and entities included ([`words`]). `start_word` and
//! `end_word` (exclusive) index `words`; `text` is the cleaned words joined
//! by one space.
//!
//! A row that cannot be used (not JSON, no text field, ...) becomes
//! `{"id", "line", "error": "<reason>"}` in its place, and the run goes on;
//! `strict` input options make it an error naming the file and line instead.

pub mod batch;
pub mod bench;
pub mod conllu;
mod error;
pub mod input;
mod output;
mod replay;
pub mod segment;
pub mod segmentation;
pub mod words;

use std::collections::BTreeMap;
use std::path::Path;

use mtl_core::align::merge_windows;
use mtl_core::config::CleanOptions;
use mtl_core::{FeatureSet, TaskKind};
use mtl_model::{Batch, Bundle, TaskOutput};
use mtl_tokenize::Windowed;
use serde_json::{Value, json};
use tokenizers::Tokenizer;

pub use error::{Error, Result};
pub use input::{Format, InputOptions};
pub use output::{FileSummary, OutputFormat, predict_file};
pub use replay::ReplayOptions;
pub use segmentation::{Segment, Segmentation};

/// Bump when the output records change for the same input and model: the
/// batch mode then predicts every file again.
pub const PREDICT_VERSION: u32 = 3;

/// Options of one prediction job.
#[derive(Debug, Clone)]
pub struct PredictOptions<'a> {
    /// Which training dataset's cleaning to replay (needed when the model
    /// was trained on several).
    pub dataset: Option<&'a str>,
    pub batch_size: usize,
    /// Where the bundle is loaded and run (`--device`).
    pub device: mtl_model::DeviceSpec,
    /// How raw text is cut into words (`--segment`).
    pub segment: Segment,
}

impl Default for PredictOptions<'_> {
    fn default() -> Self {
        PredictOptions {
            dataset: None,
            batch_size: 64,
            device: Default::default(),
            segment: Segment::Auto,
        }
    }
}

/// What the model sees of each text: the cleaned words, their sub-tokens
/// (one window per text, or several for long texts of a windowed model),
/// the raw side-input features (empty maps when no head takes any) and
/// each word's character ids (for a model with `char_cnn`); plus where each
/// word came from in the raw text.
pub struct Prepared {
    pub words: Vec<Vec<String>>,
    /// Per word, its raw word's `(start, end)` in characters ([`words`]).
    pub offsets: Vec<Vec<(usize, usize)>>,
    /// Per word, its surface token's index ([`words::Cleaned::tokens`]).
    pub tokens: Vec<Vec<usize>>,
    pub encoded: Vec<Windowed>,
    pub features: Vec<BTreeMap<String, f32>>,
    /// Per text, per word, its character ids (`CharVocab::ids`, as the
    /// tokenize stage's `char_ids`); `None` when the model reads no
    /// characters.
    pub chars: Option<Vec<Vec<Vec<u32>>>>,
}

/// The cleaning options to replay: the chosen dataset's, or the only one.
fn clean_options<'a>(bundle: &'a Bundle, opts: &PredictOptions) -> Result<&'a CleanOptions> {
    let known = || {
        bundle
            .preprocess
            .clean
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    };
    match opts.dataset {
        Some(d) => bundle.preprocess.clean.get(d).ok_or_else(|| {
            Error::Usage(format!(
                "dataset `{d}` is not one the model was trained on ({})",
                known()
            ))
        }),
        None => {
            let mut all = bundle.preprocess.clean.values();
            match (all.next(), all.next()) {
                (Some(c), None) => Ok(c),
                (None, _) => Err(Error::Usage(format!(
                    "{}: the bundle records no cleaning options (model.json `preprocess.clean`)",
                    bundle.dir.display()
                ))),
                (Some(_), Some(_)) => Err(Error::Usage(format!(
                    "the model was trained on several datasets; choose one with --dataset ({})",
                    known()
                ))),
            }
        }
    }
}

/// The raw side inputs of cleaned texts: every feature some head of
/// `features` takes, computed on the words joined by one space, which is
/// exactly the clean stage's `text` column. Empty maps when no head takes
/// side inputs.
pub fn side_inputs(
    features: &FeatureSet,
    words: &[Vec<String>],
) -> Result<Vec<BTreeMap<String, f32>>> {
    let used = features.used();
    if used.is_empty() {
        return Ok(vec![BTreeMap::new(); words.len()]);
    }
    let texts: Vec<String> = words.iter().map(|w| w.join(" ")).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut all = mtl_clean::features_of(&refs)?;
    for row in &mut all {
        row.retain(|name, _| used.contains(&name.as_str()));
    }
    Ok(all)
}

/// Each word's character ids, for a model with `char_cnn`: the bundle's
/// `chars.json` applied as the tokenize stage applied it to the training
/// words.
fn char_ids(bundle: &Bundle, words: &[Vec<String>]) -> Result<Option<Vec<Vec<Vec<u32>>>>> {
    if bundle.spec.encoder.char_cnn.is_none() {
        return Ok(None);
    }
    let vocab: &mtl_tokenize::CharVocab = bundle.chars.as_ref().ok_or_else(|| {
        Error::Usage(format!(
            "{}: the model reads characters but the bundle has no chars.json",
            bundle.dir.display()
        ))
    })?;
    Ok(Some(
        words
            .iter()
            .map(|ws| ws.iter().map(|w| vocab.ids(w)).collect())
            .collect(),
    ))
}

/// A bundle ready to predict: the cleaning, tokenizer and replay options
/// read once, so that a file is predicted chunk by chunk without reading
/// them again.
pub struct Predictor<'b> {
    bundle: &'b Bundle,
    clean: &'b CleanOptions,
    tokenizer: Tokenizer,
    replay: ReplayOptions,
    batch_size: usize,
    segmentation: segmentation::Choice,
}

/// One text's prediction: the JSON record (see the crate docs), and where
/// each of its words came from in the raw text.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicted {
    pub value: Value,
    /// Per word, its `(start, end)` in characters.
    pub offsets: Vec<(usize, usize)>,
    /// Per word, its surface token's index: the words of a multiword
    /// token share it.
    pub tokens: Vec<usize>,
}

impl<'b> Predictor<'b> {
    pub fn new(bundle: &'b Bundle, opts: &PredictOptions) -> Result<Predictor<'b>> {
        Ok(Predictor {
            bundle,
            clean: clean_options(bundle, opts)?,
            tokenizer: mtl_tokenize::load_pretrained(&bundle.tokenizer_path())?,
            replay: ReplayOptions::read(bundle)?,
            batch_size: opts.batch_size.max(1),
            segmentation: segmentation::choose(bundle, opts.segment),
        })
    }

    pub fn bundle(&self) -> &Bundle {
        self.bundle
    }

    /// How raw texts are cut into words, and why.
    pub fn segmentation(&self) -> &segmentation::Choice {
        &self.segmentation
    }

    /// Cleans, tokenizes and computes the side inputs of raw texts, as the
    /// clean and tokenize stages did for the training rows.
    pub fn prepare(&self, texts: &[String]) -> Result<Prepared> {
        let words::Cleaned {
            words,
            offsets,
            tokens,
        } = words::clean_with_offsets(texts, self.clean, self.segmentation.segmentation)?;
        let encoded = mtl_tokenize::encode_examples(
            &self.tokenizer,
            &words,
            self.bundle.preprocess.max_length,
            self.replay.truncation,
            self.replay.stride,
        )?;
        let features = side_inputs(&self.bundle.features, &words)?;
        let chars = char_ids(self.bundle, &words)?;
        Ok(Prepared {
            words,
            offsets,
            tokens,
            encoded,
            features,
            chars,
        })
    }

    /// Predicts every task for each text; one JSON object per text with
    /// `text`, `words` and one key per task (see the crate docs).
    pub fn predict(&self, texts: &[String]) -> Result<Vec<Value>> {
        Ok(self
            .predict_words(texts)?
            .into_iter()
            .map(|p| p.value)
            .collect())
    }

    /// [`Predictor::predict`], with each text's word offsets and tokens.
    pub fn predict_words(&self, texts: &[String]) -> Result<Vec<Predicted>> {
        let bundle = self.bundle;
        let Prepared {
            words,
            offsets,
            tokens,
            encoded,
            features,
            chars,
        } = self.prepare(texts)?;
        let device = bundle.device();
        // Every window of every text is one row; `first[i]` is text i's first.
        let mut rows: Vec<(usize, &[u32])> = Vec::new();
        let mut row_words: Vec<&[i32]> = Vec::new();
        let mut first = Vec::with_capacity(texts.len());
        for (i, x) in encoded.iter().enumerate() {
            first.push(rows.len());
            rows.extend(x.windows.iter().map(|e| (i, e.input_ids.as_slice())));
            row_words.extend(x.windows.iter().map(|e| e.word_ids.as_slice()));
        }
        // Batches of similar lengths waste less on padding (outputs do not
        // depend on it: eval batches sorted rows, and predictions equal
        // eval's); outputs go back to row order after.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by_key(|&r| rows[r].1.len());
        let mut sorted: BTreeMap<String, Vec<(usize, RowOut)>> = BTreeMap::new();
        for chunk in order.chunks(self.batch_size) {
            let ids: Vec<&[u32]> = chunk.iter().map(|&r| rows[r].1).collect();
            let side: Vec<&BTreeMap<String, f32>> =
                chunk.iter().map(|&r| &features[rows[r].0]).collect();
            // Word starts: a CRF head decodes one step per word.
            let word_ids: Vec<&[i32]> = chunk.iter().map(|&r| row_words[r]).collect();
            let mut batch = Batch::padded(&ids, self.replay.pad_to, device)?
                .with_features(&bundle.features, &side)?
                .with_word_ids(&word_ids)?;
            if let Some(chars) = &chars {
                let char_ids: Vec<&[Vec<u32>]> =
                    chunk.iter().map(|&r| chars[rows[r].0].as_slice()).collect();
                batch = batch.with_chars(&word_ids, &char_ids)?;
            }
            for (task, output) in bundle.predict(&batch)? {
                let out = sorted.entry(task).or_default();
                out.extend(chunk.iter().copied().zip(split_rows(output)));
            }
        }
        let outs: BTreeMap<String, Vec<RowOut>> = sorted
            .into_iter()
            .map(|(task, mut out)| {
                out.sort_by_key(|(r, _)| *r);
                (task, out.into_iter().map(|(_, o)| o).collect())
            })
            .collect();

        let mut out = Vec::with_capacity(texts.len());
        for (i, x) in encoded.iter().enumerate() {
            let mut obj = serde_json::Map::new();
            obj.insert("text".into(), json!(texts[i]));
            obj.insert("words".into(), json!(words[i]));
            let rows_of = first[i]..first[i] + x.windows.len();
            for (task, task_rows) in &outs {
                let labels = &bundle.labels.get(task)?.labels;
                let name = |id: u32| labels.get(id as usize).cloned().unwrap_or_default();
                let value = match &task_rows[first[i]] {
                    RowOut::Sentence(label, prob) => json!({"label": name(*label), "prob": prob}),
                    RowOut::Token(..) => {
                        let mut label = Vec::with_capacity(x.windows.len());
                        let mut prob = Vec::with_capacity(x.windows.len());
                        for r in &task_rows[rows_of.clone()] {
                            if let RowOut::Token(l, p) = r {
                                label.push(l.as_slice());
                                prob.push(p.as_slice());
                            }
                        }
                        let kind = bundle.spec.head(task).map(|h| h.kind);
                        let words = Words {
                            words: &words[i],
                            offsets: &offsets[i],
                        };
                        token_value(words, x, &label, &prob, &name, kind)
                    }
                    RowOut::Multilabel(probs, ids) => {
                        let chosen: Vec<String> = ids.iter().map(|&id| name(id)).collect();
                        let all: serde_json::Map<String, Value> = probs
                            .iter()
                            .enumerate()
                            .map(|(id, p)| (name(id as u32), json!(p)))
                            .collect();
                        json!({"labels": chosen, "probs": all})
                    }
                    RowOut::Regression(value) => json!(value),
                    RowOut::Tree(h, l, p) => tree_value(x, words[i].len(), (h, l, p), &name),
                };
                obj.insert(task.clone(), value);
            }
            out.push(Value::Object(obj));
        }
        Ok(out
            .into_iter()
            .zip(offsets)
            .zip(tokens)
            .map(|((value, offsets), tokens)| Predicted {
                value,
                offsets,
                tokens,
            })
            .collect())
    }
}

/// Cleans, tokenizes and computes the side inputs of raw texts, as the
/// clean and tokenize stages did for the training rows.
pub fn prepare(bundle: &Bundle, texts: &[String], opts: &PredictOptions) -> Result<Prepared> {
    Predictor::new(bundle, opts)?.prepare(texts)
}

/// Predicts every task for each text; one JSON object per text (see the
/// crate docs for the shape).
pub fn predict_texts(
    bundle: &Bundle,
    texts: &[String],
    opts: &PredictOptions,
) -> Result<Vec<Value>> {
    Predictor::new(bundle, opts)?.predict(texts)
}

/// One task's output for one row (window) of a batch.
enum RowOut {
    Sentence(u32, f32),
    Token(Vec<u32>, Vec<f32>),
    Multilabel(Vec<f32>, Vec<u32>),
    Regression(f32),
    /// Per position: head position, relation id, relation probability.
    Tree(Vec<u32>, Vec<u32>, Vec<f32>),
}

/// Splits one batch's outputs into per-row outputs.
fn split_rows(output: TaskOutput) -> Vec<RowOut> {
    match output {
        TaskOutput::Sentence { label, prob } => label
            .into_iter()
            .zip(prob)
            .map(|(l, p)| RowOut::Sentence(l, p))
            .collect(),
        TaskOutput::Token { label, prob } => label
            .into_iter()
            .zip(prob)
            .map(|(l, p)| RowOut::Token(l, p))
            .collect(),
        TaskOutput::Multilabel { probs, labels } => probs
            .into_iter()
            .zip(labels)
            .map(|(p, l)| RowOut::Multilabel(p, l))
            .collect(),
        TaskOutput::Regression { value } => value.into_iter().map(RowOut::Regression).collect(),
        TaskOutput::Tree { head, label, prob } => head
            .into_iter()
            .zip(label)
            .zip(prob)
            .map(|((h, l), p)| RowOut::Tree(h, l, p))
            .collect(),
    }
}

/// A dependency task's output for one text (never windowed: the config
/// refuses windows for parsing): per word, its head as CoNLL-U numbers it
/// (0 = root), its relation and the relation's probability; `null` for a
/// word truncation cut off.
fn tree_value(
    encoded: &Windowed,
    n_words: usize,
    (head, label, prob): (&[u32], &[u32], &[f32]),
    name: &dyn Fn(u32) -> String,
) -> Value {
    use mtl_model::heads::biaffine::word_number;
    let Some(window) = encoded.windows.first() else {
        return json!({"heads": [], "deprels": [], "probs": []});
    };
    let starts = mtl_model::batch::word_starts(&window.word_ids);
    let mut heads = vec![Value::Null; n_words];
    let mut rels = vec![Value::Null; n_words];
    let mut probs = vec![Value::Null; n_words];
    for (k, &p) in starts.iter().enumerate().take(n_words) {
        heads[k] = json!(head.get(p).and_then(|&h| word_number(&starts, h as usize)));
        rels[k] = json!(label.get(p).map(|&l| name(l)));
        probs[k] = json!(prob.get(p));
    }
    json!({"heads": heads, "deprels": rels, "probs": probs})
}

/// One text's cleaned words and their raw character spans.
#[derive(Clone, Copy)]
struct Words<'a> {
    words: &'a [String],
    offsets: &'a [(usize, usize)],
}

/// A token task's output for one text: one tag per word, read at the word's
/// first sub-token in the window that scores it, and the entities for span
/// tasks. `label[k]` and `prob[k]` are window `k`'s outputs.
fn token_value(
    w: Words,
    encoded: &Windowed,
    label: &[&[u32]],
    prob: &[&[f32]],
    name: &dyn Fn(u32) -> String,
    kind: Option<TaskKind>,
) -> Value {
    let words = w.words;
    let word_ids: Vec<&[i32]> = encoded
        .windows
        .iter()
        .map(|e| e.word_ids.as_slice())
        .collect();
    let tags: Vec<Option<String>> = merge_windows(&word_ids, label, words.len())
        .into_iter()
        .map(|l| l.map(name))
        .collect();
    let probs: Vec<Option<f32>> = merge_windows(&word_ids, prob, words.len());
    let mut v = json!({"tags": tags, "probs": probs});
    if kind == Some(TaskKind::Spans) {
        let plain: Vec<String> = tags
            .iter()
            .map(|t| t.clone().unwrap_or_else(|| "O".into()))
            .collect();
        let spans: Vec<Value> = mtl_metrics::spans::entities(&plain)
            .into_iter()
            .filter(|e| e.start < e.end && e.end <= words.len())
            .map(|e| {
                json!({
                    "label": e.kind,
                    "start": w.offsets[e.start].0,
                    "end": w.offsets[e.end - 1].1,
                    "start_word": e.start,
                    "end_word": e.end,
                    "text": words[e.start..e.end].join(" "),
                })
            })
            .collect();
        v["spans"] = json!(spans);
    }
    v
}

/// Reads `input`, predicts every row, and writes JSONL or CoNLL-U to
/// `output` atomically (see [`predict_file`]).
pub fn run(
    model_dir: &Path,
    input: &Path,
    output: &Path,
    input_opts: &InputOptions,
    opts: &PredictOptions,
    format: OutputFormat,
) -> Result<FileSummary> {
    let bundle = Bundle::load(model_dir, &opts.device.open()?)?;
    let predictor = Predictor::new(&bundle, opts)?;
    predict_file(&predictor, input, output, input_opts, format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::features::TaskFeatures;

    fn words(texts: &[&str]) -> Vec<Vec<String>> {
        texts
            .iter()
            .map(|t| t.split_whitespace().map(String::from).collect())
            .collect()
    }

    #[test]
    fn no_side_inputs_without_selected_features() {
        let out = side_inputs(&FeatureSet::default(), &words(&["a b", "c"])).unwrap();
        assert_eq!(out, vec![BTreeMap::new(); 2]);
    }

    #[test]
    fn side_inputs_are_the_used_features_of_the_joined_words() {
        let mut set = FeatureSet::default();
        set.tasks.insert(
            "s".into(),
            TaskFeatures {
                ranking: vec![],
                selected: vec!["n_words".into(), "upper_ratio".into()],
            },
        );
        set.tasks.insert(
            "t".into(),
            TaskFeatures {
                ranking: vec![],
                selected: vec!["n_mentions".into()],
            },
        );
        // Words joined by one space: "Hi @Bob" has 7 chars, 2 upper case.
        let out = side_inputs(&set, &words(&["Hi   @Bob"])).unwrap();
        let want = BTreeMap::from([
            ("n_words".to_string(), 2.0),
            ("upper_ratio".to_string(), 2.0 / 7.0),
            ("n_mentions".to_string(), 1.0),
        ]);
        assert_eq!(out, vec![want]);
    }

    mod chars {
        use std::collections::BTreeMap;
        use std::path::{Path, PathBuf};

        use candle_core::Device;
        use mtl_core::config::{CharCnnConfig, CleanOptions, ModelConfig, TokenizeConfig};
        use mtl_core::{FeatureSet, LabelSet, TaskKind, TaskLabels};
        use mtl_model::bundle::{BundleMeta, FORMAT_VERSION};
        use mtl_model::{Bundle, EncoderSpec, HeadSpec, ModelSpec, MultiTaskModel, Preprocess};
        use mtl_tokenize::CharVocab;

        use crate::{PredictOptions, Predictor};

        const TRAIN: [&str; 2] = ["the tower in paris", "we flew to rome"];

        /// A random-weight BiLSTM bundle with `char_cnn`, a sentence and a
        /// token head, its tokenizer and characters fitted on [`TRAIN`].
        fn bundle(dir: &Path) -> PathBuf {
            let words: Vec<Vec<String>> = TRAIN
                .iter()
                .map(|t| t.split_whitespace().map(String::from).collect())
                .collect();
            let tok = mtl_tokenize::train_tokenizer(
                words.clone().into_iter(),
                &TokenizeConfig::default(),
            )
            .unwrap();
            let tok_path = dir.join("tokenizer.json");
            tok.save(&tok_path, false).unwrap();
            let chars = CharVocab::fit(words.iter().flatten(), true, 4);
            chars.write(&dir.join(CharVocab::FILE)).unwrap();
            let mut labels = LabelSet::default();
            for (name, kind) in [
                ("mood", TaskKind::Classification),
                ("pos", TaskKind::Tagging),
            ] {
                labels.tasks.insert(
                    name.into(),
                    TaskLabels {
                        kind,
                        scheme: None,
                        labels: vec!["a".into(), "b".into()],
                        train_counts: vec![1, 1],
                        class_weights: None,
                        target: None,
                    },
                );
            }
            let m = ModelConfig {
                embedding_dim: 8,
                hidden_dim: 8,
                dropout: 0.0,
                char_cnn: Some(CharCnnConfig {
                    char_dim: 4,
                    filters: 5,
                    width: 3,
                }),
                ..Default::default()
            };
            let spec = ModelSpec {
                encoder: EncoderSpec::from_config(&m, tok.get_vocab_size(true), 32)
                    .with_char_cnn(&m, chars.len()),
                tasks: vec![
                    HeadSpec::new("mood", TaskKind::Classification, 2),
                    HeadSpec::new("pos", TaskKind::Tagging, 2),
                ],
            };
            let (_, varmap) = MultiTaskModel::new(&spec, 3, &Device::Cpu).unwrap();
            let meta = BundleMeta {
                format_version: FORMAT_VERSION,
                spec,
                preprocess: Preprocess {
                    clean: BTreeMap::from([("d".to_string(), CleanOptions::default())]),
                    max_length: 32,
                    ..Default::default()
                },
            };
            let model = dir.join("model");
            let fs = FeatureSet::default();
            mtl_model::bundle::save(&model, &meta, &varmap, &tok_path, &labels, &fs).unwrap();
            model
        }

        fn opts(batch_size: usize) -> PredictOptions<'static> {
            PredictOptions {
                batch_size,
                ..Default::default()
            }
        }

        #[test]
        fn words_get_the_bundles_character_ids() {
            let dir = tempfile::tempdir().unwrap();
            let model = bundle(dir.path());
            // The bundle alone: the tokenize folder's copy is gone.
            std::fs::remove_file(dir.path().join(CharVocab::FILE)).unwrap();
            let b = Bundle::load(&model, &Device::Cpu).unwrap();
            let vocab = b.chars.clone().unwrap();
            let texts = vec!["Paris Zürich".to_string(), "we flew".to_string()];
            let p = Predictor::new(&b, &opts(4))
                .unwrap()
                .prepare(&texts)
                .unwrap();
            let chars = p.chars.unwrap();
            assert_eq!(chars.len(), 2);
            for (ws, cs) in p.words.iter().zip(&chars) {
                let want: Vec<Vec<u32>> = ws.iter().map(|w| vocab.ids(w)).collect();
                assert_eq!(*cs, want);
            }
            // Lowercased, cut at max_word_chars, unknown characters 1.
            assert_eq!(chars[0][0], vocab.ids("pari"));
            assert_eq!(chars[0][1].len(), 4);
            assert!(chars[0][1].contains(&CharVocab::UNK));
        }

        #[test]
        fn predictions_do_not_depend_on_the_batch() {
            let dir = tempfile::tempdir().unwrap();
            let b = Bundle::load(&bundle(dir.path()), &Device::Cpu).unwrap();
            let texts: Vec<String> = [
                "the tower",
                "we flew to paris in a quite extraordinarily long flight",
                "rome",
            ]
            .map(String::from)
            .to_vec();
            let one = Predictor::new(&b, &opts(1))
                .unwrap()
                .predict(&texts)
                .unwrap();
            let all = Predictor::new(&b, &opts(8))
                .unwrap()
                .predict(&texts)
                .unwrap();
            for (x, y) in one.iter().zip(&all) {
                assert_eq!(x["mood"]["label"], y["mood"]["label"]);
                assert_eq!(x["pos"]["tags"], y["pos"]["tags"]);
                let (p, q) = (x["mood"]["prob"].as_f64(), y["mood"]["prob"].as_f64());
                assert!((p.unwrap() - q.unwrap()).abs() < 1e-5, "{x} vs {y}");
            }
        }
    }
}
