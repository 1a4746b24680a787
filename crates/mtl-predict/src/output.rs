//! Writing one input file's predictions as JSONL or CoNLL-U, atomically:
//! records are streamed into a hidden temporary sibling
//! (`.<name>.tmp-<pid>`) chunk by chunk and renamed to the final name only
//! when all are written and synced, so a reader, or a crash, never sees
//! half a file.
//!
//! CoNLL-U ([`crate::conllu`]) has no place for a row that could not be
//! used, nor for a text without words: such rows are left out of it and
//! counted in the [`FileSummary`] (with `strict` input options a bad row
//! fails the file instead).

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use mtl_core::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Predictor;
use crate::conllu::{self, Columns};
use crate::error::Result;
use crate::input::{self, InputOptions, Record};

/// What a prediction file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per input row.
    #[default]
    Jsonl,
    /// One CoNLL-U sentence block per input row.
    Conllu,
}

impl OutputFormat {
    /// The format an output file's extension names: `.conllu` (or
    /// `.conll`) is CoNLL-U, anything else JSONL.
    pub fn from_path(path: &Path) -> OutputFormat {
        let ext = path.extension().and_then(|e| e.to_str());
        match ext.map(str::to_ascii_lowercase).as_deref() {
            Some("conllu" | "conll") => OutputFormat::Conllu,
            _ => OutputFormat::Jsonl,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::Conllu => "conllu",
        }
    }

    /// The extension of the files batch mode writes.
    pub fn extension(self) -> &'static str {
        self.name()
    }
}

/// Texts predicted together: the model runs `batch_size` at a time inside.
const CHUNK: usize = 1024;

/// Fault injection for the crash tests: after this many records are in
/// the temporary file, the process exits at once with status 137 (no
/// destructors, so no cleanup and no lock release), as a killed job would.
/// Never set outside tests.
pub const CRASH_AFTER_ENV: &str = "MTL_PREDICT_TEST_CRASH_AFTER";

/// What one file's prediction did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileSummary {
    /// Input rows read; for JSONL the records written (predictions and
    /// error records).
    pub rows: usize,
    /// Rows predicted.
    pub predicted: usize,
    /// Rows that could not be used: written as error records (JSONL) or
    /// left out (CoNLL-U).
    pub errors: usize,
    /// CoNLL-U: predicted rows left out because their text has no words.
    #[serde(default)]
    pub empty: usize,
    /// How texts were cut into words, and why (`ud (auto: ...)`).
    #[serde(default)]
    pub segmentation: String,
    pub seconds: f64,
}

/// Reads `input` ([`input::read`]), predicts every good row, and writes
/// them to `output` in input order. JSONL: one record per row, the
/// prediction with `id` and `line`, or `{"id", "line", "error"}`. CoNLL-U:
/// one sentence block per predicted row (see the module docs). The file
/// appears complete or not at all.
pub fn predict_file(
    predictor: &Predictor,
    input: &Path,
    output: &Path,
    opts: &InputOptions,
    format: OutputFormat,
) -> Result<FileSummary> {
    let started = Instant::now();
    let records = input::read(input, opts)?;
    let tmp = mtl_core::fsio::tmp_sibling(output);
    let written = write_records(predictor, &records, &tmp, opts, format).and_then(|s| {
        std::fs::rename(&tmp, output).map_err(|e| CoreError::io(output, e))?;
        Ok(s)
    });
    match written {
        Ok(mut s) => {
            s.seconds = started.elapsed().as_secs_f64();
            Ok(s)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_records(
    predictor: &Predictor,
    records: &[Record],
    tmp: &Path,
    opts: &InputOptions,
    format: OutputFormat,
) -> Result<FileSummary> {
    let io = |e: std::io::Error| CoreError::io(tmp, e);
    let crash_after: Option<usize> = std::env::var(CRASH_AFTER_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let columns = Columns::of(predictor.bundle());
    let mut w = BufWriter::new(std::fs::File::create(tmp).map_err(io)?);
    let mut summary = FileSummary {
        segmentation: predictor.segmentation().to_string(),
        ..FileSummary::default()
    };
    for chunk in records.chunks(CHUNK) {
        let texts: Vec<String> = chunk
            .iter()
            .filter_map(|r| r.text.as_ref().ok().cloned())
            .collect();
        let mut preds = predictor.predict_words(&texts)?.into_iter();
        for r in chunk {
            let pred = match &r.text {
                Ok(_) => {
                    summary.predicted += 1;
                    preds.next()
                }
                Err(_) => {
                    summary.errors += 1;
                    None
                }
            };
            match format {
                OutputFormat::Jsonl => {
                    let mut obj = Map::new();
                    obj.insert("id".into(), r.id.clone());
                    obj.insert("line".into(), json!(r.line));
                    match (&r.text, pred) {
                        (Err(reason), _) => {
                            obj.insert("error".into(), json!(reason));
                        }
                        (Ok(_), Some(p)) => {
                            if let Value::Object(p) = p.value {
                                obj.extend(p);
                            }
                        }
                        (Ok(_), None) => {}
                    }
                    serde_json::to_writer(&mut w, &Value::Object(obj))
                        .map_err(std::io::Error::from)
                        .map_err(io)?;
                    w.write_all(b"\n").map_err(io)?;
                }
                OutputFormat::Conllu => {
                    if let (Ok(text), Some(p)) = (&r.text, pred) {
                        let id = opts.id_column.as_ref().map(|_| match &r.id {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        });
                        match conllu::sentence(text, id.as_deref(), &p, &columns) {
                            Some(block) => w.write_all(block.as_bytes()).map_err(io)?,
                            None => summary.empty += 1,
                        }
                    }
                }
            }
            summary.rows += 1;
            if crash_after.is_some_and(|n| summary.rows >= n) {
                let _ = w.flush();
                std::process::exit(137);
            }
        }
    }
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(summary)
}
