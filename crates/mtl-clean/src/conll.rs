//! The `conll` format: CoNLL-2000/2003-style column files. One word per
//! line, its fields named by the dataset's `columns` (`text` names the word
//! column, each task's `column` its tags), separated by the `delimiter` or,
//! without one, by any run of spaces and tabs. Blank lines end sentences;
//! a `-DOCSTART-` line is no row but starts a document, and the sentences
//! after it get the group `doc-<n>` (the n-th document of the file). The
//! last sentence needs no trailing blank line or newline.
//!
//! A line with the wrong number of fields quarantines its whole sentence
//! (`wrong_field_count`, with the line): a partial sentence would misalign
//! every tag after the gap.

use mtl_core::config::{DatasetConfig, TaskConfig};

use crate::error::Result;
use crate::read::{self, Label, Parsed, Quarantined, Row, SourceFile};
use crate::reason;

const DOCSTART: &str = "-DOCSTART-";

#[derive(Default)]
struct Sentence {
    first_line: u32,
    lines: Vec<String>,
    words: Vec<String>,
    /// Per task, the tags read so far.
    tags: Vec<Vec<String>>,
    /// The first problem: `(line, reason, detail)`.
    bad: Option<(u32, &'static str, String)>,
}

impl Sentence {
    fn is_started(&self) -> bool {
        self.first_line > 0
    }
}

/// Reads one column file, appending to `out`. The stage has checked that
/// `text` and every task's `column` are among the dataset's `columns`.
pub(crate) fn read_conll(
    ds: &DatasetConfig,
    tasks: &[&TaskConfig],
    src: &SourceFile,
    out: &mut Parsed,
) -> Result<()> {
    let index = |name: &str| ds.columns.iter().position(|c| c == name).unwrap_or(0);
    let word = index(&ds.text);
    let columns: Vec<usize> = tasks.iter().map(|t| index(&t.column)).collect();
    let n_fields = ds.columns.len();
    let delim = ds.delimiter.as_deref().and_then(|d| d.chars().next());
    let bytes = read::read_bytes(&src.path)?;
    let mut docs = 0u32;
    let mut group: Option<String> = None;
    let mut sent = Sentence::default();
    for (i, raw) in read::split_lines(&bytes).into_iter().enumerate() {
        let line = read::line_number(&src.path, i)?;
        let text = String::from_utf8_lossy(raw);
        if text.trim().is_empty() {
            if sent.is_started() {
                finish(ds, src, std::mem::take(&mut sent), &group, out);
            }
            continue;
        }
        let fields: Vec<&str> = match delim {
            Some(d) => text.split(d).map(str::trim).collect(),
            None => text.split_whitespace().collect(),
        };
        if fields.first() == Some(&DOCSTART) {
            if sent.is_started() {
                finish(ds, src, std::mem::take(&mut sent), &group, out);
            }
            docs += 1;
            group = Some(format!("doc-{docs}"));
            continue;
        }
        if !sent.is_started() {
            sent.first_line = line;
            sent.tags = vec![Vec::new(); tasks.len()];
        }
        sent.lines.push(text.to_string());
        if sent.bad.is_some() {
            continue;
        }
        if let Err(e) = std::str::from_utf8(raw) {
            sent.bad = Some((line, reason::INVALID_UTF8, format!("line {line}: {e}")));
            continue;
        }
        if fields.len() != n_fields {
            sent.bad = Some((
                line,
                reason::WRONG_FIELD_COUNT,
                format!(
                    "line {line}: expected {n_fields} fields ({}), found {}: `{text}`",
                    ds.columns.join(", "),
                    fields.len()
                ),
            ));
            continue;
        }
        sent.words.push(fields[word].to_string());
        for (tags, c) in sent.tags.iter_mut().zip(&columns) {
            tags.push(fields[*c].to_string());
        }
    }
    if sent.is_started() {
        finish(ds, src, sent, &group, out);
    }
    Ok(())
}

fn finish(
    ds: &DatasetConfig,
    src: &SourceFile,
    sent: Sentence,
    group: &Option<String>,
    out: &mut Parsed,
) {
    out.read += 1;
    if let Some((line, reason, detail)) = sent.bad {
        out.quarantined.push(Quarantined {
            file: src.index,
            line,
            reason,
            detail,
            raw: sent.lines.join("\n"),
        });
        return;
    }
    out.rows.push(Row {
        id: format!("{}:{}:{}", ds.name, src.given, sent.first_line),
        file: src.index,
        line: sent.first_line,
        group: group.clone(),
        raw: sent.words.join(" "),
        raw_words: sent.words,
        labels: sent
            .tags
            .into_iter()
            .map(|t| Label::Tokens(Some(t)))
            .collect(),
        conllu: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::PipelineConfig;

    fn read(extra: &str, bytes: &[u8]) -> Parsed {
        let text = format!(
            "[pipeline]\nname = \"t\"\n[[datasets]]\nname = \"c\"\nformat = \"conll\"\n\
             files = {{ train = \"t.txt\" }}\ntext = \"word\"\n\
             columns = [\"word\", \"pos\", \"chunk\", \"ner\"]\n{extra}\n\
             [[tasks]]\nname = \"ner\"\ndataset = \"c\"\ncolumn = \"ner\"\ntype = \"spans\"\n\
             [[tasks]]\nname = \"pos\"\ndataset = \"c\"\ncolumn = \"pos\"\ntype = \"tagging\"\n"
        );
        let cfg = PipelineConfig::from_toml_str(&text, std::path::Path::new("t.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(&path, bytes).unwrap();
        let ds = &cfg.datasets[0];
        let tasks: Vec<_> = cfg.tasks_of(&ds.name).collect();
        let src = SourceFile {
            index: 0,
            split: Some("train"),
            given: "t.txt".into(),
            path,
        };
        let mut out = Parsed::default();
        read_conll(ds, &tasks, &src, &mut out).unwrap();
        out
    }

    fn tags(t: &[&str]) -> Label {
        Label::Tokens(Some(t.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn sentences_documents_and_a_missing_final_newline() {
        let f = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\
                 Peter NNP B-NP B-PER\n-DOCSTART- -X- -X- O\n\n\
                 Bad NN\nline NN B-NP O\n\nLast  JJ\tB-NP  O";
        let p = read("", f.as_bytes());
        assert_eq!(p.read, 4, "DOCSTART lines are not rows");
        assert_eq!(p.rows.len(), 3);
        let r = &p.rows[0];
        assert_eq!((r.id.as_str(), r.line), ("c:t.txt:3", 3));
        assert_eq!(r.group.as_deref(), Some("doc-1"));
        assert_eq!(r.raw_words, ["EU", "rejects"]);
        assert_eq!(r.labels, [tags(&["B-ORG", "O"]), tags(&["NNP", "VBZ"])]);
        assert_eq!(r.raw, "EU rejects");
        assert_eq!(
            (p.rows[1].line, p.rows[1].group.as_deref()),
            (6, Some("doc-1"))
        );
        let last = &p.rows[2];
        assert_eq!((last.line, last.group.as_deref()), (12, Some("doc-2")));
        assert_eq!(last.raw_words, ["Last"]);
        assert_eq!(last.labels, [tags(&["O"]), tags(&["JJ"])]);
        let q = &p.quarantined[0];
        assert_eq!((q.line, q.reason), (9, reason::WRONG_FIELD_COUNT));
        assert!(
            q.detail.contains("expected 4 fields") && q.detail.contains("found 2"),
            "{}",
            q.detail
        );
        assert_eq!(q.raw, "Bad NN\nline NN B-NP O");
    }

    #[test]
    fn an_explicit_delimiter_splits_on_it_alone() {
        let p = read(
            "delimiter = \"\\t\"",
            b"New York\tNNP\tB-NP\tB-LOC\nis VBZ B-VP O\n",
        );
        assert_eq!(p.read, 1);
        assert_eq!(p.quarantined[0].line, 2, "spaces do not separate fields");
        let p = read("delimiter = \"\\t\"", b"New York\tNNP\tB-NP\tB-LOC\r\n");
        assert_eq!(p.rows[0].raw_words, ["New York"]);
        assert_eq!(p.rows[0].group, None);
    }
}
