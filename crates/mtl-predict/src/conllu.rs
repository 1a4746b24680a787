//! CoNLL-U output: one sentence block per input text, for treebank models.
//!
//! ```text
//! # sent_id = r7
//! # text = I don't know, really.
//! 1    I       _  PRON   PRP  Case=Nom|Number=Sing|Person=1|PronType=Prs  _  _  _  _
//! 2-3  don't   _  _      _    _                                           _  _  _  _
//! 2    do      _  AUX    VBP  Mood=Ind|Number=Sing|Person=1|Tense=Pres|…  _  _  _  _
//! 3    n't     _  PART   RB   Polarity=Neg                                _  _  _  _
//! 4    know    _  VERB   VB   VerbForm=Inf                                _  _  _  SpaceAfter=No
//! 5    ,       _  PUNCT  ,    _                                           _  _  _  _
//! 6    really  _  ADV    RB   _                                           _  _  _  SpaceAfter=No
//! 7    .       _  PUNCT  .    _                                           _  _  _  _
//!
//! ```
//!
//! (fields separated by one tab, aligned here for reading)
//!
//! - `# sent_id` is the input's id column, when one is given; `# text` is
//!   the raw text, its line breaks and other whitespace written as spaces.
//! - FORM is the word as written in the text (the slice its offsets point
//!   at); the JSON output's `words` are the cleaned forms the model read,
//!   which differ only where cleaning changed something (an entity such as
//!   `&amp;`, lower-casing). LEMMA, DEPS are `_`: no task predicts them.
//! - UPOS, XPOS and FEATS come from the tagging tasks that learned those
//!   columns ([`Columns`]), HEAD and DEPREL from a dependency task's tree;
//!   `_` where the bundle has no such task, or for a word truncation cut
//!   off.
//! - A multiword token (`don't`, [`crate::segment`]) gets its range line
//!   before its words. MISC says `SpaceAfter=No` on a word (or a range
//!   line, for its last word) that the next word follows without
//!   whitespace in the raw text.
//!
//! A text without words (nothing but markup) has no block: CoNLL-U cannot
//! hold an empty sentence.

use mtl_core::TaskKind;
use mtl_model::Bundle;
use serde_json::Value;

use crate::Predicted;

/// The tasks that fill CoNLL-U's annotation columns.
///
/// The bundle does not record which column of its training data a task
/// learned, so the tagging tasks are found by name, as the shipped
/// treebank pipelines name them: `upos`, `xpos`, and `ufeats` or `feats`.
/// HEAD and DEPREL come from the bundle's dependency task, of whatever
/// name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    pub upos: Option<String>,
    pub xpos: Option<String>,
    pub feats: Option<String>,
    pub tree: Option<String>,
}

impl Columns {
    pub fn of(bundle: &Bundle) -> Columns {
        let tagging = |names: &[&str]| {
            names
                .iter()
                .find(|n| {
                    bundle
                        .spec
                        .head(n)
                        .is_some_and(|h| h.kind == TaskKind::Tagging)
                })
                .map(|n| n.to_string())
        };
        Columns {
            upos: tagging(&["upos"]),
            xpos: tagging(&["xpos"]),
            feats: tagging(&["ufeats", "feats"]),
            tree: bundle
                .spec
                .tasks
                .iter()
                .find(|h| h.kind == TaskKind::Dependency)
                .map(|h| h.name.clone()),
        }
    }
}

/// A CoNLL-U field: `_` for nothing, and no tab or line break, which
/// would break the line into other fields.
fn field(s: &str) -> String {
    if s.is_empty() {
        return "_".into();
    }
    s.chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect()
}

/// A comment's value on one line: whitespace runs as one space.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Task `task`'s tag of every word, `_` where there is none.
fn tags(value: &Value, task: Option<&String>, n: usize) -> Vec<String> {
    let tags = task.and_then(|t| value[t.as_str()]["tags"].as_array());
    (0..n)
        .map(|k| {
            tags.and_then(|t| t.get(k))
                .and_then(Value::as_str)
                .map_or_else(|| "_".into(), field)
        })
        .collect()
}

/// HEAD and DEPREL of every word from the dependency task's tree (its
/// `heads`, CoNLL-U word numbers with 0 for the root, and `deprels`);
/// `_` for both without a dependency task, and for a word without a head
/// or whose head is no word of the sentence.
fn tree(value: &Value, task: Option<&String>, n: usize) -> Vec<(String, String)> {
    let out = task.map(|t| &value[t.as_str()]);
    let heads = out.and_then(|o| o["heads"].as_array());
    let rels = out.and_then(|o| o["deprels"].as_array());
    (0..n)
        .map(|k| {
            let head = heads
                .and_then(|h| h.get(k))
                .and_then(Value::as_u64)
                .filter(|&h| h as usize <= n);
            let rel = rels.and_then(|r| r.get(k)).and_then(Value::as_str);
            match (head, rel) {
                (Some(h), Some(r)) => (h.to_string(), field(r)),
                _ => ("_".into(), "_".into()),
            }
        })
        .collect()
}

/// The sentence block of one predicted text (see the module docs), its
/// blank line included; `None` when the text has no words.
pub fn sentence(
    text: &str,
    sent_id: Option<&str>,
    p: &Predicted,
    columns: &Columns,
) -> Option<String> {
    let n = p.offsets.len();
    if n == 0 {
        return None;
    }
    // Character offsets to bytes, one entry past the end.
    let bytes: Vec<usize> = text
        .char_indices()
        .map(|(b, _)| b)
        .chain([text.len()])
        .collect();
    let slice = |start: usize, end: usize| -> Option<&str> {
        text.get(*bytes.get(start)?..*bytes.get(end)?)
    };
    let cleaned = p.value["words"].as_array();
    let form = |k: usize| {
        let (s, e) = p.offsets[k];
        let cleaned = || {
            cleaned
                .and_then(|w| w.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        field(slice(s, e).unwrap_or_else(cleaned))
    };
    // Whether word `k` is followed by word `k + 1` with no whitespace
    // between them in the raw text.
    let glued = |k: usize| {
        k + 1 < n
            && slice(p.offsets[k].1, p.offsets[k + 1].0)
                .is_some_and(|gap| !gap.contains(char::is_whitespace))
    };
    let misc = |k: usize| if glued(k) { "SpaceAfter=No" } else { "_" };
    let upos = tags(&p.value, columns.upos.as_ref(), n);
    let xpos = tags(&p.value, columns.xpos.as_ref(), n);
    let feats = tags(&p.value, columns.feats.as_ref(), n);
    let tree = tree(&p.value, columns.tree.as_ref(), n);

    let mut out = String::new();
    if let Some(id) = sent_id {
        out.push_str(&format!("# sent_id = {}\n", field(&one_line(id))));
    }
    out.push_str(&format!("# text = {}\n", one_line(text)));
    let mut k = 0;
    while k < n {
        // The words of one surface token: `k..last + 1`.
        let mut last = k;
        while last + 1 < n && p.tokens.get(last + 1) == p.tokens.get(k) {
            last += 1;
        }
        if last > k {
            let surface = slice(p.offsets[k].0, p.offsets[last].1)
                .map_or_else(|| (k..=last).map(form).collect(), field);
            out.push_str(&format!(
                "{}-{}\t{surface}\t_\t_\t_\t_\t_\t_\t_\t{}\n",
                k + 1,
                last + 1,
                misc(last)
            ));
        }
        for w in k..=last {
            let (head, deprel) = &tree[w];
            // Inside a multiword token, spacing belongs to its range line.
            let misc = if last > k { "_" } else { misc(w) };
            out.push_str(&format!(
                "{}\t{}\t_\t{}\t{}\t{}\t{head}\t{deprel}\t_\t{misc}\n",
                w + 1,
                form(w),
                upos[w],
                xpos[w],
                feats[w],
            ));
        }
        k = last + 1;
    }
    out.push('\n');
    Some(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::words::{Segmentation, clean_with_offsets};

    /// A prediction for `text` as predict makes it: the words and offsets
    /// of its segmentation, and the given task outputs.
    fn predicted(text: &str, segmentation: Segmentation, tasks: Value) -> Predicted {
        let c = clean_with_offsets(
            &[text.to_string()],
            &mtl_core::config::CleanOptions::default(),
            segmentation,
        )
        .unwrap();
        let mut value = json!({"text": text, "words": c.words[0]});
        if let (Value::Object(v), Value::Object(t)) = (&mut value, tasks) {
            v.extend(t);
        }
        Predicted {
            value,
            offsets: c.offsets[0].clone(),
            tokens: c.tokens[0].clone(),
        }
    }

    fn columns() -> Columns {
        Columns {
            upos: Some("upos".into()),
            xpos: None,
            feats: Some("ufeats".into()),
            tree: Some("deps".into()),
        }
    }

    /// The word lines' fields, range lines included.
    fn rows(block: &str) -> Vec<Vec<String>> {
        block
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.split('\t').map(String::from).collect())
            .collect()
    }

    #[test]
    fn a_block_has_ten_columns_ids_in_order_and_a_blank_line() {
        let text = "I don't know,  really.\n";
        let tasks = json!({
            "upos": {"tags": ["PRON", "AUX", "PART", "VERB", "PUNCT", "ADV", "PUNCT"]},
            "ufeats": {"tags": ["Case=Nom", "_", "Polarity=Neg", null, "_", "_", "_"]},
        });
        let p = predicted(text, Segmentation::Ud, tasks);
        let block = sentence(text, Some("doc 1\tx"), &p, &columns()).unwrap();
        assert!(block.ends_with("_\n\n"), "{block}");
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines[0], "# sent_id = doc_1_x");
        assert_eq!(lines[1], "# text = I don't know, really.");
        let rows = rows(&block);
        assert!(rows.iter().all(|r| r.len() == 10), "{block}");
        let ids: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
        assert_eq!(ids, ["1", "2-3", "2", "3", "4", "5", "6", "7"]);
        let forms: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(
            forms,
            ["I", "don't", "do", "n't", "know", ",", "really", "."]
        );
        assert_eq!(rows[3][3], "PART");
        assert_eq!(rows[3][5], "Polarity=Neg");
        // No XPOS task, a word without a tag, no lemma: `_`.
        assert_eq!(rows[3][4], "_");
        assert_eq!(rows[4][5], "_");
        assert!(rows.iter().all(|r| r[2] == "_" && r[8] == "_"));
        // The range line carries no annotation.
        assert!(rows[1][2..9].iter().all(|f| f == "_"));
    }

    #[test]
    fn space_after_no_marks_words_glued_to_the_next() {
        let text = "Hi,you (there)!  Don't.";
        let p = predicted(text, Segmentation::Ud, json!({}));
        let block = sentence(text, None, &p, &columns()).unwrap();
        assert!(!block.contains("# sent_id"), "{block}");
        let got: Vec<(String, String)> = rows(&block)
            .into_iter()
            .map(|r| (r[1].clone(), r[9].clone()))
            .collect();
        let want = [
            ("Hi", "SpaceAfter=No"),
            (",", "SpaceAfter=No"),
            ("you", "_"),
            ("(", "SpaceAfter=No"),
            ("there", "SpaceAfter=No"),
            (")", "SpaceAfter=No"),
            ("!", "_"),
            ("Don't", "SpaceAfter=No"),
            ("Do", "_"),
            ("n't", "_"),
            (".", "_"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(f, m)| (f.to_string(), m.to_string()))
            .collect();
        assert_eq!(got, want);
        // Detokenizing by SpaceAfter gives the text back, its whitespace
        // runs as one space.
        let mut detok = String::new();
        let mut inside = 0;
        for r in rows(&block) {
            let id: Vec<usize> = r[0].split('-').map(|x| x.parse().unwrap()).collect();
            if id[0] <= inside {
                continue;
            }
            inside = *id.last().unwrap();
            detok.push_str(&r[1]);
            if r[9] != "SpaceAfter=No" {
                detok.push(' ');
            }
        }
        assert_eq!(detok.trim_end(), "Hi,you (there)! Don't.");
    }

    #[test]
    fn whitespace_words_have_no_multiword_tokens() {
        let text = "don't stop , now";
        let p = predicted(text, Segmentation::Whitespace, json!({}));
        let rows = rows(&sentence(text, None, &p, &columns()).unwrap());
        let forms: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
        assert_eq!(forms, ["don't", "stop", ",", "now"]);
        assert!(rows.iter().all(|r| r[9] == "_" && !r[0].contains('-')));
    }

    #[test]
    fn heads_and_relations_come_from_the_dependency_task() {
        let text = "Dogs bark.";
        let deps = json!({"deps": {
            "heads": [2, 0, 9],
            "deprels": ["nsubj", "root", "punct"],
            "probs": [0.9, 0.9, 0.9],
        }});
        let p = predicted(text, Segmentation::Ud, deps);
        let got = rows(&sentence(text, None, &p, &columns()).unwrap());
        let tree: Vec<(&str, &str)> = got.iter().map(|r| (r[6].as_str(), r[7].as_str())).collect();
        // Head 9 points outside the sentence: not written.
        assert_eq!(tree, [("2", "nsubj"), ("0", "root"), ("_", "_")]);
        // Without a dependency task both columns stay `_`.
        let none = Columns {
            tree: None,
            ..columns()
        };
        let got = rows(&sentence(text, None, &p, &none).unwrap());
        assert!(got.iter().all(|r| r[6] == "_" && r[7] == "_"));
    }

    #[test]
    fn forms_are_the_raw_text_and_empty_texts_have_no_block() {
        let text = "AT&amp;T <b>rocks</b>\n";
        let p = predicted(text, Segmentation::Ud, json!({}));
        assert_eq!(p.value["words"], json!(["AT&T", "rocks"]));
        let block = sentence(text, None, &p, &columns()).unwrap();
        let forms: Vec<String> = rows(&block).into_iter().map(|r| r[1].clone()).collect();
        assert_eq!(forms, ["AT&amp;T", "rocks"]);
        assert!(
            block.starts_with("# text = AT&amp;T <b>rocks</b>\n"),
            "{block}"
        );
        let empty = predicted("<br/>", Segmentation::Ud, json!({}));
        assert_eq!(sentence("<br/>", None, &empty, &columns()), None);
    }
}
