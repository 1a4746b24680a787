//! Prediction: raw text in, every task's output out, from a model bundle
//! alone. It replays the training-time cleaning (mtl-clean) and tokenizer
//! (mtl-tokenize) recorded in the bundle, runs the shared model once per
//! batch for all tasks, and maps token predictions back to words.
//!
//! It never trains, never scores against gold labels, and never reads the
//! pipeline config: the bundle is the whole contract.

mod error;
pub mod input;

use std::path::Path;

use candle_core::Device;
use mtl_core::align::first_subtoken_positions;
use mtl_model::{Batch, Bundle, TaskOutput};
use serde_json::{Value, json};

pub use error::{Error, Result};

/// Options of one prediction job.
pub struct PredictOptions<'a> {
    /// Which training dataset's cleaning to replay (needed when the model
    /// was trained on several).
    pub dataset: Option<&'a str>,
    pub batch_size: usize,
}

/// Predicts every task for each text; one JSON object per text.
pub fn predict_texts(
    bundle: &Bundle,
    texts: &[String],
    opts: &PredictOptions,
) -> Result<Vec<Value>> {
    let clean = match (opts.dataset, bundle.preprocess.clean.len()) {
        (Some(d), _) => bundle.preprocess.clean.get(d).ok_or_else(|| {
            Error::Usage(format!(
                "dataset `{d}` is not one the model was trained on ({})",
                bundle
                    .preprocess
                    .clean
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?,
        (None, 1) => bundle.preprocess.clean.values().next().expect("one entry"),
        (None, _) => {
            return Err(Error::Usage(format!(
                "the model was trained on several datasets; choose one with --dataset ({})",
                bundle
                    .preprocess
                    .clean
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let tokenizer = mtl_tokenize::load_pretrained(&bundle.tokenizer_path())?;
    let words: Vec<Vec<String>> = texts
        .iter()
        .map(|t| mtl_clean::text::try_clean_words(t, clean))
        .collect::<std::result::Result<_, _>>()?;
    let encoded =
        mtl_tokenize::encode_batch_words(&tokenizer, &words, bundle.preprocess.max_length)?;
    let device = Device::Cpu;
    let mut out = Vec::with_capacity(texts.len());
    for (chunk_start, chunk) in (0..texts.len())
        .step_by(opts.batch_size.max(1))
        .map(|s| (s, s..(s + opts.batch_size.max(1)).min(texts.len())))
    {
        let rows: Vec<&[u32]> = chunk
            .clone()
            .map(|i| encoded[i].input_ids.as_slice())
            .collect();
        let batch = Batch::pad(&rows, &device)?;
        let preds = bundle.predict(&batch)?;
        for (k, i) in chunk.enumerate() {
            debug_assert_eq!(chunk_start + k, i);
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
                        let positions =
                            first_subtoken_positions(&encoded[i].word_ids, words[i].len());
                        let tags: Vec<Option<String>> = positions
                            .iter()
                            .map(|p| p.map(|p| name(label[k][p])))
                            .collect();
                        let probs: Vec<Option<f32>> =
                            positions.iter().map(|p| p.map(|p| prob[k][p])).collect();
                        let kind = bundle.spec.head(task).map(|h| h.kind);
                        let mut v = json!({"tags": tags, "probs": probs});
                        if kind == Some(mtl_core::TaskKind::Spans) {
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
                                        "text": words[i][e.start..e.end].join(" "),
                                    })
                                })
                                .collect();
                            v["spans"] = json!(spans);
                        }
                        v
                    }
                };
                obj.insert(task.clone(), value);
            }
            out.push(Value::Object(obj));
        }
    }
    Ok(out)
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
