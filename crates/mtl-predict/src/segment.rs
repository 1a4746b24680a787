//! Word segmentation of raw English text the way Universal Dependencies'
//! English Web Treebank (EWT) segments it, so that a model trained on
//! CoNLL-U words sees the same kind of words at prediction time.
//!
//! EWT follows the Penn Treebank's conventions, with UD's multiword
//! tokens. What it does, checked against its v2.16 files (the counts are
//! from `en_ewt-ud-train.conllu` and `-dev.conllu`):
//!
//! - Punctuation is split from words: `days,` is `days` `,`, `(CNN)` is
//!   `(` `CNN` `)`. Runs of `.`, `!` and `?` stay one word (`!!!`, `.?`),
//!   an ellipsis apart from them (`...?` is `...` `?`), and so do runs of
//!   symbols such as `--`, `**`, `->` and quote pairs such as `''`.
//! - Clitics are split off as their own words: `don't` is `do` `n't`,
//!   `can't` `ca` `n't`, `it's` `it` `'s`, `Bush's` `Bush` `'s`, also with
//!   `’`, and so are the forms written without an apostrophe (`dont` is
//!   `do` `nt`, `im` `i` `m`), `cannot` (`can` `not`) and `gonna` (`gon`
//!   `na`).
//! - Kept whole: numbers (`3.5`, `1,000`, `11:30`, `12/20/2000`, phone
//!   numbers `713-853-3989`), URLs, e-mail addresses, file and domain names
//!   (`ENRON.XLS`, `galleryfurniture.com`), emoticons (`:)`, `:-(`, `<3`),
//!   abbreviations (`e.g.`, `U.S.`, `Mr.`, initials such as `W.`),
//!   `AT&T`, `#hashtags` and `@names`.
//! - The period of an abbreviation that ends the text is split off
//!   (`etc.` last in a sentence is `etc` `.`, 29 times of 30), because
//!   there it is also the sentence's full stop.
//! - Hyphens are split (`Al-Zaman` is `Al` `-` `Zaman`, `long-term`
//!   `long` `-` `term`, `1969-1970` `1969` `-` `1970`) except after the
//!   prefixes EWT keeps (`e-mail`, `non-stop`, `anti-war`, `re-read`, ...),
//!   inside phone numbers and codes (`x3-9890`), and next to something
//!   that is no word (`ld2d-#69366`).
//! - A number and its unit are split (`5kg`, `11:30am`, `$3M` are
//!   `5` `kg`, `11:30` `am`, `$` `3` `M`); ordinals and decades stay
//!   (`3rd`, `1980s`).
//! - Slashes between words are split (`and/or`), except after a single
//!   letter (`w/o`, `b/c`).
//!
//! HTML tags and entities are kept as units (`<b>`, `&amp;`, `AT&amp;T`),
//! so that cleaning, which runs on each word afterwards, removes or
//! decodes them whole as it does in the clean stage.
//!
//! Multiword tokens. CoNLL-U writes a contraction as one token over
//! several words (`3-4 don't`, then `3 do` and `4 n't`); the model is
//! trained on the words. In all 2,614 multiword tokens of EWT's train
//! file, and in every sentence of the treebank, the words spell the text
//! exactly (`do` + `n't` = `don't`, `gon` + `na` = `gonna`): they are cuts
//! of the surface, never rewrites. So the segmenter cuts the raw text into
//! words, each with its own character span, and groups the words of a
//! contraction into one [`Token`]; CoNLL-U output writes that token's
//! range line.
//!
//! What it cannot do without a model: splits that depend on meaning
//! (`its` is `it` `s` 74 times but the possessive `its` 177 times; `your`
//! for `you're`; `horses` for `horse's`), and the annotators' repairs of
//! typos (`everyday` as `every` `day`). Sentences are not split: each
//! input text is one unit, as each `# text` line is. On EWT's own `# text`
//! lines it gives back the treebank's words with a word F1 of 99.3% (dev)
//! and 99.2% (test) (`tests/ewt_segmentation.rs` measures it).
//!
//! The segmenter works on the whitespace-separated chunks of the text,
//! peeling prefixes and suffixes off each chunk and then splitting what
//! is left at infixes, as the Penn Treebank's `tokenizer.sed` and spaCy's
//! tokenizer do. No crate does this with EWT's rules and character
//! offsets: `unicode-segmentation`'s word boundaries (UAX #29) keep
//! `don't` and `U.S` together but split `e.g.`, `:)` and `--` into
//! characters and know nothing of clitics or units, so it would need as
//! many rules on top as this takes. Offsets count Unicode scalar values,
//! as in [`crate::words`].

use std::sync::LazyLock;

use mtl_clean::text::pattern;
use regex::Regex;

use crate::words::{RawToken, Span, raw_tokens};

/// A surface token of the text and the words it holds: one word, or
/// several for a multiword token (`don't` holds `do` and `n't`). The words
/// tile the token: the first starts where the token starts, each next one
/// where the previous one ends, the last ends where the token ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    pub text: &'a str,
    /// `(start, end)` in characters, end exclusive.
    pub span: Span,
    pub words: Vec<RawToken<'a>>,
}

/// The words of `text`, each with its character span, in order.
pub fn words(text: &str) -> Vec<RawToken<'_>> {
    segment(text).into_iter().flat_map(|t| t.words).collect()
}

/// The tokens of `text`, each with its words.
pub fn segment(text: &str) -> Vec<Token<'_>> {
    let chunks = raw_tokens(text);
    // A chunk is final when no later chunk holds a letter or digit: an
    // abbreviation's period there ends the sentence.
    let last_word = chunks
        .iter()
        .rposition(|c| c.text.chars().any(char::is_alphanumeric));
    let mut out: Vec<Token> = Vec::new();
    for (k, c) in chunks.iter().enumerate() {
        let final_chunk = last_word.is_none_or(|l| k >= l);
        // Pieces tile the chunk in order, so one walk turns bytes into
        // characters; `open` is the byte where the chunk's current token
        // starts.
        let (mut byte, mut at, mut open) = (0, c.start, 0);
        for p in split_chunk(c.text, final_chunk) {
            at += c.text[byte..p.start].chars().count();
            let start = at;
            at += c.text[p.start..p.end].chars().count();
            byte = p.end;
            let word = RawToken {
                text: &c.text[p.start..p.end],
                start,
                end: at,
            };
            match out.last_mut() {
                Some(t) if p.joined && p.start > 0 && t.span.1 == start => {
                    t.text = &c.text[open..p.end];
                    t.span.1 = at;
                    t.words.push(word);
                }
                _ => {
                    open = p.start;
                    out.push(Token {
                        text: word.text,
                        span: (start, at),
                        words: vec![word],
                    });
                }
            }
        }
    }
    out
}

/// A piece of a chunk in bytes; `joined` when it belongs to the same
/// token as the piece before it (a clitic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    start: usize,
    end: usize,
    joined: bool,
}

impl Piece {
    fn new(start: usize, end: usize) -> Piece {
        Piece {
            start,
            end,
            joined: false,
        }
    }
}

enum Task {
    Span(usize, usize),
    Emit(Piece),
}

/// Splits one whitespace-free chunk into pieces that tile it. An explicit
/// stack instead of recursion: a chunk of a million commas must not
/// overflow the stack.
fn split_chunk(chunk: &str, final_chunk: bool) -> Vec<Piece> {
    let quoted = chunk.starts_with(['\'', '‘', '`']);
    // Where the chunk's last letter or digit ends: a span ending there or
    // later ends the text's last word.
    let words_end = chunk
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_alphanumeric())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let mut out = Vec::new();
    let mut stack = vec![Task::Span(0, chunk.len())];
    while let Some(task) = stack.pop() {
        let (mut a, mut b) = match task {
            Task::Emit(p) => {
                out.push(p);
                continue;
            }
            Task::Span(a, b) => (a, b),
        };
        // Suffixes peeled off the end, outermost first.
        let mut back = Vec::new();
        while a < b {
            let s = &chunk[a..b];
            let last = final_chunk && b >= words_end;
            if let Some(cuts) = special(s) {
                // Cuts count characters: `i’ma` has a three-byte apostrophe.
                let bounds: Vec<usize> = s.char_indices().map(|(i, _)| a + i).chain([b]).collect();
                let mut ends: Vec<usize> = Vec::with_capacity(cuts.len() + 1);
                let mut chars = 0;
                for &n in cuts {
                    chars += n;
                    ends.push(bounds[chars.min(bounds.len() - 1)]);
                }
                ends.push(b);
                let mut from = a;
                for (k, to) in ends.into_iter().enumerate() {
                    out.push(Piece {
                        start: from,
                        end: to,
                        joined: k > 0,
                    });
                    from = to;
                }
                a = b;
                break;
            }
            if whole(s, last) {
                out.push(Piece::new(a, b));
                a = b;
                break;
            }
            if let Some(n) = atomic_prefix(s).or_else(|| prefix(s)) {
                out.push(Piece::new(a, a + n));
                a += n;
                continue;
            }
            if let Some((n, joined)) = suffix(s, quoted, last) {
                back.push(Piece {
                    start: b - n,
                    end: b,
                    joined,
                });
                b -= n;
                continue;
            }
            break;
        }
        stack.extend(back.into_iter().map(Task::Emit));
        if a < b {
            match infix(&chunk[a..b]) {
                Some((i, j)) if j > 0 && (i, j) != (0, b - a) => {
                    stack.push(Task::Span(a + j, b));
                    if j > i {
                        stack.push(Task::Emit(Piece::new(a + i, a + j)));
                    }
                    stack.push(Task::Span(a, a + i));
                }
                _ => out.push(Piece::new(a, b)),
            }
        }
    }
    out
}

/// Words written without their apostrophe, and other fused forms, that
/// EWT splits: the lower-cased form and the length in characters of each
/// piece but the last.
const SPECIAL: &[(&str, &[usize])] = &[
    ("cannot", &[3]),
    ("gonna", &[3]),
    ("wanna", &[3]),
    ("gotta", &[3]),
    ("outta", &[3]),
    ("dunno", &[2, 1]),
    ("lemme", &[3]),
    ("gimme", &[3]),
    ("alot", &[1]),
    ("i'ma", &[1, 2]),
    ("dont", &[2]),
    ("cant", &[2]),
    ("wont", &[2]),
    ("aint", &[2]),
    ("didnt", &[3]),
    ("doesnt", &[4]),
    ("isnt", &[2]),
    ("wasnt", &[3]),
    ("werent", &[4]),
    ("arent", &[3]),
    ("couldnt", &[5]),
    ("wouldnt", &[5]),
    ("shouldnt", &[6]),
    ("hasnt", &[3]),
    ("havent", &[4]),
    ("hadnt", &[3]),
    ("im", &[1]),
    ("ive", &[1]),
    ("youre", &[3]),
    ("thats", &[4]),
    ("theres", &[5]),
    ("whats", &[4]),
    ("hes", &[2]),
    ("lets", &[3]),
];

fn special(s: &str) -> Option<&'static [usize]> {
    if s.len() > 10 {
        return None;
    }
    let lower = s.to_lowercase().replace('’', "'");
    SPECIAL
        .iter()
        .find(|(w, _)| *w == lower)
        .map(|(_, cuts)| *cuts)
}

/// Abbreviations whose period is part of the word, without the period.
/// A capitalized entry also matches in capitals (`MR.`), a lower-case one
/// also capitalized (`Etc.`): `No.` is an abbreviation, `no.` a word.
const ABBREVIATIONS: &[&str] = &[
    "Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "Inc", "Corp", "Co", "Ltd", "Jan", "Feb", "Mar",
    "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec", "Mon", "Tue", "Tues", "Wed",
    "Thu", "Thur", "Thurs", "Fri", "Sat", "Sun", "Gen", "Lt", "Col", "Capt", "Sgt", "Rev", "Gov",
    "Sen", "Rep", "Reps", "Pres", "Prof", "Ft", "Mt", "Ave", "Blvd", "No", "Attn", "Fig", "Ph",
    "Fax", "Mob", "Para", "Conf", "Assn", "Bros", "Univ", "La", "Calif", "Conn", "Fla", "Ga",
    "Mich", "Minn", "Tenn", "Tex", "Va", "Ky", "Md", "Colo", "Ariz", "Okla", "Penn", "vs", "etc",
    "ext", "approx", "dept", "est", "vol", "pp", "lb", "lbs", "oz", "eg", "ie", "al", "cf", "yrs",
    "arrv", "spec",
];

/// Words that end in punctuation of their own.
const WHOLE: &[&str] = &["yahoo!"];

/// The names of HTML elements, for a tag whose attributes follow in the
/// next chunks (`<a href="...">`), which cleaning removes piece by piece.
/// mtl-clean takes any `<name` for such a start; here it must name an
/// element, because EWT writes `<Embedded Picture>` as words.
const HTML_ELEMENTS: &str = "a abbr b big blockquote body br button center code col div em \
     font form h1 h2 h3 h4 h5 h6 head hr html i iframe img input label li link meta ol option \
     p pre script select small source span strong style sub sup table tbody td textarea th tr \
     u ul video";

// Every pattern below is a constant that the tests compile, so their
// `expect`s cannot fire on any input.

static EMOTICON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^(?:[<>}]?[:;=][-'^o]?[()\[\]{}DPpOo/\\|*3@$]+|[()\[\]{}|][-'^]?[:;=]|</?3+|\^[_.-]?\^|-_+-|[oO0]_+[oO0])$"#,
    )
    .expect("valid emoticon pattern")
});

/// An emoticon before punctuation: `:).`
static EMOTICON_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(?:[<>}]?[:;=][-'^o]?[()\[\]{}DPpOo/\\|*3@$]+|</?3+|\^[_.-]?\^|-_+-)"#)
        .expect("valid emoticon pattern")
});

/// An HTML tag closing a chunk: `Paris</b>`.
static TAG_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("(?:{})$", pattern::TAG)).expect("valid tag pattern"));

/// An emoticon after a word, without a space: `great:)`.
static EMOTICON_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[:;=][-']?[()\[\]]+$").expect("valid pattern"));

/// Letters with periods: `U.S.`, `e.g.`, `p.m.`, `D.C.`.
static DOTTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\p{L}(?:\.\p{L})+\.$").expect("valid pattern"));

/// An HTML entity, which cleaning decodes: `&amp;`, `&#39;`.
static ENTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});$")
        .expect("valid pattern")
});

/// Whole words of their own: a clitic written apart (`'s`, `n't`), a
/// year (`'72`, `’90s`), a file name (`-FINAL.doc`), a domain.
static WHOLE_PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"^(?i:['’`](?:s|re|ll|ve|m|d)|n['’]t)$",
        r"^['’][0-9]{2}s?$",
        r"^[\w#~-][\w.#~-]*\.(?i:doc|docx|xls|xlsx|ppt|pptx|pdf|txt|rtf|wpd|htm|html|xml|csv|zip|exe|jpg|jpeg|gif|png|bmp|mp3|wav|avi|mpg|mov)$",
        r"^\w[\w-]*(?:\.[\w-]+)*\.(?i:com|org|net|gov|edu|mil|info|biz|uk|ca|au|de|fr|us|io)$",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("valid whole-word pattern"))
    .collect()
});

/// Whether `s` stays one word as it is; `last` when it ends the text's
/// last word.
fn whole(s: &str, last: bool) -> bool {
    let mut chars = s.chars();
    if chars.next().is_some() && chars.next().is_none() {
        return true;
    }
    if s.len() > 256 {
        return false;
    }
    WHOLE.iter().any(|w| w.eq_ignore_ascii_case(s))
        || EMOTICON.is_match(s)
        || ENTITY.is_match(s)
        || WHOLE_PATTERNS.iter().any(|r| r.is_match(s))
        || tag_head(s)
        || (!last && abbreviation(s))
}

/// `<a` of `<a href="...">`.
fn tag_head(s: &str) -> bool {
    s.strip_prefix('<').is_some_and(|name| {
        HTML_ELEMENTS
            .split_whitespace()
            .any(|e| e.eq_ignore_ascii_case(name))
    })
}

fn abbreviation(s: &str) -> bool {
    let Some(stem) = s.strip_suffix('.') else {
        return false;
    };
    let mut chars = stem.chars();
    let first = chars.next();
    if first.is_some_and(char::is_uppercase) && chars.next().is_none() {
        // An initial: `W.`
        return true;
    }
    DOTTED.is_match(s) || (stem.len() <= 6 && ABBREVIATIONS.iter().any(|a| spelled(a, stem)))
}

/// Whether `word` is `entry` as written, in capitals, or (a lower-case
/// entry) capitalized.
fn spelled(entry: &str, word: &str) -> bool {
    if entry == word
        || (word.len() > 1
            && entry.eq_ignore_ascii_case(word)
            && word.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return true;
    }
    let mut e = entry.chars();
    let mut w = word.chars();
    match (e.next(), w.next()) {
        (Some(a), Some(b)) => a.is_lowercase() && b == a.to_ascii_uppercase() && e.eq(w),
        _ => false,
    }
}

/// An HTML tag, as cleaning strips it.
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^(?:{})", pattern::TAG)).expect("valid tag pattern"));

/// URLs, e-mail addresses and HTML tags: kept whole whatever punctuation
/// they hold.
static ATOMIC: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // mtl-clean's URL, and `mailto:` links (EWT keeps
        // `mailto:amy.cornell@compaq.com` one word); trailing punctuation
        // stays outside.
        r#"^(?i:https?://|ftp://|www\.|mailto:)[^\s<>"']*[^\s<>"'.,;:!?)\]}]"#.to_string(),
        // mtl-clean's EMAIL and TAG_TAIL, with a bound where they would
        // scan a long run of letters again at every piece peeled off a
        // chunk: 64 characters is the longest local part an address may
        // have, and longer than any attribute's name.
        r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}".to_string(),
        format!("^(?:{})", pattern::TAG),
        // The attribute that closes a tag opened in an earlier chunk.
        r#"^[A-Za-z_:][-A-Za-z0-9_:.]{0,63}=(?:"[^"]*"|'[^']*'|[^\s"'<>=]+)/?>"#.to_string(),
    ]
    .iter()
    .map(|p| Regex::new(p).expect("valid atomic pattern"))
    .collect()
});

/// Longest URL, address or tag looked for: the search starts at every
/// peeled piece of a chunk, and a bound keeps a huge chunk linear.
const ATOMIC_MAX: usize = 2048;

/// The first `n` bytes of `s` or fewer, at a character boundary.
fn head(s: &str, n: usize) -> &str {
    let mut end = s.len().min(n);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The last `n` bytes of `s` or fewer, at a character boundary.
fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The length of the URL, address or tag `s` starts with.
fn atomic_prefix(s: &str) -> Option<usize> {
    let head = head(s, ATOMIC_MAX);
    ATOMIC
        .iter()
        .find_map(|r| r.find(head))
        .map(|m| m.end())
        .filter(|&n| n > 0)
}

/// Sentence punctuation whose runs stay one word: `!!`, `?!`, `.?`.
fn is_stop(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

/// Symbols whose runs of one character stay one word: `--`, `**`, `<<`,
/// `$$$`, `))`.
fn is_symbol(c: char) -> bool {
    matches!(
        c,
        '-' | '*' | '~' | '=' | '<' | '>' | '+' | '^' | '|' | '_' | '$' | '(' | ')'
    )
}

fn is_quote(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | '`' | '“' | '”' | '‘' | '’' | '«' | '»' | '„' | '‚'
    )
}

/// Symbol runs of mixed characters that stay one word.
static SYMBOLS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:<?[-=]+>?|~\*|\*~)").expect("valid symbol pattern"));
static SYMBOLS_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:<?[-=]+>?|~\*|\*~)$").expect("valid symbol pattern"));

/// The byte just after the character that starts at byte `i` of `s`.
fn char_end(s: &str, i: usize) -> usize {
    i + s[i..].chars().next().map_or(0, char::len_utf8)
}

/// The byte length of the run of `c` at the start of `s`.
fn same_run(s: &str, c: char) -> usize {
    s.find(|d| d != c).unwrap_or(s.len())
}

/// The byte length of the run of `c` at the end of `s`.
fn same_run_back(s: &str, c: char) -> usize {
    s.len() - s.rfind(|d| d != c).map_or(0, |i| char_end(s, i))
}

/// The sentence punctuation that `s` starts with, as one word: an
/// ellipsis (`...`, `…`) alone, else a run such as `!!` or `.?`.
fn stop_run(s: &str) -> usize {
    let ellipsis = |c: char| c == '.' || c == '…';
    let n = s.find(|c: char| !is_stop(c)).unwrap_or(s.len());
    let run = &s[..n];
    if run.contains("..") || run.contains('…') {
        let first = run.chars().next().is_some_and(ellipsis);
        let k = run
            .find(|c: char| ellipsis(c) != first)
            .unwrap_or(run.len());
        return k;
    }
    n
}

/// [`stop_run`] from the end of `s`.
fn stop_run_back(s: &str) -> usize {
    let ellipsis = |c: char| c == '.' || c == '…';
    let start = s.rfind(|c: char| !is_stop(c)).map_or(0, |i| char_end(s, i));
    let run = &s[start..];
    if run.contains("..") || run.contains('…') {
        let last = run.chars().next_back().is_some_and(ellipsis);
        let k = run
            .rfind(|c: char| ellipsis(c) != last)
            .map_or(0, |i| char_end(run, i));
        return run.len() - k;
    }
    run.len()
}

/// A quote pair written as one mark: `''`, ```` `` ````, `‘’`, `’’`.
fn quote_pair(s: &str) -> Option<usize> {
    let mut c = s.chars();
    match (c.next(), c.next()) {
        (Some(a @ ('\'' | '’' | '‘' | '`')), Some(b @ ('\'' | '’' | '‘' | '`'))) => {
            Some(a.len_utf8() + b.len_utf8())
        }
        (Some('"'), Some('"')) => Some(2),
        _ => None,
    }
}

/// The opening punctuation to split off the start of `s`, in bytes.
fn prefix(s: &str) -> Option<usize> {
    let mut chars = s.chars();
    let c = chars.next()?;
    let next = chars.next();
    let digit = next.is_some_and(|d| d.is_ascii_digit());
    let n = c.len_utf8();
    if let Some(m) = EMOTICON_START.find(s)
        && !s[m.end()..].starts_with(char::is_alphanumeric)
    {
        return Some(m.end());
    }
    match c {
        // `.5` is a number, `.NET` and `.doc` are names.
        '.' if next.is_some_and(char::is_alphanumeric) => None,
        c if is_stop(c) => Some(stop_run(s)),
        // `-5` is a number; `_name` stays whole.
        '-' | '+' if digit => None,
        '_' if next.is_some_and(char::is_alphanumeric) => None,
        c if is_symbol(c) => Some(SYMBOLS.find(s).map_or_else(|| same_run(s, c), |m| m.end())),
        c if is_quote(c) => Some(quote_pair(s).unwrap_or(n)),
        '[' | '{' | '¿' | '¡' | ',' | ';' | ':' | ']' | '}' | '%' | '£' | '€' | '¥' | '—' | '–' => {
            Some(n)
        }
        '#' | '@' if digit => Some(n),
        _ => None,
    }
}

/// The closing punctuation or clitic to split off the end of `s`, in
/// bytes, and whether it belongs to the token before it (a clitic).
/// `quoted` when the chunk opened with a single quote; `last` when `s`
/// ends the text's last word.
fn suffix(s: &str, quoted: bool, last: bool) -> Option<(usize, bool)> {
    let chars: Vec<char> = s.chars().rev().take(4).collect();
    let c = *chars.first()?;
    let before = |k: usize| chars.get(k).copied();
    let letter = |k: usize| before(k).is_some_and(char::is_alphabetic);
    let apostrophe = |k: usize| matches!(before(k), Some('\'' | '’' | '`'));
    let lower = |k: usize| before(k).map(|c| c.to_ascii_lowercase());
    let width = |k: usize| before(k).map_or(0, char::len_utf8);
    // n't after a letter: `do` + `n't`, `ca` + `n't`.
    if lower(0) == Some('t') && apostrophe(1) && lower(2) == Some('n') && letter(3) {
        return Some((2 + width(1), true));
    }
    // 's 'm 'd after a letter.
    if matches!(lower(0), Some('s' | 'm' | 'd')) && apostrophe(1) && letter(2) {
        return Some((1 + width(1), true));
    }
    // 're 'll 've after a letter.
    if matches!(
        (lower(1), lower(0)),
        (Some('r'), Some('e')) | (Some('l'), Some('l')) | (Some('v'), Some('e'))
    ) && apostrophe(2)
        && letter(3)
    {
        return Some((2 + width(2), true));
    }
    if c == '>'
        && let Some(m) = TAG_END.find(tail(s, ATOMIC_MAX))
    {
        return Some((m.len(), false));
    }
    let end = tail(s, 16);
    if let Some(m) = EMOTICON_END.find(end)
        && s[..s.len() - end.len() + m.start()].ends_with(char::is_alphanumeric)
    {
        return Some((end.len() - m.start(), false));
    }
    match c {
        c if is_stop(c) => {
            let n = stop_run_back(s);
            // The period of an abbreviation before a `?`: `T.V.` + `?`.
            let body = &s[..s.len() - n];
            if !last
                && n > 1
                && s[body.len()..].starts_with('.')
                && abbreviation(&s[..body.len() + 1])
            {
                return Some((n - 1, false));
            }
            Some((n, false))
        }
        '_' => None,
        c if is_symbol(c) => Some((
            SYMBOLS_END
                .find(tail(s, ATOMIC_MAX))
                .map_or_else(|| same_run_back(s, c), |m| m.len()),
            false,
        )),
        c if is_quote(c) => {
            if let Some((i, _)) = s.char_indices().rev().nth(1)
                && let Some(n) = quote_pair(&s[i..]).filter(|&n| n == s.len() - i)
            {
                return Some((n, false));
            }
            // The plural possessive: `parents'`.
            let possessive =
                matches!(c, '\'' | '’') && matches!(before(1), Some('s' | 'S')) && !quoted;
            Some((c.len_utf8(), possessive))
        }
        ';' if tail(s, 40)
            .rfind('&')
            .is_some_and(|a| ENTITY.is_match(&tail(s, 40)[a..])) =>
        {
            None
        }
        ']' | '}' | ',' | ';' | ':' | '%' | '—' | '–' => Some((c.len_utf8(), false)),
        // `duties/`, but `w/` is `with`.
        '/' if letter(1) && letter(2) => Some((1, false)),
        _ => None,
    }
}

/// Prefixes EWT keeps joined to the word after their hyphen.
const HYPHEN_PREFIXES: &[&str] = &[
    "e", "non", "mid", "pre", "anti", "re", "post", "co", "over", "pro", "multi", "ex", "sub",
    "semi", "cross", "neo", "socio", "psycho", "counter", "arch", "intra", "ultra", "pseudo",
    "quasi", "mega", "micro", "macro", "mini", "bi", "tri", "un", "de",
];

/// Units split from the number before them: `5kg`, `11:30am`, `$3M`.
const UNITS: &[&str] = &[
    "am", "pm", "a.m", "p.m", "a.m.", "p.m.", "k", "m", "b", "bn", "mm", "cm", "km", "ft", "x",
    "hh", "kg", "t", "hz", "khz", "mhz", "ghz", "lb", "lbs", "oz", "kb", "mb", "gb", "tb", "sq",
    "min", "mins", "hr", "hrs", "yr", "yrs", "mph", "kph", "mg", "ml", "kw", "mw", "mwh", "kwh",
    "percent",
];

/// The first infix of `s` (a chunk's middle, nothing left to peel) as a
/// byte range: the punctuation to split out, or an empty range where a
/// word boundary falls between two characters. The scan is lazy, so
/// that splitting a long chunk infix by infix stays linear.
fn infix(s: &str) -> Option<(usize, usize)> {
    let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    let letter = |c: Option<char>| c.is_some_and(char::is_alphabetic);
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    // A hyphenated code (`713-853-3989`) is decided once for all its hyphens.
    let mut kept_until = 0;
    let (mut prev, mut prev2) = (None, None);
    for (b, c) in s.char_indices() {
        let after = b + c.len_utf8();
        let next = s[after..].chars().next();
        let run_end = |f: fn(char) -> bool| s[b..].find(|c| !f(c)).map_or(s.len(), |n| b + n);
        // A URL or address after punctuation (`below:<http://...>`), a
        // tag inside a word (`a<br/>b`).
        if b > 0
            && !alnum(prev)
            && matches!(c, 'h' | 'H' | 'w' | 'W' | 'f' | 'm')
            && atomic_prefix(&s[b..]).is_some()
        {
            return Some((b, b));
        }
        if c == '<'
            && let Some(m) = TAG.find(head(&s[b..], ATOMIC_MAX))
        {
            return Some((b, b + m.end()));
        }
        match c {
            '.' | '…' => {
                let e = run_end(|c| c == '.' || c == '…');
                if c == '…' || e - b >= 2 {
                    return Some((b, e));
                }
            }
            '!' | '?' => return Some((b, run_end(|c| c == '!' || c == '?'))),
            '-' if b >= kept_until => {
                let e = run_end(|c| c == '-');
                if e - b >= 2 {
                    return Some((b, e));
                }
                match hyphen(s, b) {
                    Hyphen::Split => return Some((b, after)),
                    Hyphen::KeepUntil(e) => kept_until = e,
                }
            }
            ',' if !(digit(prev) && digit(next)) => return Some((b, after)),
            // The end of an entity: `AT&amp;T` is one word.
            ';' if s[..after]
                .rfind('&')
                .is_some_and(|a| ENTITY.is_match(&s[a..after])) => {}
            ';' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | '“' | '”' | '«' | '»' | '—' | '–' =>
            {
                return Some((b, after));
            }
            // `NOTE:If`; times (`11:30`) and schemes (`http:`) are kept.
            ':' if letter(prev) && letter(next) => return Some((b, after)),
            // `job#0000108806`
            '#' if letter(prev) && digit(next) => return Some((b, after)),
            // `and/or`, but `w/o` and `b/c` stay whole.
            '/' if letter(prev) && letter(next) && alnum(prev2) => return Some((b, after)),
            // `5kg`, `11:30am`, but not `B2B`, `1980s`.
            c if c.is_alphabetic() && digit(prev) => {
                let number = s[..b]
                    .chars()
                    .rev()
                    .take_while(|c| c.is_alphanumeric())
                    .all(|c| c.is_ascii_digit());
                let rest = &s[b..];
                if number && rest.len() <= 8 && UNITS.contains(&rest.to_lowercase().as_str()) {
                    return Some((b, b));
                }
            }
            _ => {}
        }
        prev2 = prev;
        prev = Some(c);
    }
    None
}

enum Hyphen {
    Split,
    /// Keep it, and every hyphen before this byte.
    KeepUntil(usize),
}

#[derive(PartialEq)]
enum Kind {
    Letters,
    Digits,
    Mixed,
}

fn kind(word: &str) -> Kind {
    let digits = word.chars().filter(|c| c.is_ascii_digit()).count();
    match digits {
        0 => Kind::Letters,
        d if d == word.chars().count() => Kind::Digits,
        _ => Kind::Mixed,
    }
}

/// Whether the single hyphen at byte `b` of `s` separates two words.
fn hyphen(s: &str, b: usize) -> Hyphen {
    let keep = Hyphen::KeepUntil(b + 1);
    let left_start = s[..b]
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric())
        .last()
        .map_or(b, |(i, _)| i);
    let right_end = s[b + 1..]
        .find(|c: char| !c.is_alphanumeric())
        .map_or(s.len(), |n| b + 1 + n);
    let (left, right) = (&s[left_start..b], &s[b + 1..right_end]);
    if left.is_empty() || right.is_empty() {
        return keep;
    }
    match (kind(left), kind(right)) {
        (Kind::Mixed, _) | (_, Kind::Mixed) => keep,
        (Kind::Digits, Kind::Digits) => phone_like(s, b),
        (Kind::Letters, _) if HYPHEN_PREFIXES.contains(&left.to_lowercase().as_str()) => keep,
        _ => Hyphen::Split,
    }
}

/// Whether the digits and hyphens around the hyphen at byte `b` form a
/// phone number, postal code or other code (`713-853-3989`, `345-9945`,
/// `77042-2016`, `#69366-1`), which EWT keeps, rather than a range
/// (`1969-1970`, `3-4`, `5:00-8:30`).
fn phone_like(s: &str, b: usize) -> Hyphen {
    let part = |c: char| c.is_ascii_digit() || c == '-';
    let start = s[..b]
        .char_indices()
        .rev()
        .find(|&(_, c)| !part(c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let end = s[b..].find(|c| !part(c)).map_or(s.len(), |n| b + n);
    let keep = Hyphen::KeepUntil(end);
    match s[..start].chars().next_back() {
        // Part of a code: `ld2d-#69366-1.DOC`.
        Some(c) if c == '#' || c.is_alphabetic() => return keep,
        // Times and decimals: `5:00-8:30` is a range.
        Some(':' | '.' | ',') => return Hyphen::Split,
        _ => {}
    }
    let mut groups = s[start..end].split('-').map(str::len);
    match (groups.next(), groups.next(), groups.next()) {
        (_, _, Some(_)) => keep,
        (Some(3), Some(3 | 4), None) | (Some(5), Some(4), None) => keep,
        _ => Hyphen::Split,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::char_slice;

    /// The words of `text`, a multiword token's words joined by `|`.
    fn show(text: &str) -> Vec<String> {
        segment(text)
            .iter()
            .map(|t| {
                let words: Vec<&str> = t.words.iter().map(|w| w.text).collect();
                words.join("|")
            })
            .collect()
    }

    fn check(text: &str, want: &[&str]) {
        assert_eq!(show(text), want, "{text:?}");
    }

    #[test]
    fn punctuation_is_split_from_words() {
        check(
            "The battery died after two days, terrible.",
            &[
                "The", "battery", "died", "after", "two", "days", ",", "terrible", ".",
            ],
        );
        check(
            "(CNN) He said \"no!!\" -- then... left?!",
            &[
                "(", "CNN", ")", "He", "said", "\"", "no", "!!", "\"", "--", "then", "...", "left",
                "?!",
            ],
        );
        check("wait...?", &["wait", "...", "?"]);
        check(
            "a,b and/or c;d",
            &["a", ",", "b", "and", "/", "or", "c", ";", "d"],
        );
        check(
            "''Quoted'' ‘’ok’’",
            &["''", "Quoted", "''", "‘’", "ok", "’’"],
        );
    }

    #[test]
    fn clitics_are_words_of_one_token() {
        check("don't", &["do|n't"]);
        check("Can't won't cannot", &["Ca|n't", "wo|n't", "can|not"]);
        check(
            "It's Bush’s; they'll I’m we've he'd you're",
            &[
                "It|'s",
                "Bush|’s",
                ";",
                "they|'ll",
                "I|’m",
                "we|'ve",
                "he|'d",
                "you|'re",
            ],
        );
        check("dont im gonna Wanna", &["do|nt", "i|m", "gon|na", "Wan|na"]);
        check("the parents' car", &["the", "parents|'", "car"]);
        check("don't.", &["do|n't", "."]);
        // A clitic written apart is a word of its own.
        check("Bush 's n't", &["Bush", "'s", "n't"]);
        // Not clitics.
        check(
            "o'clock rock'n'roll O'Neil",
            &["o'clock", "rock'n'roll", "O'Neil"],
        );
        // Each word of a token points at its own characters.
        let t = &segment("I don’t")[1];
        assert_eq!((t.text, t.span), ("don’t", (2, 7)));
        let spans: Vec<(usize, usize)> = t.words.iter().map(|w| (w.start, w.end)).collect();
        assert_eq!(spans, [(2, 4), (4, 7)]);
    }

    #[test]
    fn numbers_urls_addresses_and_emoticons_stay_whole() {
        check(
            "3.5 1,000 11:30 -5 12/20/2000 713-853-3989 $3.50 50%",
            &[
                "3.5",
                "1,000",
                "11:30",
                "-5",
                "12/20/2000",
                "713-853-3989",
                "$",
                "3.50",
                "50",
                "%",
            ],
        );
        check(
            "see http://x.com/a?b=c, or <foo@bar.com>.",
            &[
                "see",
                "http://x.com/a?b=c",
                ",",
                "or",
                "<",
                "foo@bar.com",
                ">",
                ".",
            ],
        );
        check(
            "ok :) fine :-( <3 ;) great:) :).",
            &[
                "ok", ":)", "fine", ":-(", "<3", ";)", "great", ":)", ":)", ".",
            ],
        );
        check(
            "ENRON.XLS galleryfurniture.com #win @bob AT&T",
            &["ENRON.XLS", "galleryfurniture.com", "#win", "@bob", "AT&T"],
        );
    }

    #[test]
    fn abbreviations_keep_their_period_except_at_the_end() {
        check(
            "e.g. the U.S. and Mr. W. Bush etc. all",
            &[
                "e.g.", "the", "U.S.", "and", "Mr.", "W.", "Bush", "etc.", "all",
            ],
        );
        // Last in the text the period is the sentence's full stop.
        check("and so on etc.", &["and", "so", "on", "etc", "."]);
        check("in the U.S.)", &["in", "the", "U.S", ".", ")"]);
        // `No.` is an abbreviation, `no.` a word and a period.
        check(
            "No. 5 said no. Then",
            &["No.", "5", "said", "no", ".", "Then"],
        );
        check("a T.V.? yes", &["a", "T.V.", "?", "yes"]);
    }

    #[test]
    fn hyphens_split_as_ewt_does() {
        check(
            "long-term Al-Qaeda 1969-1970 F-102 state-of-the-art",
            &[
                "long", "-", "term", "Al", "-", "Qaeda", "1969", "-", "1970", "F", "-", "102",
                "state", "-", "of", "-", "the", "-", "art",
            ],
        );
        check(
            "e-mail non-stop re-read x3-9890 ld2d-#69366-1.DOC 5:00-8:30",
            &[
                "e-mail",
                "non-stop",
                "re-read",
                "x3-9890",
                "ld2d-#69366-1.DOC",
                "5:00",
                "-",
                "8:30",
            ],
        );
        check("socio- and -ish", &["socio", "-", "and", "-", "ish"]);
    }

    #[test]
    fn units_are_split_from_numbers() {
        check(
            "5kg at 11:30am for $3M in the 1980s, 3rd B2B",
            &[
                "5", "kg", "at", "11:30", "am", "for", "$", "3", "M", "in", "the", "1980s", ",",
                "3rd", "B2B",
            ],
        );
    }

    #[test]
    fn tags_and_entities_stay_units() {
        check(
            "<b>Paris</b> &amp; AT&amp;T a<br/>b <a href=\"x\">here</a>!",
            &[
                "<b>",
                "Paris",
                "</b>",
                "&amp;",
                "AT&amp;T",
                "a",
                "<br/>",
                "b",
                "<a",
                "href=\"x\">",
                "here",
                "</a>",
                "!",
            ],
        );
    }

    #[test]
    fn spans_are_character_offsets_that_slice_the_text() {
        let text = "  Zürich’s café—nice,\t\u{a0}isn’t it? 👍🏼!";
        let words = words(text);
        let shown: Vec<&str> = words.iter().map(|w| w.text).collect();
        assert_eq!(
            shown,
            [
                "Zürich", "’s", "café", "—", "nice", ",", "is", "n’t", "it", "?", "👍🏼", "!"
            ]
        );
        for w in &words {
            assert_eq!(char_slice(text, w.start, w.end), w.text);
        }
        assert_eq!((words[0].start, words[0].end), (2, 8));
    }

    /// Invariants on many generated texts: the words tile every chunk (no
    /// character lost, none twice, none of them whitespace), in order, and
    /// a token's words tile the token.
    #[test]
    fn words_tile_the_text_whatever_it_holds() {
        let alphabet: Vec<char> =
            "aZé9.,;:!?'\"`’‘“”()[]{}<>-–—_=+*~^|/\\#@$%&👍\u{200b} \tntsmhttp://w.co"
                .chars()
                .collect();
        // A fixed xorshift sequence: the same texts on every run.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let n = (next() % 24) as usize;
            let text: String = (0..n)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let chars: Vec<char> = text.chars().collect();
            let mut at = 0;
            for t in segment(&text) {
                assert_eq!(t.words[0].start, t.span.0, "{text:?}");
                assert_eq!(t.words.last().map(|w| w.end), Some(t.span.1), "{text:?}");
                assert_eq!(char_slice(&text, t.span.0, t.span.1), t.text, "{text:?}");
                for w in &t.words {
                    assert!(at <= w.start && w.start < w.end, "{text:?}");
                    assert!(chars[at..w.start].iter().all(|c| c.is_whitespace()));
                    assert!(!w.text.contains(char::is_whitespace), "{text:?}");
                    assert_eq!(char_slice(&text, w.start, w.end), w.text, "{text:?}");
                    at = w.end;
                }
            }
            assert!(chars[at..].iter().all(|c| c.is_whitespace()), "{text:?}");
        }
    }

    /// A chunk split at every other character takes no recursion and no
    /// quadratic rescans (this would run for minutes otherwise).
    #[test]
    fn a_huge_chunk_is_split_in_one_pass() {
        let text = "a,".repeat(100_000);
        assert_eq!(words(&text).len(), 200_000);
        let text = "-a".repeat(100_000) + &")]".repeat(50_000);
        assert_eq!(words(&text).len(), 300_000);
    }
}
