//! Cleaned words that remember where they came from in the raw text.
//!
//! Cleaning works token by token on the raw text's whitespace-split tokens
//! ([`mtl_clean::text`]): each cleaned word is one raw token cleaned, and a
//! token that cleans to nothing (a lone tag, a zero-width space) is dropped.
//! So every word maps to exactly one raw token, and the raw token's
//! character span is the word's place in the original text, whatever
//! cleaning removed or rewrote inside it (tags, entities, zero-width
//! characters, case, masks). The span leaves out what cleaning deletes at
//! the token's edges: whole HTML tags and control or zero-width characters
//! (when those steps are on). So `<b>Paris</b>` and `Paris\u{200B}` both
//! point at `Paris`, while `AT&amp;T` and `(Paris)` stay whole: entities
//! and punctuation are part of how the text was written.
//!
//! Offsets count Unicode scalar values (Rust `char`s, Python `str`
//! indices), not bytes; `end` is exclusive.

use std::sync::LazyLock;

use mtl_clean::text::pattern;
use mtl_core::config::CleanOptions;
use regex::Regex;

use crate::error::Result;

/// What cleaning deletes, anchored at a token's start or end: tags,
/// control and zero-width characters, and both.
struct Edges {
    start: Regex,
    end: Regex,
}

fn edges(alternatives: &[&str]) -> Edges {
    let any = alternatives.join("|");
    // The patterns are constants of mtl-clean, tested there.
    Edges {
        start: Regex::new(&format!("^(?:{any})+")).expect("valid edge pattern"),
        end: Regex::new(&format!("(?:{any})+$")).expect("valid edge pattern"),
    }
}

static TAGS: LazyLock<Edges> = LazyLock::new(|| edges(&[pattern::TAG]));
static CONTROL: LazyLock<Edges> = LazyLock::new(|| edges(&[pattern::CONTROL]));
static BOTH: LazyLock<Edges> = LazyLock::new(|| edges(&[pattern::TAG, pattern::CONTROL]));

/// `token`'s span without the tags and control characters cleaning
/// deletes at its edges; the whole token if nothing would be left.
fn trimmed(token: RawToken, opts: &CleanOptions) -> Span {
    let e: &Edges = match (opts.strip_html, opts.remove_control) {
        (true, true) => &BOTH,
        (true, false) => &TAGS,
        (false, true) => &CONTROL,
        (false, false) => return (token.start, token.end),
    };
    let t = token.text;
    let from = e.start.find(t).map_or(0, |m| m.end());
    let to = e.end.find(&t[from..]).map_or(t.len(), |m| from + m.start());
    if from >= to {
        return (token.start, token.end);
    }
    let start = token.start + t[..from].chars().count();
    (start, start + t[from..to].chars().count())
}

/// `(start, end)` in characters, end exclusive.
pub type Span = (usize, usize);

/// Cleaned words of many texts and, per word, its span in the raw text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub words: Vec<Vec<String>>,
    pub offsets: Vec<Vec<Span>>,
}

/// A raw whitespace-separated token: its text and `[start, end)` in chars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawToken<'a> {
    pub text: &'a str,
    pub start: usize,
    pub end: usize,
}

/// The tokens `str::split_whitespace` yields (the split cleaning uses),
/// with their character offsets.
pub fn raw_tokens(text: &str) -> Vec<RawToken<'_>> {
    let mut out = Vec::new();
    // (byte, char) where the current token began.
    let mut open: Option<(usize, usize)> = None;
    let mut n = 0;
    for (byte, c) in text.char_indices() {
        match (c.is_whitespace(), open) {
            (true, Some((b, s))) => {
                out.push(RawToken {
                    text: &text[b..byte],
                    start: s,
                    end: n,
                });
                open = None;
            }
            (false, None) => open = Some((byte, n)),
            _ => {}
        }
        n += 1;
    }
    if let Some((b, s)) = open {
        out.push(RawToken {
            text: &text[b..],
            start: s,
            end: n,
        });
    }
    out
}

/// Cleaned words of many texts (exactly what
/// [`mtl_clean::text::try_clean_words`] gives each), with each word's
/// `(start, end)` character span in its raw text. All tokens go through one
/// polars query.
pub fn clean_with_offsets(texts: &[String], opts: &CleanOptions) -> Result<Cleaned> {
    let raw: Vec<Vec<RawToken>> = texts.iter().map(|t| raw_tokens(t)).collect();
    let tokens: Vec<&str> = raw.iter().flatten().map(|t| t.text).collect();
    // Each token is its own "text" here, so the result says, token by
    // token, what it cleaned to (nothing, or one word).
    let cleaned = mtl_clean::text::clean_texts(&tokens, opts)?;
    let mut cleaned = cleaned.into_iter();
    let mut words = Vec::with_capacity(texts.len());
    let mut offsets = Vec::with_capacity(texts.len());
    for toks in &raw {
        let (mut w, mut o) = (Vec::new(), Vec::new());
        for t in toks {
            for word in cleaned.next().unwrap_or_default() {
                w.push(word);
                o.push(trimmed(*t, opts));
            }
        }
        words.push(w);
        offsets.push(o);
    }
    Ok(Cleaned { words, offsets })
}

/// The characters `[start, end)` of `text`.
pub fn char_slice(text: &str, start: usize, end: usize) -> String {
    text.chars()
        .skip(start)
        .take(end.saturating_sub(start))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_split_whitespace_with_char_offsets() {
        let text = "  Ünï\u{200b}cödé\t\u{a0}x  <b>y</b>\n";
        let toks = raw_tokens(text);
        let plain: Vec<&str> = toks.iter().map(|t| t.text).collect();
        assert_eq!(plain, text.split_whitespace().collect::<Vec<_>>());
        for t in &toks {
            assert_eq!(char_slice(text, t.start, t.end), t.text);
        }
        assert_eq!((toks[0].start, toks[0].end), (2, 10));
        assert!(raw_tokens(" \t ").is_empty());
    }

    #[test]
    fn cleaned_words_equal_the_clean_stage_words_and_point_back() {
        let opts = CleanOptions {
            mask_urls: true,
            lowercase: true,
            ..CleanOptions::default()
        };
        let texts: Vec<String> = [
            "Visit <b>Paris</b> \u{200b} and AT&amp;T at http://x.co now",
            "",
            "<br/>  plain",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let Cleaned { words, offsets } = clean_with_offsets(&texts, &opts).unwrap();
        for (i, t) in texts.iter().enumerate() {
            let want = mtl_clean::text::try_clean_words(t, &opts).unwrap();
            assert_eq!(words[i], want, "text {i}");
            assert_eq!(words[i].len(), offsets[i].len());
        }
        assert_eq!(
            words[0],
            ["visit", "paris", "and", "at&t", "at", "<url>", "now"]
        );
        let raw: Vec<String> = offsets[0]
            .iter()
            .map(|&(s, e)| char_slice(&texts[0], s, e))
            .collect();
        assert_eq!(
            raw,
            [
                "Visit",
                "Paris",
                "and",
                "AT&amp;T",
                "at",
                "http://x.co",
                "now"
            ]
        );
        assert_eq!(offsets[2], [(7, 12)]);
    }

    #[test]
    fn spans_leave_out_what_cleaning_deletes_at_the_edges() {
        fn tok(text: &str) -> RawToken<'_> {
            RawToken {
                text,
                start: 10,
                end: 10 + text.chars().count(),
            }
        }
        let on = CleanOptions::default();
        let slice = |text: &str, o: &CleanOptions| {
            let (s, e) = trimmed(tok(text), o);
            char_slice(&format!("{}{text}", " ".repeat(10)), s, e)
        };
        assert_eq!(slice("<b>Café</b>", &on), "Café");
        assert_eq!(slice("\u{200b}Ünï\u{feff}", &on), "Ünï");
        assert_eq!(slice("<i>\u{200b}x</i>\u{200d}", &on), "x");
        assert_eq!(slice("(Paris),", &on), "(Paris),");
        assert_eq!(slice("a<br/>b", &on), "a<br/>b");
        assert_eq!(slice("<b></b>", &on), "<b></b>");
        let off = CleanOptions {
            strip_html: false,
            remove_control: false,
            ..CleanOptions::default()
        };
        assert_eq!(slice("<b>x</b>\u{200b}", &off), "<b>x</b>\u{200b}");
    }
}
