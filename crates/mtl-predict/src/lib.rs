//! Prediction: raw text in, every task's output out, from a model bundle
//! alone. It replays the training-time cleaning (mtl-clean) and tokenizer
//! (mtl-tokenize) recorded in the bundle, computes the side-input features
//! some heads take from the cleaned text with the clean stage's own
//! expressions ([`mtl_clean::features_of`]), runs the shared model once per
//! batch for all tasks, and maps token predictions back to words.
//!
//! It never trains, never scores against gold labels, and never reads the
//! pipeline config: the bundle is the whole contract.
//!
//! # Output
//!
//! One JSON object per input text, with `text`, the cleaned `words`, and one
//! key per task:
//!
//! | task kind | value |
//! |---|---|
//! | classification | `{"label": "pos", "prob": 0.93}` |
//! | tagging | `{"tags": ["DET", ...], "probs": [0.9, ...]}`, one per word (`null` for words cut off by truncation) |
//! | spans | as tagging, plus `"spans": [{"label", "start_word", "end_word", "text"}]` (end exclusive) |
//! | multilabel | `{"labels": ["sports", "tech"], "probs": {"politics": 0.1, "sports": 0.8, "tech": 0.6}}`: `labels` are those with probability at least [`mtl_model::MULTILABEL_THRESHOLD`] (0.5), in vocabulary order, possibly none; `probs` holds every label |
//! | regression | the predicted number, in the target's units, e.g. `3.71` |

mod error;
pub mod input;

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Device;
use mtl_core::align::first_subtoken_positions;
use mtl_core::config::CleanOptions;
use mtl_core::{FeatureSet, TaskKind};
use mtl_model::{Batch, Bundle, TaskOutput};
use mtl_tokenize::Encoded;
use serde_json::{Value, json};

pub use error::{Error, Result};

/// Options of one prediction job.
pub struct PredictOptions<'a> {
    /// Which training dataset's cleaning to replay (needed when the model
    /// was trained on several).
    pub dataset: Option<&'a str>,
    pub batch_size: usize,
}

/// What the model sees of each text: the cleaned words, their sub-tokens,
/// and the raw side-input features (empty maps when no head takes any).
pub struct Prepared {
    pub words: Vec<Vec<String>>,
    pub encoded: Vec<Encoded>,
    pub features: Vec<BTreeMap<String, f32>>,
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

/// Cleans, tokenizes and computes the side inputs of raw texts, as the
/// clean and tokenize stages did for the training rows.
pub fn prepare(bundle: &Bundle, texts: &[String], opts: &PredictOptions) -> Result<Prepared> {
    let clean = clean_options(bundle, opts)?;
    let tokenizer = mtl_tokenize::load_pretrained(&bundle.tokenizer_path())?;
    let words: Vec<Vec<String>> = texts
        .iter()
        .map(|t| mtl_clean::text::try_clean_words(t, clean))
        .collect::<std::result::Result<_, _>>()?;
    let encoded =
        mtl_tokenize::encode_batch_words(&tokenizer, &words, bundle.preprocess.max_length)?;
    let features = side_inputs(&bundle.features, &words)?;
    Ok(Prepared {
        words,
        encoded,
        features,
    })
}

/// Predicts every task for each text; one JSON object per text (see the
/// crate docs for the shape).
pub fn predict_texts(
    bundle: &Bundle,
    texts: &[String],
    opts: &PredictOptions,
) -> Result<Vec<Value>> {
    let Prepared {
        words,
        encoded,
        features,
    } = prepare(bundle, texts, opts)?;
    let device = Device::Cpu;
    let size = opts.batch_size.max(1);
    let mut out = Vec::with_capacity(texts.len());
    for start in (0..texts.len()).step_by(size) {
        let chunk = start..(start + size).min(texts.len());
        let rows: Vec<&[u32]> = chunk
            .clone()
            .map(|i| encoded[i].input_ids.as_slice())
            .collect();
        let batch = Batch::pad(&rows, &device)?
            .with_features(&bundle.features, &features[chunk.clone()])?;
        let preds = bundle.predict(&batch)?;
        for (k, i) in chunk.enumerate() {
            let mut obj = serde_json::Map::new();
            obj.insert("text".into(), json!(texts[i]));
            obj.insert("words".into(), json!(words[i]));
            for (task, pred) in &preds {
                let labels = &bundle.labels.get(task)?.labels;
                let name = |id: u32| labels.get(id as usize).cloned().unwrap_or_default();
                let value = match pred {
                    TaskOutput::Sentence { label, prob } => {
                        json!({"label": name(label[k]), "prob": prob[k]})
                    }
                    TaskOutput::Token { label, prob } => {
                        let kind = bundle.spec.head(task).map(|h| h.kind);
                        token_value(&words[i], &encoded[i], &label[k], &prob[k], &name, kind)
                    }
                    TaskOutput::Multilabel { probs, labels: ids } => {
                        let chosen: Vec<String> = ids[k].iter().map(|&id| name(id)).collect();
                        let all: serde_json::Map<String, Value> = probs[k]
                            .iter()
                            .enumerate()
                            .map(|(id, p)| (name(id as u32), json!(p)))
                            .collect();
                        json!({"labels": chosen, "probs": all})
                    }
                    TaskOutput::Regression { value } => json!(value[k]),
                };
                obj.insert(task.clone(), value);
            }
            out.push(Value::Object(obj));
        }
    }
    Ok(out)
}

/// A token task's output for one text: one tag per word, read at the word's
/// first sub-token, and the entities for span tasks.
fn token_value(
    words: &[String],
    encoded: &Encoded,
    label: &[u32],
    prob: &[f32],
    name: &dyn Fn(u32) -> String,
    kind: Option<TaskKind>,
) -> Value {
    let positions = first_subtoken_positions(&encoded.word_ids, words.len());
    let tags: Vec<Option<String>> = positions
        .iter()
        .map(|p| p.and_then(|p| label.get(p)).map(|&l| name(l)))
        .collect();
    let probs: Vec<Option<f32>> = positions
        .iter()
        .map(|p| p.and_then(|p| prob.get(p)).copied())
        .collect();
    let mut v = json!({"tags": tags, "probs": probs});
    if kind == Some(TaskKind::Spans) {
        let plain: Vec<String> = tags
            .iter()
            .map(|t| t.clone().unwrap_or_else(|| "O".into()))
            .collect();
        let spans: Vec<Value> = mtl_eval::metrics::spans::entities(&plain)
            .into_iter()
            .map(|e| {
                json!({
                    "label": e.kind,
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

/// Reads `input`, predicts, and writes JSONL to `output` atomically.
pub fn run(
    model_dir: &Path,
    input: &Path,
    output: &Path,
    text_field: &str,
    opts: &PredictOptions,
) -> Result<usize> {
    let bundle = Bundle::load(model_dir, &Device::Cpu)?;
    let texts: Vec<String> = input::read(input, text_field)?
        .into_iter()
        .map(|t| t.text)
        .collect();
    let preds = predict_texts(&bundle, &texts, opts)?;
    let mut bytes = Vec::new();
    for p in &preds {
        serde_json::to_writer(&mut bytes, p).map_err(|e| Error::Usage(e.to_string()))?;
        bytes.push(b'\n');
    }
    mtl_core::fsio::atomic_write(output, &bytes)?;
    Ok(preds.len())
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
}
