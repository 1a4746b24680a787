//! Token cleaning: the one definition of what cleaning does to a word.
//!
//! The stage and inference both go through [`token_expr`], a polars
//! expression over a column of whitespace-split tokens, so a word is
//! cleaned identically at training time and in `mtl-predict`. Cleaning works
//! on tokens, never on the running text: whitespace splits the raw text
//! into words first, which is what keeps per-word tags aligned.

use std::borrow::Cow;

use mtl_core::config::{CleanOptions, Normalization};
use polars::prelude::*;

use crate::error::{PolarsAt, Result};

/// Regular expressions (Rust `regex` syntax, as polars uses) of each step.
pub mod pattern {
    /// A whole tag inside one token: `<b>`, `</b>`, `<br/>`, `<p>`.
    pub const TAG: &str = r"</?[A-Za-z][A-Za-z0-9-]*(?:[\s/][^<>]*)?>";
    /// A token that only opens a tag whose attributes follow in the next
    /// tokens: the `<a` of `<a href="...">`.
    pub const TAG_HEAD: &str = r"^<[A-Za-z][A-Za-z0-9-]*$";
    /// The attribute that closes such a tag at the start of a token:
    /// `href="https://x.com">` in `href="https://x.com">link</a>`.
    pub const TAG_TAIL: &str = r#"^[A-Za-z_:][-A-Za-z0-9_:.]*=(?:"[^"]*"|'[^']*'|[^\s"'<>=]+)/?>"#;
    /// Control characters (whitespace cannot occur inside a token) and the
    /// zero-width characters that make equal words compare unequal.
    pub const CONTROL: &str = r"[\p{Cc}\x{200B}-\x{200D}\x{2060}\x{FEFF}]";
    /// A URL; trailing punctuation stays outside the mask.
    pub const URL: &str = r#"(?i)(?:https?://|ftp://|www\.)[^\s<>"']*[^\s<>"'.,;:!?)\]}]"#;
    pub const EMAIL: &str = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}";
    /// `@name` not preceded by a word character (that would be an address).
    pub const USER: &str = r"(^|[^\w@./])@\w+";
    /// Whitespace a step produced inside a token (`&nbsp;`, NFKC of `¨`):
    /// removed, because splitting the token would shift every later tag.
    pub const SPACE: &str = r"\s+";
}

pub const URL_MASK: &str = "<url>";
pub const EMAIL_MASK: &str = "<email>";
pub const USER_MASK: &str = "@user";

/// The cleaning of one token as a polars expression over a String column.
/// Steps run in this order: strip tags, unescape entities (so `&lt;b&gt;`
/// stays the literal text `<b>`), remove control and zero-width
/// characters, normalize, mask URLs, e-mails and users, lowercase. A token
/// may come out empty; callers decide what that means.
pub fn token_expr(token: Expr, opts: &CleanOptions) -> Expr {
    let mut e = token;
    if opts.strip_html {
        e = replace(e, pattern::TAG_TAIL, "");
        e = replace(e, pattern::TAG_HEAD, "");
        e = replace(e, pattern::TAG, "");
        // polars has no HTML unescape; this is the one UDF step.
        e = e.map(unescape_html, |_, field| Ok(field.clone()));
    }
    if opts.remove_control {
        e = replace(e, pattern::CONTROL, "");
    }
    e = match opts.normalize {
        Normalization::Nfc => e.str().normalize(UnicodeForm::NFC),
        Normalization::Nfkc => e.str().normalize(UnicodeForm::NFKC),
        Normalization::None => e,
    };
    if opts.mask_urls {
        e = replace(e, pattern::URL, URL_MASK);
    }
    if opts.mask_emails {
        e = replace(e, pattern::EMAIL, EMAIL_MASK);
    }
    if opts.mask_users {
        e = replace(e, pattern::USER, &format!("${{1}}{USER_MASK}"));
    }
    if opts.lowercase {
        e = e.str().to_lowercase();
    }
    replace(e, pattern::SPACE, "")
}

fn replace(e: Expr, pattern: &str, with: &str) -> Expr {
    e.str().replace_all(lit(pattern), lit(with), false)
}

fn unescape_html(c: Column) -> PolarsResult<Column> {
    let out = c.str()?.apply_values(html_escape::decode_html_entities);
    Ok(out.into_column())
}

/// Cleans one token exactly as the stage does. The result may be empty.
pub fn clean_token(token: &str, opts: &CleanOptions) -> String {
    // The expression is built from constant, tested patterns over a String
    // column, so evaluation cannot fail on any input text.
    try_clean_token(token, opts).expect("token cleaning expressions are valid for every string")
}

/// [`clean_token`] returning polars' error instead of panicking.
pub fn try_clean_token(token: &str, opts: &CleanOptions) -> Result<String> {
    let mut out = clean_column(&[token], opts)?;
    Ok(out.pop().unwrap_or_default())
}

/// Splits raw text on Unicode whitespace, cleans each token as the stage
/// does, and drops tokens that became empty. This is the inference path:
/// without labels there is nothing to keep aligned.
pub fn clean_words(raw_text: &str, opts: &CleanOptions) -> Vec<String> {
    // Same reasoning as in `clean_token`: no input can make this fail.
    try_clean_words(raw_text, opts).expect("token cleaning expressions are valid for every string")
}

/// [`clean_words`] returning polars' error instead of panicking.
pub fn try_clean_words(raw_text: &str, opts: &CleanOptions) -> Result<Vec<String>> {
    let tokens: Vec<&str> = raw_text.split_whitespace().collect();
    let mut words = clean_column(&tokens, opts)?;
    words.retain(|w| !w.is_empty());
    Ok(words)
}

/// [`clean_words`] for many texts in one polars query (the batch path for
/// prediction over a file).
pub fn clean_texts(texts: &[&str], opts: &CleanOptions) -> Result<Vec<Vec<String>>> {
    let mut owner = Vec::new();
    let mut tokens = Vec::new();
    for (i, t) in texts.iter().enumerate() {
        for tok in t.split_whitespace() {
            owner.push(i);
            tokens.push(tok);
        }
    }
    let cleaned = clean_column(&tokens, opts)?;
    let mut out = vec![Vec::new(); texts.len()];
    for (i, w) in owner.into_iter().zip(cleaned) {
        if !w.is_empty() {
            out[i].push(w);
        }
    }
    Ok(out)
}

const TOKEN: &str = "token";

fn clean_column(tokens: &[&str], opts: &CleanOptions) -> Result<Vec<String>> {
    let cleaned = clean_tokens(tokens, opts).ctx("cleaning tokens")?;
    Ok(cleaned.into_iter().map(Cow::into_owned).collect())
}

/// Whether [`token_expr`] leaves `token` as it is under `opts`, decided
/// without running it: every step needs a character that such a token
/// lacks. Tags need `<` (and `=`, `>`), entities `&`, removal a control,
/// zero-width or other non-ASCII character, normalization a non-ASCII one,
/// URLs `:` or `www.`, e-mails and users `@`, lowercasing an upper-case
/// letter, and whitespace removal whitespace. A new step in [`token_expr`]
/// must be reflected here (`fast_path_agrees_with_the_expression` checks
/// every one- and two-character token).
pub(crate) fn is_clean(token: &str, opts: &CleanOptions) -> bool {
    let bytes = token.as_bytes();
    let plain = bytes.iter().all(|&c| match c {
        b'a'..=b'z' | b'0'..=b'9' => true,
        b'A'..=b'Z' => !opts.lowercase,
        b'!' | b'"' | b'#' | b'$' | b'%' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'-'
        | b'.' | b';' | b'?' | b'[' | b'\\' | b']' | b'^' | b'_' | b'`' | b'{' | b'|' | b'}'
        | b'~' => true,
        _ => false,
    });
    plain
        && !bytes
            .windows(4)
            .any(|w| w[3] == b'.' && w[..3].eq_ignore_ascii_case(b"www"))
}

/// Cleans each token as [`token_expr`] does: the ones [`is_clean`] passes
/// come back borrowed, the rest go through one polars query together.
pub(crate) fn clean_tokens<'a>(
    tokens: &[&'a str],
    opts: &CleanOptions,
) -> PolarsResult<Vec<Cow<'a, str>>> {
    let mut out: Vec<Cow<'a, str>> = Vec::with_capacity(tokens.len());
    let mut todo: Vec<&str> = Vec::new();
    let mut at: Vec<usize> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        out.push(Cow::Borrowed(t));
        if !is_clean(t, opts) {
            todo.push(t);
            at.push(i);
        }
    }
    if todo.is_empty() {
        return Ok(out);
    }
    let df = DataFrame::new(todo.len(), vec![Column::new(TOKEN.into(), todo)])?;
    let cleaned = df.lazy().select([token_expr(col(TOKEN), opts)]).collect()?;
    let ca = cleaned.column(TOKEN)?.str()?;
    for (i, t) in at.into_iter().zip(ca.iter()) {
        out[i] = Cow::Owned(t.unwrap_or_default().to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> CleanOptions {
        CleanOptions::default()
    }

    fn all_masks() -> CleanOptions {
        CleanOptions {
            mask_urls: true,
            mask_emails: true,
            mask_users: true,
            ..CleanOptions::default()
        }
    }

    fn tok(s: &str) -> String {
        clean_token(s, &opts())
    }

    #[test]
    fn patterns_compile() {
        for p in [
            pattern::TAG,
            pattern::TAG_HEAD,
            pattern::TAG_TAIL,
            pattern::CONTROL,
            pattern::URL,
            pattern::EMAIL,
            pattern::USER,
            pattern::SPACE,
        ] {
            regex::Regex::new(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        }
    }

    #[test]
    fn html_entities_are_unescaped() {
        assert_eq!(tok("Tom&amp;Jerry"), "Tom&Jerry");
        assert_eq!(tok("&quot;great&quot;"), "\"great\"");
        assert_eq!(tok("don&#39;t"), "don't");
        assert_eq!(tok("it&#x27;s"), "it's");
        // NBSP would split the token; it is removed instead.
        assert_eq!(tok("a&nbsp;b"), "ab");
        assert_eq!(tok("&nbsp;"), "");
    }

    #[test]
    fn tags_are_stripped_before_unescaping() {
        assert_eq!(tok("<b>bold</b>"), "bold");
        assert_eq!(tok("end.<br/>"), "end.");
        assert_eq!(tok("<br/>"), "");
        assert_eq!(tok("<p>Hello"), "Hello");
        // An escaped tag is text the author wrote, not markup.
        assert_eq!(tok("&lt;b&gt;"), "<b>");
        // `<a href="...">link</a>` spans tokens.
        assert_eq!(tok("<a"), "");
        assert_eq!(tok(r#"href="https://x.com/a">link</a>"#), "link");
        // Not tags.
        assert_eq!(tok("<3"), "<3");
        assert_eq!(tok("a<b"), "a<b");
        assert_eq!(tok("x>y"), "x>y");
    }

    #[test]
    fn html_off_keeps_markup() {
        let o = CleanOptions {
            strip_html: false,
            ..opts()
        };
        assert_eq!(clean_token("<b>x&amp;y</b>", &o), "<b>x&amp;y</b>");
    }

    #[test]
    fn zero_width_and_control_chars_are_removed() {
        assert_eq!(tok("zero\u{200b}width"), "zerowidth");
        assert_eq!(tok("\u{feff}bom"), "bom");
        assert_eq!(tok("a\u{200c}b\u{200d}c\u{2060}d"), "abcd");
        assert_eq!(tok("bell\u{7}"), "bell");
        assert_eq!(tok("\u{200b}"), "");
        let keep = CleanOptions {
            remove_control: false,
            ..opts()
        };
        assert_eq!(clean_token("a\u{200b}b", &keep), "a\u{200b}b");
    }

    #[test]
    fn unicode_normalization() {
        assert_eq!(tok("cafe\u{301}"), "caf\u{e9}");
        let nfkc = CleanOptions {
            normalize: Normalization::Nfkc,
            ..opts()
        };
        assert_eq!(clean_token("\u{fb01}ne", &nfkc), "fine");
        assert_eq!(clean_token("\u{ff21}", &nfkc), "A");
        // NFKC of U+00A8 starts with a space; it must not survive in a token.
        assert!(!clean_token("a\u{a8}", &nfkc).contains(' '));
        let none = CleanOptions {
            normalize: Normalization::None,
            ..opts()
        };
        assert_eq!(clean_token("cafe\u{301}", &none), "cafe\u{301}");
    }

    #[test]
    fn urls_emails_and_users_are_masked() {
        let o = all_masks();
        assert_eq!(clean_token("https://x.com/a.", &o), "<url>.");
        assert_eq!(clean_token("(http://example.org/p?q=1)", &o), "(<url>)");
        assert_eq!(clean_token("www.shop.com,", &o), "<url>,");
        assert_eq!(clean_token("HTTPS://X.COM", &o), "<url>");
        assert_eq!(clean_token("bob.smith@mail.co.uk.", &o), "<email>.");
        assert_eq!(clean_token("@jane_doe:", &o), "@user:");
        assert_eq!(clean_token("(@jane)", &o), "(@user)");
        assert_eq!(clean_token("https://medium.com/@bob", &o), "<url>");
        // Masks are off by default.
        assert_eq!(tok("https://x.com"), "https://x.com");
        assert_eq!(tok("@jane"), "@jane");
        // Plain words are untouched.
        assert_eq!(clean_token("Battery", &o), "Battery");
    }

    #[test]
    fn lowercase_keeps_masks() {
        let o = CleanOptions {
            lowercase: true,
            mask_urls: true,
            ..opts()
        };
        assert_eq!(clean_token("GREAT", &o), "great");
        assert_eq!(clean_token("Https://X.com", &o), "<url>");
        assert_eq!(tok("GREAT"), "GREAT");
    }

    #[test]
    fn clean_words_drops_emptied_tokens() {
        let words = clean_words(
            "  Great \u{200b} <br/> phone!\tcafe\u{301} &amp;\n",
            &opts(),
        );
        assert_eq!(words, ["Great", "phone!", "caf\u{e9}", "&"]);
        assert!(clean_words("", &opts()).is_empty());
        assert!(clean_words(" <br/> ", &opts()).is_empty());
    }

    #[test]
    fn batch_matches_single() {
        let o = all_masks();
        let texts = ["A <b>b</b> https://x.y", "", "@u  x\u{200b}", "<br/>"];
        let batch = clean_texts(&texts, &o).unwrap();
        let single: Vec<_> = texts.iter().map(|t| clean_words(t, &o)).collect();
        assert_eq!(batch, single);
        assert_eq!(batch[0], ["A", "b", "<url>"]);
        assert!(batch[3].is_empty());
    }

    /// Every one- and two-character printable ASCII token, and longer ones
    /// around `www.`, under option sets that switch every step on: what
    /// [`is_clean`] passes, the expression leaves alone.
    #[test]
    fn fast_path_agrees_with_the_expression() {
        let ascii: Vec<char> = (b' '..=b'~').map(char::from).collect();
        let mut tokens: Vec<String> = ascii.iter().map(|c| c.to_string()).collect();
        for a in &ascii {
            for b in &ascii {
                tokens.push(format!("{a}{b}"));
            }
        }
        for t in [
            "www.x", "WwW.", "awww.b", "www", "ww.w", "x.www", "a-b_c.d", "it's!",
        ] {
            tokens.push(t.to_string());
        }
        let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let every = CleanOptions {
            mask_urls: true,
            mask_emails: true,
            mask_users: true,
            lowercase: true,
            normalize: Normalization::Nfkc,
            ..opts()
        };
        let mut passed = 0;
        for o in [opts(), all_masks(), every.clone()] {
            let df =
                DataFrame::new(tokens.len(), vec![Column::new(TOKEN.into(), &tokens)]).unwrap();
            let slow = df
                .lazy()
                .select([token_expr(col(TOKEN), &o)])
                .collect()
                .unwrap();
            let slow = slow.column(TOKEN).unwrap().str().unwrap();
            let fast = clean_tokens(&tokens, &o).unwrap();
            for (i, t) in tokens.iter().enumerate() {
                assert_eq!(Some(fast[i].as_ref()), slow.get(i), "{t:?}");
                if is_clean(t, &o) {
                    passed += 1;
                }
            }
        }
        assert!(passed > 10_000, "{passed}");
        assert!(is_clean("can't", &opts()) && !is_clean("Can't", &every));
        assert!(!is_clean("www.x", &opts()) && !is_clean("a:b", &opts()));
    }
}
