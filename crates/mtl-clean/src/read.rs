//! Reading raw dataset files into parsed rows. A line that cannot become a
//! row (bad bytes, bad JSON, no id, a label of the wrong type) is
//! quarantined here with its file and line; nothing is cleaned yet.

use std::io::BufRead;
use std::path::PathBuf;

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

/// A task's label as read, before any cleaning.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Label {
    Sentence(Option<String>),
    Tokens(Option<Vec<String>>),
}

impl Label {
    pub fn is_present(&self) -> bool {
        match self {
            Label::Sentence(l) => l.is_some(),
            Label::Tokens(l) => l.is_some(),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Label::Sentence(Some(s)) => Value::from(s.as_str()),
            Label::Tokens(Some(t)) => Value::from(t.clone()),
            Label::Sentence(None) | Label::Tokens(None) => Value::Null,
        }
    }

    /// Short form for messages: the label, the tags joined by spaces, or `null`.
    pub fn display(&self) -> String {
        match self {
            Label::Sentence(Some(s)) => format!("`{s}`"),
            Label::Tokens(Some(t)) => format!("`{}`", t.join(" ")),
            Label::Sentence(None) | Label::Tokens(None) => "null".into(),
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

/// Reads one JSON Lines file, appending to `out`.
pub(crate) fn read_jsonl(
    ds: &DatasetConfig,
    tasks: &[&TaskConfig],
    src: &SourceFile,
    out: &mut Parsed,
) -> Result<()> {
    let io_err = |source| Error::Io {
        path: src.path.clone(),
        source,
    };
    let file = std::fs::File::open(&src.path).map_err(io_err)?;
    let mut reader = std::io::BufReader::new(file);
    let mut buf = Vec::new();
    let mut line_no: u64 = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io_err)? == 0 {
            break;
        }
        line_no += 1;
        let line = u32::try_from(line_no).map_err(|_| Error::TooManyLines {
            path: src.path.clone(),
            line: line_no,
        })?;
        let mut bytes = buf.as_slice();
        if line_no == 1 {
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
    Ok(())
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
        raw: text.to_string(),
    })
}

fn read_label(task: &TaskConfig, value: Option<&Value>) -> std::result::Result<Label, Rejection> {
    let bad = |what: String| {
        (
            reason::BAD_LABEL,
            format!("task `{}` (field `{}`): {what}", task.name, task.column),
        )
    };
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
}
