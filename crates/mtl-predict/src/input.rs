//! Reading raw texts to predict on: plain text (one text per line) or JSONL
//! (one object per line with a text field).

use std::io::BufRead;
use std::path::Path;

use crate::error::{Error, Result};

/// A text and the 1-based line it came from.
pub struct InputText {
    pub line: usize,
    pub text: String,
}

pub fn read(path: &Path, text_field: &str) -> Result<Vec<InputText>> {
    let file = std::fs::File::open(path).map_err(|e| mtl_core::CoreError::io(path, e))?;
    let jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line_no = i + 1;
        let line = line.map_err(|e| Error::Input {
            path: path.to_path_buf(),
            line: line_no,
            message: e.to_string(),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let text = if jsonl {
            let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| Error::Input {
                path: path.to_path_buf(),
                line: line_no,
                message: format!("invalid JSON: {e}"),
            })?;
            v.get(text_field)
                .and_then(|t| t.as_str())
                .ok_or_else(|| Error::Input {
                    path: path.to_path_buf(),
                    line: line_no,
                    message: format!("no string field `{text_field}`"),
                })?
                .to_string()
        } else {
            line
        };
        out.push(InputText {
            line: line_no,
            text,
        });
    }
    Ok(out)
}
