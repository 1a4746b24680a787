//! Reading raw dataset files into parsed rows. A line that cannot become a
//! row (bad bytes, bad JSON, no id, a label of the wrong type) is
//! quarantined here with its file and line; nothing is cleaned yet.
//!
//! Records of every keyed format (JSON Lines, CSV, TSV, Parquet) go through
//! [`parse_record`], so an id, a text or a label means the same thing
//! whichever file it came from.

use std::io::BufRead;
use std::path::PathBuf;

use mtl_core::TaskKind;
use mtl_core::config::{DatasetConfig, TaskConfig};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::reason;

/// One input file of a dataset.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// Position among the dataset's files: orders the quarantine.
    pub index: u32,
    /// `None` for `all`.
    pub split: Option<&'static str>,
    /// The path as written in the config: what rows and ids refer to.
    pub given: String,
    pub path: PathBuf,
}

/// A task's label as read, before any cleaning. `None` is "not labelled".
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Label {
    /// Classification.
    Sentence(Option<String>),
    /// Tagging and spans: one tag per word.
    Tokens(Option<Vec<String>>),
    /// Multilabel: sorted, without repeats; empty = no label applies.
    Multi(Option<Vec<String>>),
    /// Regression: always finite.
    Number(Option<f64>),
}

impl Label {
    pub fn is_present(&self) -> bool {
        match self {
            Label::Sentence(l) => l.is_some(),
            Label::Tokens(l) | Label::Multi(l) => l.is_some(),
            Label::Number(l) => l.is_some(),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Label::Sentence(Some(s)) => Value::from(s.as_str()),
            Label::Tokens(Some(t)) | Label::Multi(Some(t)) => Value::from(t.clone()),
            Label::Number(Some(x)) => Value::from(*x),
            Label::Sentence(None) | Label::Tokens(None) | Label::Multi(None) => Value::Null,
            Label::Number(None) => Value::Null,
        }
    }

    /// Short form for messages: the label, the tags joined by spaces, the
    /// labels joined by commas, the number, or `null`.
    pub fn display(&self) -> String {
        match self {
            Label::Sentence(Some(s)) => format!("`{s}`"),
            Label::Tokens(Some(t)) => format!("`{}`", t.join(" ")),
            Label::Multi(Some(t)) => format!("[{}]", t.join(", ")),
            Label::Number(Some(x)) => format!("`{x}`"),
            Label::Sentence(None) | Label::Tokens(None) | Label::Multi(None) => "null".into(),
            Label::Number(None) => "null".into(),
        }
    }
}

/// A line that parsed into an example.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub id: String,
    pub file: u32,
    pub line: u32,
    pub group: Option<String>,
    /// The words before cleaning, as the reader found them: the raw text
    /// split on whitespace for text formats, the given tokens for CoNLL-U
    /// (where a word may contain a space). Cleaning is per word and never
    /// re-splits them, so token labels stay aligned.
    pub raw_words: Vec<String>,
    /// One per task of the dataset, in config order.
    pub labels: Vec<Label>,
    pub raw: String,
    /// What a CoNLL-U sentence carries besides its words and task columns.
    pub conllu: Option<Box<crate::conllu::Extra>>,
}

/// A line that went to the quarantine.
#[derive(Debug, Clone)]
pub(crate) struct Quarantined {
    pub file: u32,
    pub line: u32,
    pub reason: &'static str,
    pub detail: String,
    pub raw: String,
}

/// Everything read from one dataset's files.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Non-blank lines seen: every one ends up kept or quarantined.
    pub read: u64,
    pub rows: Vec<Row>,
    pub quarantined: Vec<Quarantined>,
}

/// Reads one whole JSON Lines file, appending to `out`.
#[cfg(test)]
pub(crate) fn read_jsonl(
    ds: &DatasetConfig,
    tasks: &[&TaskConfig],
    src: &SourceFile,
    out: &mut Parsed,
) -> Result<()> {
    let mut file = JsonlFile::open(src)?;
    while file.read_into(ds, tasks, out, usize::MAX)? {}
    Ok(())
}

/// A JSON Lines file being read a chunk at a time: only the current line
/// is buffered.
pub(crate) struct JsonlFile<'a> {
    src: &'a SourceFile,
    reader: std::io::BufReader<std::fs::File>,
    buf: Vec<u8>,
    line_no: u64,
}

impl<'a> JsonlFile<'a> {
    pub fn open(src: &'a SourceFile) -> Result<Self> {
        let file = std::fs::File::open(&src.path).map_err(|source| Error::Io {
            path: src.path.clone(),
            source,
        })?;
        Ok(JsonlFile {
            src,
            reader: std::io::BufReader::with_capacity(1 << 20, file),
            buf: Vec::new(),
            line_no: 0,
        })
    }

    /// Reads lines into `out` until it holds `max_rows` rows. Returns
    /// whether the file may have more lines (false at its end).
    pub fn read_into(
        &mut self,
        ds: &DatasetConfig,
        tasks: &[&TaskConfig],
        out: &mut Parsed,
        max_rows: usize,
    ) -> Result<bool> {
        let src = self.src;
        let io_err = |source| Error::Io {
            path: src.path.clone(),
            source,
        };
        while out.rows.len() < max_rows {
            self.buf.clear();
            if self
                .reader
                .read_until(b'\n', &mut self.buf)
                .map_err(io_err)?
                == 0
            {
                return Ok(false);
            }
            self.line_no += 1;
            let line = u32::try_from(self.line_no).map_err(|_| Error::TooManyLines {
                path: src.path.clone(),
                line: self.line_no,
            })?;
            let mut bytes = self.buf.as_slice();
            if self.line_no == 1 {
                bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            }
            while let Some(rest) = bytes
                .strip_suffix(b"\n")
                .or_else(|| bytes.strip_suffix(b"\r"))
            {
                bytes = rest;
            }
            let text = match std::str::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    out.read += 1;
                    out.quarantined.push(Quarantined {
                        file: src.index,
                        line,
                        reason: reason::INVALID_UTF8,
                        detail: e.to_string(),
                        raw: String::from_utf8_lossy(bytes).into_owned(),
                    });
                    continue;
                }
            };
            if text.trim().is_empty() {
                continue;
            }
            out.read += 1;
            match parse_line(ds, tasks, src, line, text) {
                Ok(row) => out.rows.push(row),
                Err((reason, detail)) => out.quarantined.push(Quarantined {
                    file: src.index,
                    line,
                    reason,
                    detail,
                    raw: text.to_string(),
                }),
            }
        }
        Ok(true)
    }
}

pub(crate) type Rejection = (&'static str, String);

/// A whole file's bytes, for the readers that need more than one pass or
/// more than one file at a time.
pub(crate) fn read_bytes(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The lines of a file without BOM and line ends. A last line without a
/// newline counts; the empty piece after a final newline does not, so
/// files with and without a trailing newline have the same lines.
pub(crate) fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut lines: Vec<&[u8]> = bytes
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    if bytes.is_empty() || bytes.ends_with(b"\n") {
        lines.pop();
    }
    lines
}

/// A line number as rows carry it.
pub(crate) fn line_number(path: &std::path::Path, index: usize) -> Result<u32> {
    let line = index as u64 + 1;
    u32::try_from(line).map_err(|_| Error::TooManyLines {
        path: path.to_path_buf(),
        line,
    })
}

fn parse_line(
    ds: &DatasetConfig,
    tasks: &[&TaskConfig],
    src: &SourceFile,
    line: u32,
    text: &str,
) -> std::result::Result<Row, Rejection> {
    let obj: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| (reason::UNPARSEABLE, e.to_string()))?;
    parse_record(ds, tasks, src, line, &obj, text.to_string())
}

/// One record of a keyed format, its fields by column name (a missing key
/// reads as null), into a row. `raw` is what the quarantine shows.
pub(crate) fn parse_record(
    ds: &DatasetConfig,
    tasks: &[&TaskConfig],
    src: &SourceFile,
    line: u32,
    obj: &Map<String, Value>,
    raw: String,
) -> std::result::Result<Row, Rejection> {
    let id = match &ds.id {
        None => format!("{}:{}:{}", ds.name, src.given, line),
        Some(key) => match obj.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            None | Some(Value::Null) => {
                return Err((reason::MISSING_ID, format!("no value for id field `{key}`")));
            }
            Some(Value::String(_)) => {
                return Err((
                    reason::MISSING_ID,
                    format!("id field `{key}` is an empty string"),
                ));
            }
            Some(other) => {
                return Err((
                    reason::MISSING_ID,
                    format!(
                        "id field `{key}` is {}, expected a string or number",
                        kind(other)
                    ),
                ));
            }
        },
    };

    let raw_text = match obj.get(&ds.text) {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err((
                reason::BAD_TEXT,
                format!(
                    "text field `{}` is {}, expected a string",
                    ds.text,
                    kind(other)
                ),
            ));
        }
    };

    let group = match ds.group.as_ref().and_then(|key| obj.get(key)) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };

    let labels = tasks
        .iter()
        .map(|t| read_label(t, obj.get(&t.column)))
        .collect::<std::result::Result<Vec<_>, _>>()?;

    Ok(Row {
        id,
        file: src.index,
        line,
        group,
        raw_words: raw_text.split_whitespace().map(str::to_string).collect(),
        labels,
        raw,
        conllu: None,
    })
}

fn read_label(task: &TaskConfig, value: Option<&Value>) -> std::result::Result<Label, Rejection> {
    let bad = |what: String| {
        (
            reason::BAD_LABEL,
            format!("task `{}` (field `{}`): {what}", task.name, task.column),
        )
    };
    match task.kind {
        TaskKind::Multilabel => return read_multi(task, value).map_err(bad),
        TaskKind::Regression => return read_number(value).map(Label::Number).map_err(bad),
        TaskKind::Classification | TaskKind::Tagging | TaskKind::Spans | TaskKind::Dependency => {}
    }
    if task.kind.is_token_level() {
        return match value {
            None | Some(Value::Null) => Ok(Label::Tokens(None)),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(bad(format!(
                        "tag {i} is {}, expected a string",
                        kind(other)
                    ))),
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(|tags| Label::Tokens(Some(tags))),
            Some(other) => Err(bad(format!("{}, expected an array of tags", kind(other)))),
        };
    }
    match value {
        None | Some(Value::Null) => Ok(Label::Sentence(None)),
        // An empty label is how many exports write "no label".
        Some(Value::String(s)) if s.trim().is_empty() => Ok(Label::Sentence(None)),
        Some(Value::String(s)) => Ok(Label::Sentence(Some(s.trim().to_string()))),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Label::Sentence(Some(v.to_string()))),
        Some(other) => Err(bad(format!("{}, expected a string", kind(other)))),
    }
}

/// A multilabel value: a JSON list, a string holding a JSON list (`[]` is
/// how a CSV cell says "no label applies"), or a string split on the task's
/// `separator`. A blank string is "not labelled", as for classification.
fn read_multi(task: &TaskConfig, value: Option<&Value>) -> std::result::Result<Label, String> {
    let labels = match value {
        None | Some(Value::Null) => return Ok(Label::Multi(None)),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.trim().to_string()),
                Value::Number(n) => Ok(n.to_string()),
                other => Err(format!("label {i} is {}, expected a string", kind(other))),
            })
            .collect::<std::result::Result<Vec<_>, _>>()?,
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Label::Multi(None)),
        Some(Value::String(s)) if s.trim_start().starts_with('[') => {
            let v: Value = serde_json::from_str(s.trim())
                .map_err(|e| format!("`{s}` is not a JSON list of labels: {e}"))?;
            return read_multi(task, Some(&v));
        }
        Some(Value::String(s)) => match &task.separator {
            Some(sep) => s
                .split(sep.as_str())
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect(),
            None => {
                return Err(format!(
                    "`{s}` is a string but the task has no `separator`; give a JSON list or set `separator`"
                ));
            }
        },
        Some(Value::Number(n)) => vec![n.to_string()],
        Some(other) => {
            return Err(format!(
                "{}, expected a list of labels or a string",
                kind(other)
            ));
        }
    };
    if let Some(i) = labels.iter().position(String::is_empty) {
        return Err(format!("label {i} is empty"));
    }
    let mut labels = labels;
    // A set of labels: order and repeats carry no meaning, and equal sets
    // must compare equal for deduplication.
    labels.sort();
    labels.dedup();
    Ok(Label::Multi(Some(labels)))
}

/// A regression target: a JSON number or a numeric string, finite. A blank
/// string is "not labelled".
fn read_number(value: Option<&Value>) -> std::result::Result<Option<f64>, String> {
    let x = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| format!("`{n}` is not representable as a number"))?,
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`{s}` is not a number"))?,
        Some(other) => return Err(format!("{}, expected a number", kind(other))),
    };
    if !x.is_finite() {
        return Err(format!("`{x}` is not a finite number"));
    }
    Ok(Some(x))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::PipelineConfig;

    fn cfg(id: bool) -> PipelineConfig {
        let id = if id { "id = \"id\"\n" } else { "" };
        let text = format!(
            "[pipeline]\nname = \"t\"\n[[datasets]]\nname = \"d\"\nformat = \"jsonl\"\nfiles = {{ all = \"d.jsonl\" }}\n{id}\
             [[tasks]]\nname = \"s\"\ndataset = \"d\"\ncolumn = \"s\"\ntype = \"classification\"\n\
             [[tasks]]\nname = \"ner\"\ndataset = \"d\"\ncolumn = \"ner\"\ntype = \"spans\"\n"
        );
        PipelineConfig::from_toml_str(&text, std::path::Path::new("t.toml")).unwrap()
    }

    fn read(cfg: &PipelineConfig, bytes: &[u8]) -> Parsed {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(&path, bytes).unwrap();
        let ds = &cfg.datasets[0];
        let tasks: Vec<_> = cfg.tasks_of(&ds.name).collect();
        let src = SourceFile {
            index: 0,
            split: None,
            given: "d.jsonl".into(),
            path,
        };
        let mut out = Parsed::default();
        read_jsonl(ds, &tasks, &src, &mut out).unwrap();
        out
    }

    #[test]
    fn lines_are_numbered_from_one_and_blank_lines_skipped() {
        let cfg = cfg(false);
        let p = read(
            &cfg,
            b"\xEF\xBB\xBF{\"text\":\"a b\",\"s\":\"x\"}\r\n\n  \n{\"text\":\"c\",\"s\":1}\n",
        );
        assert_eq!(p.read, 2);
        assert_eq!(p.rows.len(), 2);
        assert_eq!((p.rows[0].line, p.rows[1].line), (1, 4));
        assert_eq!(p.rows[0].id, "d:d.jsonl:1");
        assert_eq!(p.rows[0].raw_words, ["a", "b"]);
        assert_eq!(p.rows[1].labels[0], Label::Sentence(Some("1".into())));
        assert_eq!(p.rows[1].labels[1], Label::Tokens(None));
    }

    #[test]
    fn bad_lines_are_quarantined_with_their_line() {
        let cfg = cfg(true);
        let p = read(
            &cfg,
            b"{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"b\",\"text\":\"x\"\n\xff\xfe\n{\"text\":\"x\"}\n[1]\n\
              {\"id\":7,\"text\":\"x\",\"s\":[\"a\"]}\n{\"id\":8,\"text\":\"x\",\"ner\":[\"O\",3]}\n{\"id\":9,\"text\":5}\n",
        );
        assert_eq!(p.read, 8);
        assert_eq!(p.rows.len(), 1);
        let got: Vec<_> = p.quarantined.iter().map(|q| (q.line, q.reason)).collect();
        assert_eq!(
            got,
            [
                (2, reason::UNPARSEABLE),
                (3, reason::INVALID_UTF8),
                (4, reason::MISSING_ID),
                (5, reason::UNPARSEABLE),
                (6, reason::BAD_LABEL),
                (7, reason::BAD_LABEL),
                (8, reason::BAD_TEXT),
            ]
        );
        assert!(
            p.quarantined[0].detail.contains("EOF"),
            "{}",
            p.quarantined[0].detail
        );
        assert_eq!(p.quarantined[0].raw, "{\"id\":\"b\",\"text\":\"x\"");
        assert!(
            p.quarantined[4].detail.contains("task `s`"),
            "{}",
            p.quarantined[4].detail
        );
        assert!(
            p.quarantined[5].detail.contains("tag 1"),
            "{}",
            p.quarantined[5].detail
        );
    }

    #[test]
    fn empty_sentence_label_is_no_label() {
        let cfg = cfg(false);
        let p = read(
            &cfg,
            b"{\"text\":\"x\",\"s\":\"  \"}\n{\"text\":\"x\",\"s\":\" pos \"}\n",
        );
        assert_eq!(p.rows[0].labels[0], Label::Sentence(None));
        assert_eq!(p.rows[1].labels[0], Label::Sentence(Some("pos".into())));
    }

    fn task(kind: &str, separator: Option<&str>) -> TaskConfig {
        let sep = separator.map_or(String::new(), |s| format!("separator = \"{s}\"\n"));
        let text = format!(
            "[pipeline]\nname = \"t\"\n[[datasets]]\nname = \"d\"\nformat = \"jsonl\"\nfiles = {{ all = \"d.jsonl\" }}\n\
             [[tasks]]\nname = \"k\"\ndataset = \"d\"\ncolumn = \"k\"\ntype = \"{kind}\"\n{sep}"
        );
        let cfg = PipelineConfig::from_toml_str(&text, std::path::Path::new("t.toml")).unwrap();
        cfg.tasks[0].clone()
    }

    fn label(t: &TaskConfig, json: &str) -> std::result::Result<Label, Rejection> {
        let v: Value = serde_json::from_str(json).unwrap();
        read_label(t, Some(&v))
    }

    fn multi(labels: &[&str]) -> Label {
        Label::Multi(Some(labels.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn multilabel_from_lists_and_separated_strings() {
        let t = task("multilabel", Some("|"));
        assert_eq!(
            label(&t, r#"["b", " a", "b"]"#).unwrap(),
            multi(&["a", "b"])
        );
        assert_eq!(label(&t, "[]").unwrap(), multi(&[]), "no label applies");
        assert_eq!(label(&t, "null").unwrap(), Label::Multi(None));
        assert_eq!(read_label(&t, None).unwrap(), Label::Multi(None));
        assert_eq!(label(&t, r#"" c | a ||""#).unwrap(), multi(&["a", "c"]));
        assert_eq!(label(&t, r#""  ""#).unwrap(), Label::Multi(None));
        assert_eq!(
            label(&t, r#""[\"x\", \"y\"]""#).unwrap(),
            multi(&["x", "y"])
        );
        assert_eq!(label(&t, r#""[]""#).unwrap(), multi(&[]));
        for bad in [r#"[1, {}]"#, r#"["a", ""]"#, r#"{"a": 1}"#, r#""[oops""#] {
            let (code, detail) = label(&t, bad).unwrap_err();
            assert_eq!(code, reason::BAD_LABEL, "{bad}");
            assert!(detail.contains("task `k`"), "{detail}");
        }
        let no_sep = task("multilabel", None);
        let (_, detail) = label(&no_sep, r#""a,b""#).unwrap_err();
        assert!(detail.contains("no `separator`"), "{detail}");
        assert_eq!(label(&no_sep, r#"["a"]"#).unwrap(), multi(&["a"]));
    }

    #[test]
    fn regression_from_numbers_and_numeric_strings() {
        let t = task("regression", None);
        assert_eq!(label(&t, "2.5").unwrap(), Label::Number(Some(2.5)));
        assert_eq!(label(&t, "-3").unwrap(), Label::Number(Some(-3.0)));
        assert_eq!(label(&t, r#"" 1e-2 ""#).unwrap(), Label::Number(Some(0.01)));
        assert_eq!(label(&t, r#""""#).unwrap(), Label::Number(None));
        assert_eq!(label(&t, "null").unwrap(), Label::Number(None));
        for (bad, says) in [
            (r#""abc""#, "`abc` is not a number"),
            (r#""NaN""#, "not a finite number"),
            (r#""-inf""#, "not a finite number"),
            ("true", "a boolean, expected a number"),
            ("[1]", "an array"),
        ] {
            let (code, detail) = label(&t, bad).unwrap_err();
            assert_eq!(code, reason::BAD_LABEL);
            assert!(
                detail.contains(says) && detail.contains("task `k` (field `k`)"),
                "{bad}: {detail}"
            );
        }
        assert_eq!(Label::Number(Some(2.5)).to_json(), Value::from(2.5));
        assert_eq!(multi(&["a", "b"]).display(), "[a, b]");
    }
}
