//! Writing one input file's predictions as JSONL, atomically: records are
//! streamed into a hidden temporary sibling (`.<name>.tmp-<pid>`) chunk by
//! chunk and renamed to the final name only when all are written and
//! synced, so a reader, or a crash, never sees half a file.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use mtl_core::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::Predictor;
use crate::error::Result;
use crate::input::{self, InputOptions, Record};

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
    /// Records written (predictions and error records).
    pub rows: usize,
    /// Rows predicted.
    pub predicted: usize,
    /// Rows written as error records.
    pub errors: usize,
    pub seconds: f64,
}

/// Reads `input` ([`input::read`]), predicts every good row, and writes one
/// record per row to `output` in input order: the prediction with `id` and
/// `line`, or `{"id", "line", "error"}`. The file appears complete or not
/// at all.
pub fn predict_file(
    predictor: &Predictor,
    input: &Path,
    output: &Path,
    opts: &InputOptions,
) -> Result<FileSummary> {
    let started = Instant::now();
    let records = input::read(input, opts)?;
    let tmp = mtl_core::fsio::tmp_sibling(output);
    let written = write_records(predictor, &records, &tmp).and_then(|s| {
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

fn write_records(predictor: &Predictor, records: &[Record], tmp: &Path) -> Result<FileSummary> {
    let io = |e: std::io::Error| CoreError::io(tmp, e);
    let crash_after: Option<usize> = std::env::var(CRASH_AFTER_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let mut w = BufWriter::new(std::fs::File::create(tmp).map_err(io)?);
    let mut summary = FileSummary::default();
    for chunk in records.chunks(CHUNK) {
        let texts: Vec<String> = chunk
            .iter()
            .filter_map(|r| r.text.as_ref().ok().cloned())
            .collect();
        let mut preds = predictor.predict(&texts)?.into_iter();
        for r in chunk {
            let mut obj = Map::new();
            obj.insert("id".into(), r.id.clone());
            obj.insert("line".into(), json!(r.line));
            match &r.text {
                Ok(_) => {
                    if let Some(Value::Object(p)) = preds.next() {
                        obj.extend(p);
                    }
                    summary.predicted += 1;
                }
                Err(reason) => {
                    obj.insert("error".into(), json!(reason));
                    summary.errors += 1;
                }
            }
            serde_json::to_writer(&mut w, &Value::Object(obj))
                .map_err(std::io::Error::from)
                .map_err(io)?;
            w.write_all(b"\n").map_err(io)?;
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
