//! The `conllu` format: one row per sentence, its words the FORM column
//! as given (never re-split, so a FORM with a space stays one word), and
//! token tasks reading the column their `column` names. Multiword-token
//! ranges (`3-4`) and empty nodes (`8.1`) are not words and are skipped. A
//! sentence with a malformed word line is quarantined whole: a partial
//! sentence would misalign every tag after the gap.
//!
//! Besides the words, every sentence keeps its annotation in the
//! [`COLUMNS`] (one entry per word, in step with `words`: a CoNLL-U row's
//! token tasks always carry labels, so cleaning never drops a word of a
//! kept row), `# sent_id` as the id, `# text` as `conllu_text` and
//! `# newdoc id` as the group.

use mtl_core::config::{DatasetConfig, TaskConfig};
use polars::prelude::*;

use crate::error::Result;
use crate::read::{self, Label, Parsed, Quarantined, Row, SourceFile};
use crate::reason;

const N_COLUMNS: usize = 10;
const FORM: usize = 1;
const LEMMA: usize = 2;
const UPOS: usize = 3;
const XPOS: usize = 4;
const FEATS: usize = 5;
const HEAD: usize = 6;
const DEPREL: usize = 7;

/// The clean-table columns of a CoNLL-U dataset beyond the common ones:
/// LEMMA, UPOS, XPOS, FEATS (list[str]), HEAD (list[u32], null for `_`),
/// DEPREL (list[str]), and the `# text` comment (str?).
pub const COLUMNS: [&str; 7] = [
    "conllu_lemma",
    "conllu_upos",
    "conllu_xpos",
    "conllu_feats",
    "conllu_head",
    "conllu_deprel",
    "conllu_text",
];

/// A sentence's annotation beyond its words and task labels, one entry per
/// word.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Extra {
    pub lemma: Vec<String>,
    pub upos: Vec<String>,
    pub xpos: Vec<String>,
    pub feats: Vec<String>,
    pub head: Vec<Option<u32>>,
    pub deprel: Vec<String>,
    /// The `# text =` comment.
    pub text: Option<String>,
}

/// The [`COLUMNS`] of `rows`, null where a row is not a CoNLL-U sentence.
pub(crate) fn columns(rows: &[Row]) -> Vec<Column> {
    let n = rows.len();
    let extra = || rows.iter().map(|r| r.conllu.as_deref());
    let strings = |name: &str, field: fn(&Extra) -> &Vec<String>| {
        crate::table::list_column(name, n, extra().map(|e| e.map(field)))
    };
    let mut head = ListPrimitiveChunkedBuilder::<UInt32Type>::new(
        COLUMNS[4].into(),
        n,
        n * 16,
        DataType::UInt32,
    );
    for e in extra() {
        match e {
            Some(e) => head.append_iter(e.head.iter().copied()),
            None => head.append_null(),
        }
    }
    vec![
        strings(COLUMNS[0], |e| &e.lemma),
        strings(COLUMNS[1], |e| &e.upos),
        strings(COLUMNS[2], |e| &e.xpos),
        strings(COLUMNS[3], |e| &e.feats),
        head.finish().into_column(),
        strings(COLUMNS[5], |e| &e.deprel),
        Column::new(
            COLUMNS[6].into(),
            extra()
                .map(|e| e.and_then(|e| e.text.as_deref()))
                .collect::<Vec<Option<&str>>>(),
        ),
    ]
}

/// The CoNLL-U columns a token task can read, by the names tasks use.
pub(crate) const TASK_COLUMNS: [(&str, usize); 6] = [
    ("lemma", 2),
    ("upos", 3),
    ("xpos", 4),
    ("feats", 5),
    ("head", 6),
    ("deprel", 7),
];

/// The field index of a task's `column`, if CoNLL-U has it.
pub(crate) fn column_index(name: &str) -> Option<usize> {
    TASK_COLUMNS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, i)| *i)
}

/// One sentence being read.
#[derive(Default)]
struct Sentence {
    first_line: u32,
    sent_id: Option<String>,
    words: Vec<String>,
    extra: Extra,
    /// Per task, the tags read so far.
    tags: Vec<Vec<String>>,
    /// The first problem: `(line, reason, detail)`.
    bad: Option<(u32, &'static str, String)>,
    /// The line of each word, to name the line of a bad HEAD.
    word_lines: Vec<u32>,
}

impl Sentence {
    fn is_started(&self) -> bool {
        self.first_line > 0
    }

    fn reject(&mut self, line: u32, reason: &'static str, detail: String) {
        if self.bad.is_none() {
            self.bad = Some((line, reason, detail));
        }
    }
}

/// Reads one CoNLL-U file, appending to `out`. Every task of `tasks` is a
/// token task with a known column (checked by the stage).
pub(crate) fn read_conllu(
    ds: &DatasetConfig,
    tasks: &[&TaskConfig],
    src: &SourceFile,
    out: &mut Parsed,
) -> Result<()> {
    let columns: Vec<usize> = tasks
        .iter()
        .map(|t| column_index(&t.column).unwrap_or(FORM))
        .collect();
    let parses = tasks
        .iter()
        .any(|t| t.kind == mtl_core::TaskKind::Dependency);
    let bytes = read::read_bytes(&src.path)?;
    // `# newdoc` applies to its sentence and every later one until the next.
    let mut doc: Option<String> = None;
    let mut sent = Sentence::default();
    for (i, raw) in read::split_lines(&bytes).into_iter().enumerate() {
        let line = read::line_number(&src.path, i)?;
        let utf8 = std::str::from_utf8(raw).err();
        let text = String::from_utf8_lossy(raw);
        if text.trim().is_empty() {
            if sent.is_started() {
                let mut sent = std::mem::take(&mut sent);
                if parses {
                    check_tree(&mut sent);
                }
                finish(ds, src, sent, &doc, out);
            }
            continue;
        }
        if !sent.is_started() {
            sent.first_line = line;
            sent.tags = vec![Vec::new(); tasks.len()];
        }
        if let Some(e) = utf8 {
            sent.reject(line, reason::INVALID_UTF8, format!("line {line}: {e}"));
        }
        if let Some(comment) = text.strip_prefix('#') {
            if let Some(v) = comment_value(comment, "sent_id") {
                sent.sent_id = Some(v.to_string()).filter(|v| !v.is_empty());
            } else if let Some(v) = comment_value(comment, "text") {
                sent.extra.text = Some(v.to_string());
            } else if let Some(v) = comment_value(comment, "newdoc id") {
                doc = Some(v.to_string()).filter(|v| !v.is_empty());
            } else if comment.trim() == "newdoc" {
                doc = None;
            }
            continue;
        }
        let fields: Vec<&str> = text.split('\t').collect();
        if fields.len() != N_COLUMNS {
            sent.reject(
                line,
                reason::UNPARSEABLE,
                format!(
                    "line {line}: expected {N_COLUMNS} tab-separated columns, found {}: `{text}`",
                    fields.len()
                ),
            );
            continue;
        }
        let id = fields[0];
        if id.contains('-') || id.contains('.') {
            continue;
        }
        if id.parse::<u32>().is_err() {
            sent.reject(
                line,
                reason::UNPARSEABLE,
                format!("line {line}: word ID `{id}` is not an integer, a range or an empty node"),
            );
            continue;
        }
        let head = match fields[HEAD] {
            "_" => None,
            h => match h.parse::<u32>() {
                Ok(h) => Some(h),
                Err(_) => {
                    sent.reject(
                        line,
                        reason::UNPARSEABLE,
                        format!("line {line}: HEAD `{h}` is not an integer or `_`"),
                    );
                    continue;
                }
            },
        };
        sent.words.push(fields[FORM].to_string());
        sent.word_lines.push(line);
        let e = &mut sent.extra;
        e.lemma.push(fields[LEMMA].to_string());
        e.upos.push(fields[UPOS].to_string());
        e.xpos.push(fields[XPOS].to_string());
        e.feats.push(fields[FEATS].to_string());
        e.head.push(head);
        e.deprel.push(fields[DEPREL].to_string());
        for (tags, c) in sent.tags.iter_mut().zip(&columns) {
            tags.push(fields[*c].to_string());
        }
    }
    if sent.is_started() {
        if parses {
            check_tree(&mut sent);
        }
        finish(ds, src, sent, &doc, out);
    }
    Ok(())
}

/// Rejects a sentence whose heads are not one tree over its words: a
/// dependency task trains on the tree and eval scores against it, and UD
/// requires exactly one root and no cycle. The line named is the first
/// offending word's.
fn check_tree(sent: &mut Sentence) {
    let heads = &sent.extra.head;
    let n = heads.len();
    let line_of = |w: usize| sent.word_lines.get(w).copied().unwrap_or(sent.first_line);
    let mut bad: Option<(u32, String)> = None;
    for (w, h) in heads.iter().enumerate() {
        let line = line_of(w);
        match h {
            None => {
                bad = Some((
                    line,
                    format!("line {line}: HEAD is `_`, but a dependency task needs every head"),
                ))
            }
            Some(h) if *h as usize > n => {
                bad = Some((
                    line,
                    format!("line {line}: HEAD {h} points outside the sentence's {n} words"),
                ))
            }
            Some(h) if *h as usize == w + 1 => {
                bad = Some((line, format!("line {line}: word {} is its own HEAD", w + 1)))
            }
            _ => continue,
        }
        break;
    }
    if bad.is_none() {
        let roots: Vec<usize> = (0..n).filter(|&w| heads[w] == Some(0)).collect();
        if roots.len() != 1 {
            let line = roots.get(1).map_or(sent.first_line, |&w| line_of(w));
            bad = Some((
                line,
                format!(
                    "line {line}: {} words have HEAD 0; a tree has exactly one root",
                    roots.len()
                ),
            ));
        }
    }
    if bad.is_none() {
        // Every word must reach the root within n steps, or it sits on a
        // cycle.
        for start in 0..n {
            let mut w = start;
            let mut steps = 0;
            while let Some(Some(h)) = heads.get(w).copied().map(|h| h.filter(|&h| h != 0)) {
                w = h as usize - 1;
                steps += 1;
                if steps > n {
                    let line = line_of(start);
                    bad = Some((
                        line,
                        format!("line {line}: word {} is on a HEAD cycle", start + 1),
                    ));
                    break;
                }
            }
            if bad.is_some() {
                break;
            }
        }
    }
    if let Some((line, detail)) = bad {
        sent.reject(line, reason::BAD_TREE, detail);
    }
}

/// `value` of `# key = value` (spaces around `=` optional).
fn comment_value<'a>(comment: &'a str, key: &str) -> Option<&'a str> {
    let rest = comment.trim_start().strip_prefix(key)?;
    Some(rest.trim_start().strip_prefix('=')?.trim())
}

fn finish(
    ds: &DatasetConfig,
    src: &SourceFile,
    sent: Sentence,
    doc: &Option<String>,
    out: &mut Parsed,
) {
    out.read += 1;
    let raw = sent
        .extra
        .text
        .clone()
        .unwrap_or_else(|| sent.words.join(" "));
    if let Some((line, reason, detail)) = sent.bad {
        out.quarantined.push(Quarantined {
            file: src.index,
            line,
            reason,
            detail,
            raw,
        });
        return;
    }
    out.rows.push(Row {
        id: sent
            .sent_id
            .unwrap_or_else(|| format!("{}:{}:{}", ds.name, src.given, sent.first_line)),
        file: src.index,
        line: sent.first_line,
        group: doc.clone(),
        raw_words: sent.words,
        labels: sent
            .tags
            .into_iter()
            .map(|t| Label::Tokens(Some(t)))
            .collect(),
        raw,
        conllu: Some(Box::new(sent.extra)),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::PipelineConfig;

    fn cfg() -> PipelineConfig {
        let mut text =
            "[pipeline]\nname = \"t\"\n[[datasets]]\nname = \"ud\"\nformat = \"conllu\"\n\
                        files = { train = \"t.conllu\" }\n"
                .to_string();
        for (name, column) in [("upos", "upos"), ("ufeats", "feats"), ("head", "head")] {
            text.push_str(&format!(
                "[[tasks]]\nname = \"{name}\"\ndataset = \"ud\"\ncolumn = \"{column}\"\ntype = \"tagging\"\n"
            ));
        }
        PipelineConfig::from_toml_str(&text, std::path::Path::new("t.toml")).unwrap()
    }

    fn read(bytes: &str) -> Parsed {
        read_with(bytes, cfg())
    }

    fn read_with(bytes: &str, cfg: PipelineConfig) -> Parsed {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.conllu");
        std::fs::write(&path, bytes).unwrap();
        let ds = &cfg.datasets[0];
        let tasks: Vec<_> = cfg.tasks_of(&ds.name).collect();
        let src = SourceFile {
            index: 0,
            split: Some("train"),
            given: "t.conllu".into(),
            path,
        };
        let mut out = Parsed::default();
        read_conllu(ds, &tasks, &src, &mut out).unwrap();
        out
    }

    fn word(id: &str, form: &str, upos: &str, feats: &str, head: &str) -> String {
        format!("{id}\t{form}\t{form}\t{upos}\t_\t{feats}\t{head}\tdep\t_\t_\n")
    }

    #[test]
    fn sentences_become_rows_with_given_words_and_column_tags() {
        let mut f = String::from("# newdoc id = doc1\n# sent_id = s1\n# text = New York's great\n");
        f += &word("1-2", "New York's", "_", "_", "_");
        f += &word("1", "New York", "PROPN", "Number=Sing", "3");
        f += &word("2", "'s", "PART", "_", "1");
        f += &word("3", "great", "ADJ", "Degree=Pos", "0");
        f += &word("3.1", "is", "AUX", "_", "_");
        f += "\n# sent_id = s2\n";
        f += &word("1", "Hi", "INTJ", "_", "0");
        f += "\n\n# newdoc id = doc2\n# sent_id = s3\n# text = Bye\n";
        // The last sentence has no trailing blank line, nor a newline.
        f += word("1", "Bye", "INTJ", "_", "0").trim_end();
        let p = read(&f);
        assert_eq!(p.read, 3);
        assert!(p.quarantined.is_empty());
        let r = &p.rows[0];
        assert_eq!(r.id, "s1");
        assert_eq!((r.line, r.group.as_deref()), (1, Some("doc1")));
        assert_eq!(r.raw_words, ["New York", "'s", "great"]);
        assert_eq!(r.raw, "New York's great");
        assert_eq!(
            r.labels,
            [
                Label::Tokens(Some(vec!["PROPN".into(), "PART".into(), "ADJ".into()])),
                Label::Tokens(Some(vec![
                    "Number=Sing".into(),
                    "_".into(),
                    "Degree=Pos".into()
                ])),
                Label::Tokens(Some(vec!["3".into(), "1".into(), "0".into()])),
            ]
        );
        let e = r.conllu.as_deref().unwrap();
        assert_eq!(e.upos, ["PROPN", "PART", "ADJ"]);
        assert_eq!(e.lemma, ["New York", "'s", "great"]);
        assert_eq!(e.xpos, ["_", "_", "_"]);
        assert_eq!(e.feats, ["Number=Sing", "_", "Degree=Pos"]);
        assert_eq!(e.head, [Some(3), Some(1), Some(0)]);
        assert_eq!(e.deprel, ["dep", "dep", "dep"]);
        assert_eq!(e.text.as_deref(), Some("New York's great"));
        let r = &p.rows[1];
        assert_eq!((r.id.as_str(), r.line), ("s2", 10));
        assert_eq!(r.conllu.as_deref().unwrap().text, None);
        assert_eq!(
            r.group.as_deref(),
            Some("doc1"),
            "newdoc is carried forward"
        );
        assert_eq!(r.raw, "Hi", "no # text: the words joined");
        let r = &p.rows[2];
        assert_eq!((r.id.as_str(), r.line), ("s3", 14));
        assert_eq!(r.group.as_deref(), Some("doc2"));
        assert_eq!(r.raw_words, ["Bye"]);
    }

    #[test]
    fn a_parsed_sentence_that_is_not_one_tree_is_quarantined_with_its_line() {
        let parser = PipelineConfig::from_toml_str(
            "[pipeline]\nname = \"t\"\n[[datasets]]\nname = \"ud\"\nformat = \"conllu\"\n\
             files = { train = \"t.conllu\" }\n[[tasks]]\nname = \"deps\"\ndataset = \"ud\"\n\
             column = \"deprel\"\ntype = \"dependency\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let sentence = |heads: &[&str]| {
            let mut f = String::new();
            for (i, h) in heads.iter().enumerate() {
                f += &word(&(i + 1).to_string(), "w", "X", "_", h);
            }
            f + "\n"
        };
        // Line numbers: each sentence is its words plus a blank line.
        let f = [
            sentence(&["2", "0", "2"]), // a tree: kept
            sentence(&["0", "5"]),      // line 6: HEAD outside
            sentence(&["2", "1"]),      // line 8: no root
            sentence(&["0", "0"]),      // line 12: a second root
            sentence(&["0", "3", "2"]), // line 15: 2 <-> 3 cycle
            sentence(&["0", "_"]),      // line 19: `_`
        ]
        .concat();
        let p = read_with(&f, parser);
        assert_eq!((p.read, p.rows.len()), (6, 1));
        let q: Vec<_> = p.quarantined.iter().map(|q| (q.line, q.reason)).collect();
        assert_eq!(
            q,
            [
                (6, reason::BAD_TREE),
                (8, reason::BAD_TREE),
                (12, reason::BAD_TREE),
                (15, reason::BAD_TREE),
                (19, reason::BAD_TREE),
            ]
        );
        let details: Vec<&str> = p.quarantined.iter().map(|q| q.detail.as_str()).collect();
        assert!(details[0].contains("outside"), "{details:?}");
        assert!(details[1].contains("0 words have HEAD 0"), "{details:?}");
        assert!(details[2].contains("2 words have HEAD 0"), "{details:?}");
        assert!(details[3].contains("cycle"), "{details:?}");
        assert!(details[4].contains("`_`"), "{details:?}");
        // Taggers do not need the tree: the same file is kept whole.
        assert_eq!(read(&f).rows.len(), 6);
    }

    #[test]
    fn a_malformed_word_line_quarantines_its_sentence() {
        let mut f = String::from("# sent_id = a\n");
        f += &word("1", "One", "NUM", "_", "0");
        f += "2\tbroken\tline\n";
        f += &word("3", "x", "X", "_", "1");
        f += "\n";
        f += &word("1", "Two", "NUM", "_", "0");
        f += "\n# sent_id = c\n";
        f += &word("x", "Bad", "X", "_", "0");
        f += "\n";
        f += &word("1", "Headless", "X", "_", "_");
        f += &word("2", "Bad", "X", "_", "root");
        let p = read(&f);
        assert_eq!(p.read, 4);
        assert_eq!(p.rows.len(), 1);
        assert_eq!(
            p.rows[0].id, "ud:t.conllu:6",
            "no sent_id: dataset:file:line"
        );
        let q: Vec<_> = p.quarantined.iter().map(|q| (q.line, q.reason)).collect();
        assert_eq!(
            q,
            [
                (3, reason::UNPARSEABLE),
                (9, reason::UNPARSEABLE),
                (12, reason::UNPARSEABLE)
            ]
        );
        assert!(
            p.quarantined[2].detail.contains("HEAD `root`"),
            "{}",
            p.quarantined[2].detail
        );
        assert!(
            p.quarantined[0].detail.contains("found 3"),
            "{}",
            p.quarantined[0].detail
        );
        assert_eq!(p.quarantined[0].raw, "One x");
        assert!(p.quarantined[1].detail.contains("`x`"));
    }

    #[test]
    fn comment_values() {
        assert_eq!(comment_value(" sent_id = a-1", "sent_id"), Some("a-1"));
        assert_eq!(comment_value("sent_id=b", "sent_id"), Some("b"));
        assert_eq!(comment_value(" text = a = b ", "text"), Some("a = b"));
        assert_eq!(comment_value(" text_en = x", "text"), None);
        assert_eq!(comment_value(" newdoc id = d", "newdoc id"), Some("d"));
    }
}
