//! The stage itself: split tables in, tokenize tables, tokenizer, labels,
//! features and report out.
//!
//! `features.json` always travels on: copied byte for byte from the split
//! folder, or, where split wrote none, an empty [`FeatureSet`] (no side
//! inputs). Train then reads the tokenize folder alone.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use mtl_core::artifact::{self, NO_LABEL, SPLITS};
use mtl_core::config::TokenizerKind;
use mtl_core::manifest::{self, InputRef, Manifest, ManifestBuilder};
use mtl_core::{FeatureSet, LabelSet, Outcome, PipelineConfig, Stage, StagingDir};
use tokenizers::Tokenizer;

use crate::align::align_labels;
use crate::encode::{Encoded, encode_batch_words, encode_words, unk_id};
use crate::error::{Error, Result};
use crate::input::{LabelColumn, SplitTable, read_split};
use crate::output::{Targets, frame};
use crate::report::{self, Report, SplitReport, TokenizerInfo};
use crate::{STAGE_VERSION, load_pretrained, pretrained, train_tokenizer};

pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// Manifest input name of a pretrained tokenizer file.
const PRETRAINED_INPUT: &str = "pretrained_tokenizer";
/// Rows encoded per batch: bounds the tokenizers crate's per-row memory.
const CHUNK: usize = 4096;

/// Runs the tokenize stage from the split folder `input_dir` into `out_dir`.
pub fn run(cfg: &PipelineConfig, input_dir: &Path, out_dir: &Path, force: bool) -> Result<Outcome> {
    let tk = &cfg.tokenize;
    let (_, split_ref) = manifest::upstream(input_dir, Stage::Split)?;
    let mut inputs = vec![split_ref];
    let pretrained_file = match (tk.kind, &tk.pretrained) {
        (TokenizerKind::Pretrained, Some(raw)) => {
            let file = pretrained::tokenizer_file(&cfg.resolve_path("tokenize.pretrained", raw)?);
            inputs.push(InputRef {
                name: PRETRAINED_INPUT.into(),
                fingerprint: mtl_core::hash::sha256_file(&file)?,
            });
            Some(file)
        }
        (TokenizerKind::Pretrained, None) => {
            return Err(mtl_core::CoreError::ConfigValue {
                path: cfg.source.path.clone(),
                key: "tokenize.pretrained".into(),
                message: "required when kind = \"pretrained\"".into(),
            }
            .into());
        }
        _ => None,
    };
    let fp = manifest::fingerprint(Stage::Tokenize, STAGE_VERSION, cfg, &inputs);
    let cached = if force {
        None
    } else {
        Manifest::fresh(out_dir, &fp)
    };
    if let Some(m) = cached {
        return Ok(Outcome::Cached(m));
    }
    let mut mb = ManifestBuilder::new(Stage::Tokenize, STAGE_VERSION, fp, inputs);

    let t = Instant::now();
    let labels_path = input_dir.join(LabelSet::FILE);
    let labels_bytes =
        std::fs::read(&labels_path).map_err(|e| mtl_core::CoreError::io(&labels_path, e))?;
    let labels = LabelSet::read(&labels_path)?;
    let features_path = input_dir.join(FeatureSet::FILE);
    // Absent when split selects no features (or predates them).
    let features_bytes = if features_path.exists() {
        Some(
            std::fs::read(&features_path)
                .map_err(|e| mtl_core::CoreError::io(&features_path, e))?,
        )
    } else {
        None
    };
    let feature_set = match &features_bytes {
        Some(_) => FeatureSet::read(&features_path)?,
        None => FeatureSet::default(),
    };
    let used = feature_set.used();
    let tables = SPLITS
        .iter()
        .map(|s| read_split(&input_dir.join(format!("{s}.parquet")), &labels, &used))
        .collect::<Result<Vec<_>>>()?;
    mb.timing("read", t);

    let t = Instant::now();
    let tok = match &pretrained_file {
        Some(file) => load_pretrained(file)?,
        // Only the train split: dev and test stay unseen.
        None => train_tokenizer(tables[0].words.iter().cloned(), tk)?,
    };
    mb.timing("fit", t);

    let t = Instant::now();
    let unk = unk_id(&tok);
    let mut outputs = Vec::with_capacity(SPLITS.len());
    let mut split_reports = BTreeMap::new();
    for (name, table) in SPLITS.iter().zip(&tables) {
        let encoded = encode_table(&tok, table, tk.max_length)?;
        let (targets, lost) = targets(table, &encoded, &labels, tk.label_all_subtokens)?;
        split_reports.insert(name.to_string(), SplitReport::new(&encoded, unk, lost));
        let n_words: Vec<u32> = table.words.iter().map(|w| w.len() as u32).collect();
        let df =
            frame(&table.ids, &encoded, &n_words, &table.features, &targets).map_err(|source| {
                Error::Polars {
                    path: table.path.clone(),
                    source,
                }
            })?;
        outputs.push((name, df));
    }
    mb.timing("encode", t);

    let report = Report {
        tokenizer: TokenizerInfo {
            kind: tk.kind,
            pretrained: tk
                .pretrained
                .clone()
                .filter(|_| tk.kind == TokenizerKind::Pretrained),
            vocab_size: tok.get_vocab_size(true),
            max_length: tk.max_length,
            label_all_subtokens: tk.label_all_subtokens,
            pad_id: ["[PAD]", "<pad>"].iter().find_map(|t| tok.token_to_id(t)),
            unk_id: unk,
        },
        splits: split_reports,
    };

    let t = Instant::now();
    let staging = StagingDir::begin(out_dir)?;
    let mut file_rows = BTreeMap::new();
    for (name, mut df) in outputs {
        let file = format!("{name}.parquet");
        artifact::write_parquet(&mut df, &staging.path(&file))?;
        file_rows.insert(file, df.height() as u64);
        mb.rows(name, df.height() as u64);
    }
    let tok_path = staging.path(TOKENIZER_FILE);
    tok.save(&tok_path, false)
        .map_err(|e| Error::SaveTokenizer {
            path: tok_path.clone(),
            message: e.to_string(),
        })?;
    // Copied byte for byte: labels.json travels unchanged into the bundle.
    mtl_core::fsio::atomic_write(&staging.path(LabelSet::FILE), &labels_bytes)?;
    match &features_bytes {
        Some(bytes) => mtl_core::fsio::atomic_write(&staging.path(FeatureSet::FILE), bytes)?,
        None => mtl_core::fsio::write_json(&staging.path(FeatureSet::FILE), &feature_set)?,
    }
    mtl_core::fsio::write_json(&staging.path(report::FILE), &report)?;
    mb.timing("write", t);
    let m = mb.finish(&staging, &file_rows)?;
    staging.commit()?;
    Ok(Outcome::Ran(m))
}

/// Encodes every row; a failing batch is re-encoded row by row so the
/// error names the row.
fn encode_table(tok: &Tokenizer, table: &SplitTable, max_length: usize) -> Result<Vec<Encoded>> {
    let mut out = Vec::with_capacity(table.rows());
    for (c, chunk) in table.words.chunks(CHUNK).enumerate() {
        match encode_batch_words(tok, chunk, max_length) {
            Ok(v) => out.extend(v),
            Err(batch_err) => {
                for (i, words) in chunk.iter().enumerate() {
                    let row = c * CHUNK + i;
                    encode_words(tok, words, max_length)
                        .map_err(|e| row_error(table, row, e.to_string()))?;
                }
                return Err(batch_err);
            }
        }
    }
    Ok(out)
}

fn row_error(table: &SplitTable, row: usize, message: String) -> Error {
    Error::Row {
        path: table.path.clone(),
        row,
        id: table.ids[row].clone(),
        message,
    }
}

type TaskTargets = (Vec<(String, Targets)>, BTreeMap<String, u64>);

/// Label ids per task, aligned to sub-tokens for token tasks, plus the
/// labelled words each token task lost to truncation.
fn targets(
    table: &SplitTable,
    encoded: &[Encoded],
    labels: &LabelSet,
    all_subtokens: bool,
) -> Result<TaskTargets> {
    let mut out = Vec::new();
    let mut lost = BTreeMap::new();
    for (task, column) in &table.labels {
        let tl = labels.get(task)?;
        let id_of = |row: usize, label: &str| -> Result<i32> {
            tl.id(label)
                .map(|i| i as i32)
                .ok_or_else(|| Error::UnknownLabel {
                    path: table.path.clone(),
                    row,
                    id: table.ids[row].clone(),
                    task: task.clone(),
                    label: label.to_string(),
                })
        };
        let targets = match column {
            LabelColumn::Sentence(values) => Targets::Sentence(
                values
                    .iter()
                    .enumerate()
                    .map(|(row, v)| v.as_deref().map_or(Ok(NO_LABEL), |l| id_of(row, l)))
                    .collect::<Result<_>>()?,
            ),
            LabelColumn::Token(rows) => {
                let mut task_lost = 0u64;
                let mut aligned = Vec::with_capacity(rows.len());
                for (row, word_labels) in rows.iter().enumerate() {
                    let Some(word_labels) = word_labels else {
                        aligned.push(None);
                        continue;
                    };
                    let n_words = table.words[row].len();
                    if word_labels.len() != n_words {
                        return Err(row_error(
                            table,
                            row,
                            format!(
                                "task `{task}`: {} labels for {n_words} words",
                                word_labels.len()
                            ),
                        ));
                    }
                    let ids = word_labels
                        .iter()
                        .map(|l| id_of(row, l))
                        .collect::<Result<Vec<_>>>()?;
                    task_lost += encoded[row].truncated_words as u64;
                    aligned.push(Some(align_labels(
                        &ids,
                        &encoded[row].word_ids,
                        all_subtokens,
                    )));
                }
                lost.insert(task.clone(), task_lost);
                Targets::Token(aligned)
            }
            LabelColumn::Multilabel(rows) => Targets::Multilabel(
                rows.iter()
                    .enumerate()
                    .map(|(row, labels)| {
                        labels
                            .as_ref()
                            .map(|labels| {
                                let mut ids = labels
                                    .iter()
                                    .map(|l| id_of(row, l))
                                    .collect::<Result<Vec<_>>>()?;
                                ids.sort_unstable();
                                ids.dedup();
                                Ok(ids)
                            })
                            .transpose()
                    })
                    .collect::<Result<_>>()?,
            ),
            LabelColumn::Regression(values) => {
                Targets::Regression(values.iter().map(|v| v.map(|v| v as f32)).collect())
            }
        };
        out.push((task.clone(), targets));
    }
    Ok((out, lost))
}
