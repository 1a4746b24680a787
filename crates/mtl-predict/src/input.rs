//! Reading raw texts to predict on, in five formats: plain text (one text
//! per line), JSONL (one object per line), CSV and TSV (a header line, then
//! records; through polars) and Parquet (through polars).
//!
//! The format comes from the file's extension ([`Format::from_path`]) or is
//! given. The text sits in a named column (`text` by default); an optional
//! id column is carried into every output record, and without one the
//! record's line is its id.
//!
//! A row that cannot be used (not JSON, not an object, no text, no id) does
//! not stop the file: it becomes a [`Record`] whose text is the reason, and
//! prediction writes an error record for it in its place, so that a batch
//! job finishes the good rows and reports the bad ones by line. A problem
//! with the whole file (unreadable, a CSV whose quoting is broken, a table
//! without the text column) is an error naming the file.
//!
//! Lines: the 1-based physical line for text and JSONL; for CSV/TSV the
//! line a record starts on, the header being line 1 (a quoted field
//! spanning lines pushes the next records down); for Parquet the 1-based
//! row number. Blank lines and blank CSV records are skipped.

use std::path::Path;

use mtl_core::CoreError;
use mtl_core::artifact::PolarsAt;
use polars::prelude::*;
use serde_json::Value;

use crate::error::{Error, Result};

/// An input file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One text per line (`.txt`, `.lines`, `.text`).
    Lines,
    /// One JSON object per line (`.jsonl`, `.ndjson`).
    Jsonl,
    /// Comma-separated with a header line (`.csv`).
    Csv,
    /// Tab-separated with a header line (`.tsv`, `.tab`).
    Tsv,
    /// A Parquet table (`.parquet`, `.pq`).
    Parquet,
}

impl Format {
    /// The format its extension names, if any (case-insensitive).
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" | "lines" | "text" => Format::Lines,
            "jsonl" | "ndjson" => Format::Jsonl,
            "csv" => Format::Csv,
            "tsv" | "tab" => Format::Tsv,
            "parquet" | "pq" => Format::Parquet,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Lines => "lines",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Tsv => "tsv",
            Format::Parquet => "parquet",
        }
    }
}

/// How to read an input file.
#[derive(Debug, Clone)]
pub struct InputOptions {
    /// The format; `None` means "from the extension".
    pub format: Option<Format>,
    /// The field or column holding the text (not used for plain text).
    pub text_column: String,
    /// The field or column holding each row's id (not for plain text).
    pub id_column: Option<String>,
    /// Fail on the first bad row (naming file and line) instead of writing
    /// an error record for it.
    pub strict: bool,
}

impl Default for InputOptions {
    fn default() -> Self {
        InputOptions {
            format: None,
            text_column: "text".into(),
            id_column: None,
            strict: false,
        }
    }
}

impl InputOptions {
    /// The format of `path`: the given one, else its extension's.
    pub fn format_of(&self, path: &Path) -> Result<Format> {
        self.format
            .or_else(|| Format::from_path(path))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "{}: cannot tell the format from the extension (known: .txt, .lines, \
                     .jsonl, .ndjson, .csv, .tsv, .parquet); pass --format",
                    path.display()
                ))
            })
    }
}

/// One input row: where it came from, its id, and its text or the reason
/// it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub line: usize,
    /// The id column's value (strings and numbers as they are), or the line
    /// number when there is no id column; `null` when the row has no id.
    pub id: Value,
    pub text: std::result::Result<String, String>,
}

/// Reads every row of `path`. With `opts.strict`, the first bad row is an
/// error naming the file and the line.
pub fn read(path: &Path, opts: &InputOptions) -> Result<Vec<Record>> {
    let format = opts.format_of(path)?;
    let records = match format {
        Format::Lines => {
            if let Some(id) = &opts.id_column {
                return Err(Error::Usage(format!(
                    "{}: plain text has no columns, so no id column `{id}`; the line number is the id",
                    path.display()
                )));
            }
            read_lines(path)?
        }
        Format::Jsonl => read_jsonl(path, opts)?,
        Format::Csv => read_csv(path, opts, b',')?,
        Format::Tsv => read_csv(path, opts, b'\t')?,
        Format::Parquet => read_parquet(path, opts)?,
    };
    if opts.strict
        && let Some(bad) = records.iter().find(|r| r.text.is_err())
    {
        return Err(Error::Input {
            path: path.to_path_buf(),
            line: bad.line,
            message: bad.text.clone().err().unwrap_or_default(),
        });
    }
    Ok(records)
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    Ok(std::fs::read(path).map_err(|e| CoreError::io(path, e))?)
}

/// Non-blank lines with their 1-based numbers, `\r\n` endings and a UTF-8
/// byte order mark removed; a line that is not UTF-8 is an `Err` with the
/// reason.
fn lines(bytes: &[u8]) -> impl Iterator<Item = (usize, std::result::Result<&str, String>)> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    body.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            let text = std::str::from_utf8(l).map_err(|e| format!("not UTF-8: {e}"));
            match text {
                Ok(t) if t.trim().is_empty() => None,
                _ => Some((i + 1, text)),
            }
        })
}

fn read_lines(path: &Path) -> Result<Vec<Record>> {
    let bytes = read_bytes(path)?;
    Ok(lines(&bytes)
        .map(|(line, text)| Record {
            line,
            id: Value::from(line),
            text: text.map(str::to_string),
        })
        .collect())
}

fn read_jsonl(path: &Path, opts: &InputOptions) -> Result<Vec<Record>> {
    let bytes = read_bytes(path)?;
    Ok(lines(&bytes)
        .map(|(line, text)| {
            let (id, text) = match text {
                Ok(t) => json_row(t, line, opts),
                Err(e) => (Value::Null, Err(e)),
            };
            Record { line, id, text }
        })
        .collect())
}

/// The id and text of one JSON line.
fn json_row(
    line_text: &str,
    line: usize,
    opts: &InputOptions,
) -> (Value, std::result::Result<String, String>) {
    let v: Value = match serde_json::from_str(line_text) {
        Ok(v) => v,
        Err(e) => return (Value::Null, Err(format!("invalid JSON: {e}"))),
    };
    let Value::Object(obj) = v else {
        return (Value::Null, Err("not a JSON object".into()));
    };
    let id = match &opts.id_column {
        None => Value::from(line),
        Some(c) => match obj.get(c) {
            Some(v @ (Value::String(_) | Value::Number(_))) => v.clone(),
            Some(Value::Null) | None => {
                return (Value::Null, Err(format!("no id field `{c}`")));
            }
            Some(other) => Value::String(other.to_string()),
        },
    };
    let text = match obj.get(&opts.text_column) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Null) | None => Err(format!("no text field `{}`", opts.text_column)),
        Some(_) => Err(format!("text field `{}` is not a string", opts.text_column)),
    };
    (id, text)
}

/// Where each CSV record starts (1-based line) and whether it is blank,
/// following quotes across lines as polars does.
fn csv_records(path: &Path, bytes: &[u8], quote: u8) -> Result<Vec<(usize, bool)>> {
    let mut out = Vec::new();
    let (mut line, mut record_line) = (1usize, 1usize);
    let (mut quoted, mut quote_line) = (false, 0usize);
    let mut blank = true;
    for &b in bytes {
        if b == quote {
            quoted = !quoted;
            if quoted {
                quote_line = line;
            }
            blank = false;
        } else if b == b'\n' {
            line += 1;
            if !quoted {
                out.push((record_line, blank));
                (record_line, blank) = (line, true);
            }
        } else if !matches!(b, b' ' | b'\t' | b'\r') {
            blank = false;
        }
    }
    if quoted {
        return Err(Error::Input {
            path: path.to_path_buf(),
            line: quote_line,
            message: "a quoted field opened here is never closed".into(),
        });
    }
    if !blank {
        out.push((record_line, blank));
    }
    Ok(out)
}

/// A table's column that must exist, by the option that names it.
fn require<'a>(path: &Path, df: &'a DataFrame, name: &str, option: &str) -> Result<&'a Column> {
    df.column(name).map_err(|_| {
        let have: Vec<String> = df
            .columns()
            .iter()
            .map(|c| format!("`{}`", c.name()))
            .collect();
        Error::from(CoreError::Schema {
            path: path.to_path_buf(),
            column: name.to_string(),
            message: format!("missing ({option}); the file has {}", have.join(", ")),
        })
    })
}

/// The text and id columns of a table as strings (`id` `None` without an
/// id column); rows are matched to `lines` one for one.
fn table_records(
    path: &Path,
    df: &DataFrame,
    opts: &InputOptions,
    lines: &[usize],
) -> Result<Vec<Record>> {
    let text = require(path, df, &opts.text_column, "--text-column")?;
    let text = text.str().map_err(|_| {
        Error::from(CoreError::Schema {
            path: path.to_path_buf(),
            column: opts.text_column.clone(),
            message: format!("must hold strings, not {}", text.dtype()),
        })
    })?;
    let id = match &opts.id_column {
        Some(c) => Some(
            require(path, df, c, "--id-column")?
                .cast(&DataType::String)
                .at(path)?,
        ),
        None => None,
    };
    let id = id.as_ref().map(|c| c.str()).transpose().at(path)?;
    let mut out = Vec::with_capacity(df.height());
    for (i, &line) in lines.iter().enumerate() {
        let id = match &id {
            Some(ids) => ids.get(i).map_or(Value::Null, Value::from),
            None => Value::from(line),
        };
        let text = match (text.get(i), &id) {
            (_, Value::Null) => Err(format!(
                "no id in column `{}`",
                opts.id_column.as_deref().unwrap_or_default()
            )),
            (Some(t), _) => Ok(t.to_string()),
            (None, _) => Err(format!("no text in column `{}`", opts.text_column)),
        };
        out.push(Record { line, id, text });
    }
    Ok(out)
}

fn read_csv(path: &Path, opts: &InputOptions, delim: u8) -> Result<Vec<Record>> {
    let bytes = read_bytes(path)?;
    let records = csv_records(path, &bytes, b'"')?;
    // polars finds no header in leading blank lines; skipping them by count
    // keeps its rows and the records in step.
    let leading = records.iter().take_while(|r| r.1).count();
    let Some(((_, _), body)) = records[leading..].split_first() else {
        return Ok(Vec::new());
    };
    let reader = LazyCsvReader::new(PlRefPath::try_from_path(path).at(path)?)
        .with_has_header(true)
        .with_separator(delim)
        .with_quote_char(Some(b'"'))
        .with_skip_lines(leading)
        .with_infer_schema_length(Some(0))
        .with_truncate_ragged_lines(true)
        .with_encoding(CsvEncoding::LossyUtf8)
        .with_glob(false);
    let df = reader.finish().at(path)?.collect().at(path)?;
    if df.height() != body.len() {
        return Err(Error::Input {
            path: path.to_path_buf(),
            line: body.first().map_or(1, |r| r.0),
            message: format!(
                "polars read {} records but the lines hold {}; check the quoting",
                df.height(),
                body.len()
            ),
        });
    }
    let lines: Vec<usize> = body.iter().map(|r| r.0).collect();
    let mut out = table_records(path, &df, opts, &lines)?;
    let blank: std::collections::HashSet<usize> =
        body.iter().filter(|r| r.1).map(|r| r.0).collect();
    out.retain(|r| !blank.contains(&r.line));
    Ok(out)
}

fn read_parquet(path: &Path, opts: &InputOptions) -> Result<Vec<Record>> {
    let df = mtl_core::artifact::read_parquet(path)?;
    let lines: Vec<usize> = (1..=df.height()).collect();
    table_records(path, &df, opts, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn texts(records: &[Record]) -> Vec<(usize, Value, std::result::Result<String, String>)> {
        records
            .iter()
            .map(|r| (r.line, r.id.clone(), r.text.clone()))
            .collect()
    }

    #[test]
    fn formats_come_from_extensions() {
        let f = |p: &str| Format::from_path(Path::new(p));
        assert_eq!(f("a.txt"), Some(Format::Lines));
        assert_eq!(f("a.JSONL"), Some(Format::Jsonl));
        assert_eq!(f("a.csv"), Some(Format::Csv));
        assert_eq!(f("a.tsv"), Some(Format::Tsv));
        assert_eq!(f("a.parquet"), Some(Format::Parquet));
        assert_eq!(f("a.xlsx"), None);
        let err = InputOptions::default()
            .format_of(Path::new("in/a.xlsx"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in/a.xlsx") && err.contains("--format"),
            "{err}"
        );
    }

    #[test]
    fn plain_lines_keep_their_numbers_and_skip_blanks() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.txt", "\u{feff}one\r\n\n  \ntwo words\n");
        let got = texts(&read(&p, &InputOptions::default()).unwrap());
        assert_eq!(
            got,
            [
                (1, Value::from(1), Ok("one".into())),
                (4, Value::from(4), Ok("two words".into())),
            ]
        );
    }

    #[test]
    fn bad_json_lines_become_error_records_or_fail_when_strict() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "a.jsonl",
            "{\"id\": \"x\", \"body\": \"hi\"}\nnot json\n[1]\n{\"id\": 7}\n{\"id\": 8, \"body\": 3}\n{\"body\": \"no id\"}\n",
        );
        let opts = InputOptions {
            text_column: "body".into(),
            id_column: Some("id".into()),
            ..InputOptions::default()
        };
        let got = texts(&read(&p, &opts).unwrap());
        assert_eq!(got[0], (1, Value::from("x"), Ok("hi".into())));
        assert!(got[1].2.as_ref().unwrap_err().contains("invalid JSON"));
        assert_eq!(got[2].2, Err("not a JSON object".into()));
        assert_eq!(got[3].1, Value::from(7));
        assert_eq!(got[3].2, Err("no text field `body`".into()));
        assert_eq!(got[4].2, Err("text field `body` is not a string".into()));
        assert_eq!(got[5].2, Err("no id field `id`".into()));

        let strict = InputOptions {
            strict: true,
            ..opts
        };
        let err = read(&p, &strict).unwrap_err().to_string();
        assert!(
            err.contains("a.jsonl:2:") && err.contains("invalid JSON"),
            "{err}"
        );
    }

    #[test]
    fn csv_records_keep_their_starting_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "a.csv",
            "key,text\n1,hello\n2,\"multi\nline, quoted\"\n\n3,\n4,\"say \"\"hi\"\"\"\n",
        );
        let opts = InputOptions {
            id_column: Some("key".into()),
            ..InputOptions::default()
        };
        let got = texts(&read(&p, &opts).unwrap());
        assert_eq!(
            got,
            [
                (2, Value::from("1"), Ok("hello".into())),
                (3, Value::from("2"), Ok("multi\nline, quoted".into())),
                (6, Value::from("3"), Err("no text in column `text`".into())),
                (7, Value::from("4"), Ok("say \"hi\"".into())),
            ]
        );
    }

    #[test]
    fn tsv_and_parquet_read_through_polars() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.tsv", "text\tid\na, b\t10\n");
        let opts = InputOptions {
            id_column: Some("id".into()),
            ..InputOptions::default()
        };
        let got = texts(&read(&p, &opts).unwrap());
        assert_eq!(got, [(2, Value::from("10"), Ok("a, b".into()))]);

        let mut df = df!("text" => [Some("x y"), None], "n" => [5i64, 6]).unwrap();
        let p = dir.path().join("a.parquet");
        mtl_core::artifact::write_parquet(&mut df, &p).unwrap();
        let opts = InputOptions {
            id_column: Some("n".into()),
            ..InputOptions::default()
        };
        let got = texts(&read(&p, &opts).unwrap());
        assert_eq!(
            got,
            [
                (1, Value::from("5"), Ok("x y".into())),
                (2, Value::from("6"), Err("no text in column `text`".into())),
            ]
        );
    }

    #[test]
    fn a_table_without_the_text_column_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.csv", "body\nhello\n");
        let err = read(&p, &InputOptions::default()).unwrap_err().to_string();
        assert!(
            err.contains("a.csv") && err.contains("`text`") && err.contains("`body`"),
            "{err}"
        );
        let p = write(dir.path(), "b.csv", "text\n\"open\n");
        let err = read(&p, &InputOptions::default()).unwrap_err().to_string();
        assert!(
            err.contains("b.csv:2") && err.contains("never closed"),
            "{err}"
        );
    }

    #[test]
    fn plain_text_has_no_id_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.txt", "x\n");
        let opts = InputOptions {
            id_column: Some("id".into()),
            ..InputOptions::default()
        };
        assert!(read(&p, &opts).is_err());
    }
}
