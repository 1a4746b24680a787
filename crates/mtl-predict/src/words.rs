//! Cleaned words that remember where they came from in the raw text.
//!
//! The raw text is first cut into raw words: at whitespace, as the clean
//! stage splits a text ([`mtl_clean::text`]), or following UD English
//! ([`crate::segment`], for models trained on CoNLL-U words) — see
//! [`Segmentation`]. Cleaning then works word by word: each cleaned word
//! is one raw word cleaned, and a raw word that cleans to nothing (a lone
//! tag, a zero-width space) is dropped.
//! So every word maps to exactly one raw word, and the raw word's
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
use crate::segment;
pub use crate::segmentation::Segmentation;

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

/// Cleaned words of many texts and, per word, its span in the raw text
/// and its surface token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    pub words: Vec<Vec<String>>,
    pub offsets: Vec<Vec<Span>>,
    /// Per word, the index in its text of the surface token it belongs
    /// to: the words of one multiword token (`do` and `n't` of `don't`)
    /// share it; with whitespace segmentation every raw token is its own.
    pub tokens: Vec<Vec<usize>>,
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

/// Cleaned words of many texts, with each word's `(start, end)` character
/// span in its raw text and its surface token. With
/// [`Segmentation::Whitespace`] the words are exactly what
/// [`mtl_clean::text::try_clean_words`] gives each text. All raw words go
/// through one polars query.
pub fn clean_with_offsets(
    texts: &[String],
    opts: &CleanOptions,
    segmentation: Segmentation,
) -> Result<Cleaned> {
    // Per text, its raw words and the index of each one's surface token.
    let raw: Vec<Vec<(RawToken, usize)>> = texts
        .iter()
        .map(|t| match segmentation {
            Segmentation::Whitespace => raw_tokens(t).into_iter().zip(0..).collect(),
            Segmentation::Ud => segment::segment(t)
                .into_iter()
                .enumerate()
                .flat_map(|(k, token)| token.words.into_iter().map(move |w| (w, k)))
                .collect(),
        })
        .collect();
    let pieces: Vec<&str> = raw.iter().flatten().map(|(t, _)| t.text).collect();
    // Each raw word is its own "text" here (it holds no whitespace), so
    // the result says, word by word, what it cleaned to (nothing, or one
    // word).
    let cleaned = mtl_clean::text::clean_texts(&pieces, opts)?;
    let mut cleaned = cleaned.into_iter();
    let mut words = Vec::with_capacity(texts.len());
    let mut offsets = Vec::with_capacity(texts.len());
    let mut tokens = Vec::with_capacity(texts.len());
    for toks in &raw {
        let (mut w, mut o, mut k) = (Vec::new(), Vec::new(), Vec::new());
        for (t, token) in toks {
            for word in cleaned.next().unwrap_or_default() {
                w.push(word);
                o.push(trimmed(*t, opts));
                k.push(*token);
            }
        }
        words.push(w);
        offsets.push(o);
        tokens.push(k);
    }
    Ok(Cleaned {
        words,
        offsets,
        tokens,
    })
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
        let Cleaned {
            words,
            offsets,
            tokens,
        } = clean_with_offsets(&texts, &opts, Segmentation::Whitespace).unwrap();
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
        // `<br/>` cleaned to nothing: `plain` is the second raw token.
        assert_eq!(tokens[2], [1]);
        assert_eq!(tokens[0], [0, 1, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn ud_words_are_cleaned_one_by_one_and_point_back() {
        let opts = CleanOptions {
            lowercase: true,
            ..CleanOptions::default()
        };
        let texts: Vec<String> = [
            "Days, <b>terrible</b>. Don’t buy AT&amp;T\u{200b}!",
            "e.g. 3.5kg :)",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = clean_with_offsets(&texts, &opts, Segmentation::Ud).unwrap();
        assert_eq!(
            c.words[0],
            [
                "days", ",", "terrible", ".", "do", "n’t", "buy", "at&t", "!"
            ]
        );
        assert_eq!(c.words[1], ["e.g.", "3.5", "kg", ":)"]);
        let raw: Vec<String> = c.offsets[0]
            .iter()
            .map(|&(s, e)| char_slice(&texts[0], s, e))
            .collect();
        // Tags cleaned away are no words; the zero-width space is left out
        // of its word's span.
        assert_eq!(
            raw,
            [
                "Days", ",", "terrible", ".", "Do", "n’t", "buy", "AT&amp;T", "!"
            ]
        );
        // `Don’t` is one token of two words; `<b>` and `</b>` were tokens.
        assert_eq!(c.tokens[0], [0, 1, 3, 5, 6, 6, 7, 8, 9]);
        // Whitespace segmentation keeps what the clean stage would.
        let ws = clean_with_offsets(&texts, &opts, Segmentation::Whitespace).unwrap();
        assert_eq!(
            ws.words[0],
            mtl_clean::text::try_clean_words(&texts[0], &opts).unwrap()
        );
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
