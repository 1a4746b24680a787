//! Which segmentation a bundle's raw texts get: the `--segment` option and
//! what `auto` picks.
//!
//! A model trained on CoNLL-U learned from the treebank's words, which split
//! punctuation and clitics off (`days` `,`, `do` `n't`); cut at whitespace,
//! raw text would give it words it never saw (`days,`). The bundle does not
//! record its datasets' formats, so `auto` reads the signs the bundle does
//! carry: a dependency task (the config only accepts one over a `conllu`
//! dataset), or a tagging task whose labels are all UD's universal POS
//! tags or all Penn Treebank tags (the UPOS and XPOS columns of a
//! treebank). Anything else keeps whitespace, as the clean stage splits
//! JSONL, CSV and text datasets.

use mtl_core::TaskKind;
use mtl_model::Bundle;

/// How raw text is cut into the words that cleaning then cleans one by
/// one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Segmentation {
    /// At whitespace only: how the clean stage splits a text, and how
    /// pre-tokenized input separates its words.
    #[default]
    Whitespace,
    /// UD English (EWT) and Penn Treebank conventions
    /// ([`crate::segment`]): punctuation and clitics split off, as the
    /// words of CoNLL-U training data are.
    Ud,
}

impl Segmentation {
    pub fn name(self) -> &'static str {
        match self {
            Segmentation::Whitespace => "whitespace",
            Segmentation::Ud => "ud",
        }
    }
}

/// The `--segment` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Segment {
    /// `ud` for a bundle trained on CoNLL-U treebanks, else `whitespace`.
    #[default]
    Auto,
    /// UD English (EWT) / Penn Treebank word segmentation.
    Ud,
    /// Split at whitespace only (also: pre-tokenized input).
    Whitespace,
}

impl Segment {
    pub fn name(self) -> &'static str {
        match self {
            Segment::Auto => "auto",
            Segment::Ud => "ud",
            Segment::Whitespace => "whitespace",
        }
    }
}

/// A segmentation and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub segmentation: Segmentation,
    pub why: String,
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.segmentation.name(), self.why)
    }
}

/// UD's 17 universal part-of-speech tags.
const UPOS: &[&str] = &[
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
];

/// The Penn Treebank's part-of-speech tags, with the ones EWT adds.
const PTB: &[&str] = &[
    "$", "''", ",", "-LRB-", "-RRB-", ".", ":", "``", "#", "ADD", "AFX", "CC", "CD", "DT", "EX",
    "FW", "GW", "HYPH", "IN", "JJ", "JJR", "JJS", "LS", "MD", "NFP", "NN", "NNP", "NNPS", "NNS",
    "PDT", "POS", "PRP", "PRP$", "RB", "RBR", "RBS", "RP", "SYM", "TO", "UH", "VB", "VBD", "VBG",
    "VBN", "VBP", "VBZ", "WDT", "WP", "WP$", "WRB", "-NONE-",
];

/// Whether `labels` are a tag set's: all of them in `set` (but `_`, a
/// treebank's "none"), and at least `min` of them, so that a task with a
/// label `X` or `NN` by chance does not count.
fn tags_of(labels: &[String], set: &[&str], min: usize) -> bool {
    let tags: Vec<&String> = labels.iter().filter(|l| *l != "_").collect();
    tags.len() >= min && tags.iter().all(|l| set.contains(&l.as_str()))
}

/// The segmentation for `bundle` under `option`.
pub fn choose(bundle: &Bundle, option: Segment) -> Choice {
    let chosen = |segmentation, why: &str| Choice {
        segmentation,
        why: why.to_string(),
    };
    match option {
        Segment::Ud => return chosen(Segmentation::Ud, "--segment ud"),
        Segment::Whitespace => return chosen(Segmentation::Whitespace, "--segment whitespace"),
        Segment::Auto => {}
    }
    let auto = |segmentation, why: String| Choice {
        segmentation,
        why: format!("auto: {why}"),
    };
    for head in &bundle.spec.tasks {
        if head.kind == TaskKind::Dependency {
            return auto(
                Segmentation::Ud,
                format!("task `{}` parses, so it was trained on CoNLL-U", head.name),
            );
        }
    }
    for head in &bundle.spec.tasks {
        let Ok(labels) = bundle.labels.get(&head.name) else {
            continue;
        };
        if head.kind != TaskKind::Tagging {
            continue;
        }
        if tags_of(&labels.labels, UPOS, 8) {
            return auto(
                Segmentation::Ud,
                format!("task `{}` tags with UD's universal POS tags", head.name),
            );
        }
        if tags_of(&labels.labels, PTB, 20) {
            return auto(
                Segmentation::Ud,
                format!("task `{}` tags with Penn Treebank POS tags", head.name),
            );
        }
    }
    auto(
        Segmentation::Whitespace,
        "no task shows treebank training data".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tag_sets_need_every_label_in_the_set_and_enough_of_them() {
        assert!(tags_of(&strings(UPOS), UPOS, 8));
        assert!(tags_of(
            &strings(&[
                "NOUN", "VERB", "DET", "ADJ", "PUNCT", "ADP", "PRON", "_", "AUX"
            ]),
            UPOS,
            8
        ));
        // A few UPOS-looking labels, or one label outside the set, is not
        // a treebank's tag set.
        assert!(!tags_of(&strings(&["X", "NOUN"]), UPOS, 8));
        let mut mixed = strings(UPOS);
        mixed.push("B-PER".into());
        assert!(!tags_of(&mixed, UPOS, 8));
        assert!(tags_of(&strings(PTB), PTB, 20));
        assert!(!tags_of(&strings(&["NN", "VB", "O"]), PTB, 20));
    }
}
