//! The stage itself: split tables in, tokenize tables, tokenizer, labels,
//! features and report out.
//!
//! `features.json` always travels on: copied byte for byte from the split
//! folder, or, where split wrote none, an empty [`FeatureSet`] (no side
//! inputs). Train then reads the tokenize folder alone.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use mtl_core::artifact::{self, IGNORE_INDEX, NO_LABEL, SPLITS};
use mtl_core::config::{TokenizeConfig, TokenizerKind, Truncation};
use mtl_core::manifest::{self, InputRef, Manifest, ManifestBuilder};
use mtl_core::{FeatureSet, LabelSet, Outcome, PipelineConfig, Stage, StagingDir, TaskKind};
use tokenizers::Tokenizer;

use crate::align::align_windows;
use crate::chars::CharVocab;
use crate::encode::{encode_words, unk_id};
use crate::error::{Error, Result};
use crate::input::{LabelColumn, SplitTable, read_split};
use crate::output::{Rows, Targets, frame};
use crate::report::{self, Report, SplitReport, TokenizerInfo};
use crate::window::{Windowed, encode_examples};
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
    // Characters, like sub-words, come from the train split only.
    let chars = tk.char_ids.then(|| {
        CharVocab::fit(
            tables[0].words.iter().flatten(),
            tk.lowercase,
            tk.max_word_chars,
        )
    });
    mb.timing("fit", t);

    let t = Instant::now();
    let unk = unk_id(&tok);
    let mut outputs = Vec::with_capacity(SPLITS.len());
    let mut split_reports = BTreeMap::new();
    for (name, table) in SPLITS.iter().zip(&tables) {
        let examples = encode_table(&tok, table, tk)?;
        let (targets, lost) = targets(table, &examples, &labels, tk.label_all_subtokens)?;
        split_reports.insert(
            name.to_string(),
            SplitReport::new(&examples, unk, lost, tk.pad_to),
        );
        let char_ids: Option<Vec<Vec<Vec<u32>>>> = chars.as_ref().map(|v| {
            table
                .words
                .iter()
                .map(|ws| ws.iter().map(|w| v.ids(w)).collect())
                .collect()
        });
        let table_rows = rows(
            table,
            &examples,
            tk.truncation,
            char_ids.as_deref(),
            targets,
        );
        let df = frame(&table_rows).map_err(|source| Error::Polars {
            path: table.path.clone(),
            source,
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
            pad_id: [cfg.tokenize.special_tokens.pad.as_str(), "[PAD]", "<pad>"]
                .iter()
                .find_map(|t| tok.token_to_id(t)),
            unk_id: unk,
            truncation: tk.truncation,
            stride: tk.stride,
            char_vocab_size: chars.as_ref().map(CharVocab::len),
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
    if let Some(chars) = &chars {
        chars.write(&staging.path(CharVocab::FILE))?;
    }
    mtl_core::fsio::write_json(&staging.path(report::FILE), &report)?;
    mb.timing("write", t);
    let m = mb.finish(&staging, &file_rows)?;
    staging.commit()?;
    Ok(Outcome::Ran(m))
}

/// Encodes every row in parallel batches, with the configured truncation;
/// a failing batch is re-encoded row by row so the error names the row.
fn encode_table(tok: &Tokenizer, table: &SplitTable, tk: &TokenizeConfig) -> Result<Vec<Windowed>> {
    let mut out = Vec::with_capacity(table.rows());
    for (c, chunk) in table.words.chunks(CHUNK).enumerate() {
        match encode_examples(tok, chunk, tk.max_length, tk.truncation, tk.stride) {
            Ok(v) => out.extend(v),
            Err(batch_err) => {
                for (i, words) in chunk.iter().enumerate() {
                    let row = c * CHUNK + i;
                    encode_words(tok, words, tk.max_length)
                        .map_err(|e| row_error(table, row, e.to_string()))?;
                }
                return Err(batch_err);
            }
        }
    }
    Ok(out)
}

/// One row per window, example by example; per-example columns repeat on
/// every window of the example. The `window` column is written in window
/// mode only, so cut tables keep their schema.
fn rows<'a>(
    table: &'a SplitTable,
    examples: &'a [Windowed],
    truncation: Truncation,
    char_ids: Option<&'a [Vec<Vec<u32>>]>,
    targets: Vec<(String, Targets)>,
) -> Rows<'a> {
    let n: usize = examples.iter().map(|x| x.windows.len()).sum();
    let mut out = Rows {
        ids: Vec::with_capacity(n),
        encoded: Vec::with_capacity(n),
        n_words: Vec::with_capacity(n),
        window: (truncation == Truncation::Window).then(|| Vec::with_capacity(n)),
        char_ids: char_ids.map(|_| Vec::with_capacity(n)),
        features: table
            .features
            .iter()
            .map(|(f, _)| (f.clone(), Vec::with_capacity(n)))
            .collect(),
        targets,
    };
    for (row, x) in examples.iter().enumerate() {
        for (k, e) in x.windows.iter().enumerate() {
            out.ids.push(&table.ids[row]);
            out.encoded.push(e);
            out.n_words.push(table.words[row].len() as u32);
            if let Some(w) = &mut out.window {
                w.push(k as u32);
            }
            if let (Some(c), Some(all)) = (&mut out.char_ids, char_ids) {
                c.push(&all[row]);
            }
            for ((_, dst), (_, src)) in out.features.iter_mut().zip(&table.features) {
                dst.push(src[row]);
            }
        }
    }
    out
}

/// Gold head positions of a dependency task, one list per window (the
/// config allows only `cut`, so one per example): at each labelled word
/// start, its head's first sub-token, 0 (`[CLS]`) for the root. A head that
/// truncation cut off, or a `_` head, leaves the word unscored
/// ([`IGNORE_INDEX`]) rather than pointing at a wrong position.
fn head_targets(
    table: &SplitTable,
    examples: &[Windowed],
    lists: &[Option<Vec<String>>],
    aligned: &[Option<Vec<i32>>],
) -> Result<Vec<Option<Vec<i32>>>> {
    let Some(heads) = &table.heads else {
        return Err(row_error(
            table,
            0,
            "a dependency task needs the `conllu_head` column".into(),
        ));
    };
    let mut out = Vec::with_capacity(aligned.len());
    let mut k = 0;
    for (row, x) in examples.iter().enumerate() {
        for e in &x.windows {
            let labels = &aligned[k];
            k += 1;
            let (Some(labels), Some(_)) = (labels, &lists[row]) else {
                out.push(None);
                continue;
            };
            let Some(row_heads) = &heads[row] else {
                return Err(row_error(
                    table,
                    row,
                    "a dependency task's row has no `conllu_head`".into(),
                ));
            };
            let n_words = table.words[row].len();
            if row_heads.len() != n_words {
                return Err(row_error(
                    table,
                    row,
                    format!("{} heads for {n_words} words", row_heads.len()),
                ));
            }
            let mut first = vec![None; n_words];
            for (p, &w) in e.word_ids.iter().enumerate() {
                if let Ok(w) = usize::try_from(w)
                    && w < n_words
                    && first[w].is_none()
                {
                    first[w] = Some(p as i32);
                }
            }
            let mut h = vec![IGNORE_INDEX; e.word_ids.len()];
            for (p, &w) in e.word_ids.iter().enumerate() {
                let Ok(w) = usize::try_from(w) else { continue };
                if w >= n_words || first[w] != Some(p as i32) || labels[p] == IGNORE_INDEX {
                    continue;
                }
                h[p] = match row_heads[w] {
                    Some(0) => 0,
                    Some(head) if head as usize <= n_words => {
                        first[head as usize - 1].unwrap_or(IGNORE_INDEX)
                    }
                    Some(head) => {
                        return Err(row_error(
                            table,
                            row,
                            format!("word {} has head {head}, beyond its {n_words} words", w + 1),
                        ));
                    }
                    None => IGNORE_INDEX,
                };
            }
            out.push(Some(h));
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

/// Label ids per task and row (window), aligned to sub-tokens for token
/// tasks, plus the labelled words each token task lost to truncation.
/// Sentence-level targets sit on an example's first window only; its other
/// windows carry "no label".
fn targets(
    table: &SplitTable,
    examples: &[Windowed],
    labels: &LabelSet,
    all_subtokens: bool,
) -> Result<TaskTargets> {
    // Per row, the example it belongs to and whether it is its first window.
    let rows: Vec<(usize, bool)> = examples
        .iter()
        .enumerate()
        .flat_map(|(row, x)| (0..x.windows.len()).map(move |k| (row, k == 0)))
        .collect();
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
                rows.iter()
                    .map(|&(row, first)| match values[row].as_deref() {
                        Some(l) if first => id_of(row, l),
                        _ => Ok(NO_LABEL),
                    })
                    .collect::<Result<_>>()?,
            ),
            LabelColumn::Token(lists) => {
                let mut task_lost = 0u64;
                let mut aligned = Vec::with_capacity(rows.len());
                for (row, (word_labels, x)) in lists.iter().zip(examples).enumerate() {
                    let Some(word_labels) = word_labels else {
                        aligned.extend(x.windows.iter().map(|_| None));
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
                    task_lost += x.lost_words() as u64;
                    let word_ids: Vec<&[i32]> =
                        x.windows.iter().map(|e| e.word_ids.as_slice()).collect();
                    aligned.extend(
                        align_windows(&ids, &word_ids, all_subtokens)
                            .into_iter()
                            .map(Some),
                    );
                }
                lost.insert(task.clone(), task_lost);
                if tl.kind == TaskKind::Dependency {
                    let heads = head_targets(table, examples, lists, &aligned)?;
                    out.push((task.clone(), Targets::Token(aligned)));
                    out.push((task.clone(), Targets::Heads(heads)));
                    continue;
                }
                Targets::Token(aligned)
            }
            LabelColumn::Multilabel(lists) => Targets::Multilabel(
                rows.iter()
                    .map(|&(row, first)| {
                        lists[row]
                            .as_ref()
                            .filter(|_| first)
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
            LabelColumn::Regression(values) => Targets::Regression(
                rows.iter()
                    .map(|&(row, first)| values[row].filter(|_| first).map(|v| v as f32))
                    .collect(),
            ),
        };
        out.push((task.clone(), targets));
    }
    Ok((out, lost))
}
