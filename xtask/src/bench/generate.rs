//! The benchmark input: the sample reviews repeated until the file reaches
//! a target size, each copy varied so that most rows stay distinct.
//!
//! Copy 0 is the sample verbatim. Every later copy gives each row a new id
//! (`<id>-c<copy>`) and inserts one word, which names the copy, at a
//! position drawn from a seeded generator; a row with token tags gets an
//! `O` tag at the same position, so tags stay exactly as aligned (or as
//! misaligned) as in the sample. The generator's seed comes from the row's
//! text with case, punctuation and HTML entities left out, so the sample's
//! exact and near duplicates (and its conflicting duplicates) stay
//! duplicates of each other within a copy and the quarantine paths run at
//! scale. Lines that are not JSON objects are kept, with their id renamed
//! when it can be found.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Bumped when the output changes for the same sample, so a cached file
/// from an older generator is written again.
pub const GENERATOR_VERSION: u32 = 1;
/// Mixed into every row's seed.
const SEED: u64 = 0x6d74_6c2d_6265_6e63;
/// The text key used for tokens (mtl's datasets use `text` and `ner`).
const TEXT: &str = "text";
const ID: &str = "id";
/// What the inserted word carries around the copy number.
const PREFIXES: [&str; 5] = ["", "#", "$", "x", "no."];
const SUFFIXES: [&str; 5] = ["", "x", "th", "%", "!"];

use mtl_core::rng::SplitMix64;

/// Uniform enough in `0..n` for choosing positions (`n > 0`). Modulo, not
/// `SplitMix64::below`: the generated files must stay as they were.
fn pick(rng: &mut SplitMix64, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// FNV-1a: a stable hash (std's hasher may change between releases).
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The text as near-duplicate detection sees it, roughly: HTML entities
/// dropped, then only letters and digits, lowercased. Equal keys give
/// equal variations.
fn seed_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '&'
            && let Some(end) = rest[1..].find(';')
        {
            let name = &rest[1..=end];
            if !name.is_empty()
                && name.len() <= 10
                && name.chars().all(|c| c == '#' || c.is_ascii_alphanumeric())
            {
                rest = &rest[end + 2..];
                continue;
            }
        }
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// One line of the sample, parsed once.
#[derive(Debug, Clone)]
pub struct SampleLine {
    raw: String,
    object: Option<Map<String, Value>>,
}

impl SampleLine {
    pub fn parse(raw: &str) -> Self {
        Self {
            raw: raw.to_string(),
            object: serde_json::from_str(raw).ok(),
        }
    }

    /// The line as it appears in copy `copy` (no trailing newline).
    /// `tag_columns` hold one tag per word (the token tasks' columns).
    pub fn variant(&self, copy: u64, tag_columns: &[String]) -> String {
        if copy == 0 {
            return self.raw.clone();
        }
        let Some(obj) = &self.object else {
            return rename_raw_id(&self.raw, copy);
        };
        let mut obj = obj.clone();
        match obj.get_mut(ID) {
            Some(Value::String(s)) => *s = format!("{s}-c{copy}"),
            Some(v @ Value::Number(_)) => *v = Value::String(format!("{v}-c{copy}")),
            _ => {}
        }
        if let Some(Value::String(text)) = obj.get(TEXT) {
            let starts = token_starts(text);
            // Blank texts stay blank: they exercise the `empty` path.
            if !starts.is_empty() {
                let mut rng = SplitMix64::new(
                    SEED ^ fnv1a(seed_key(text).bytes()) ^ copy.wrapping_mul(0x2545_f491_4f6c_dd1d),
                );
                let pos = pick(&mut rng, starts.len() + 1);
                let word = format!(
                    "{}{copy}{}",
                    PREFIXES[pick(&mut rng, PREFIXES.len())],
                    SUFFIXES[pick(&mut rng, SUFFIXES.len())]
                );
                let text = insert_word(text, &starts, pos, &word);
                obj.insert(TEXT.into(), Value::String(text));
                for column in tag_columns {
                    if let Some(Value::Array(tags)) = obj.get_mut(column) {
                        // A list one tag short or long stays as wrong as it was.
                        let at = pos.min(tags.len());
                        tags.insert(at, Value::String("O".into()));
                    }
                }
            }
        }
        // A map of JSON values always serializes.
        serde_json::to_string(&obj).unwrap_or_else(|_| self.raw.clone())
    }
}

/// Byte offsets where each whitespace-separated token starts, as
/// `str::split_whitespace` splits.
fn token_starts(text: &str) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut in_token = false;
    for (i, c) in text.char_indices() {
        let ws = c.is_whitespace();
        if !ws && !in_token {
            starts.push(i);
        }
        in_token = !ws;
    }
    starts
}

/// Inserts `word` as token `pos`, keeping the text's own spacing.
fn insert_word(text: &str, starts: &[usize], pos: usize, word: &str) -> String {
    let mut out = String::with_capacity(text.len() + word.len() + 1);
    match starts.get(pos) {
        Some(&at) => {
            out.push_str(&text[..at]);
            out.push_str(word);
            out.push(' ');
            out.push_str(&text[at..]);
        }
        None => {
            out.push_str(text);
            out.push(' ');
            out.push_str(word);
        }
    }
    out
}

/// `"id": "rev-00405"` → `"id": "rev-00405-c3"` in a line that is not JSON.
fn rename_raw_id(raw: &str, copy: u64) -> String {
    let key = "\"id\"";
    let Some(k) = raw.find(key) else {
        return raw.to_string();
    };
    let after = &raw[k + key.len()..];
    let Some(open) = after.find('"') else {
        return raw.to_string();
    };
    if !after[..open].trim().eq(":") {
        return raw.to_string();
    }
    let value_start = k + key.len() + open + 1;
    let Some(len) = raw[value_start..].find('"') else {
        return raw.to_string();
    };
    let end = value_start + len;
    format!("{}-c{copy}{}", &raw[..end], &raw[end..])
}

/// What one generation wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generated {
    pub generator_version: u32,
    /// sha256 of the sample the file was made from.
    pub sample_sha256: String,
    pub target_bytes: u64,
    pub tag_columns: Vec<String>,
    pub bytes: u64,
    pub lines: u64,
    pub copies: u64,
}

/// Writes copies of `sample` until at least `target_bytes` are written;
/// stops at a line end. Returns (bytes, lines, copies started).
pub fn write_copies(
    sample: &[SampleLine],
    tag_columns: &[String],
    target_bytes: u64,
    out: &mut impl Write,
) -> io::Result<(u64, u64, u64)> {
    let (mut bytes, mut lines, mut copy) = (0u64, 0u64, 0u64);
    if sample.is_empty() {
        return Ok((0, 0, 0));
    }
    while bytes < target_bytes {
        for line in sample {
            let l = line.variant(copy, tag_columns);
            out.write_all(l.as_bytes())?;
            out.write_all(b"\n")?;
            bytes += l.len() as u64 + 1;
            lines += 1;
            if bytes >= target_bytes {
                break;
            }
        }
        copy += 1;
    }
    Ok((bytes, lines, copy))
}

/// The sample's non-empty lines.
pub fn read_sample(path: &Path) -> Result<Vec<SampleLine>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(SampleLine::parse)
        .collect())
}

/// `<dir>/reviews-<N>mb.jsonl`, generated unless a file from the same
/// sample, target and generator version is already there (its size and a
/// sidecar `.meta.json` say so).
pub fn ensure(
    sample_path: &Path,
    tag_columns: &[String],
    dir: &Path,
    size_mb: u64,
) -> Result<(PathBuf, Generated)> {
    let path = dir.join(format!("reviews-{size_mb}mb.jsonl"));
    let meta_path = dir.join(format!("reviews-{size_mb}mb.meta.json"));
    let sample_sha256 = mtl_core::hash::sha256_file(sample_path)?;
    let target_bytes = size_mb * 1024 * 1024;
    if let Ok(meta) = mtl_core::fsio::read_json::<Generated>(&meta_path) {
        let size = std::fs::metadata(&path).map(|m| m.len()).ok();
        if meta.generator_version == GENERATOR_VERSION
            && meta.sample_sha256 == sample_sha256
            && meta.target_bytes == target_bytes
            && meta.tag_columns == tag_columns
            && size == Some(meta.bytes)
        {
            return Ok((path, meta));
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let sample = read_sample(sample_path)?;
    let partial = dir.join(format!(".reviews-{size_mb}mb.jsonl.partial"));
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut w = io::BufWriter::with_capacity(1 << 20, file);
    let (bytes, lines, copies) = write_copies(&sample, tag_columns, target_bytes, &mut w)
        .with_context(|| format!("writing {}", partial.display()))?;
    w.flush()
        .with_context(|| format!("writing {}", partial.display()))?;
    drop(w);
    std::fs::rename(&partial, &path)
        .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
    let meta = Generated {
        generator_version: GENERATOR_VERSION,
        sample_sha256,
        target_bytes,
        tag_columns: tag_columns.to_vec(),
        bytes,
        lines,
        copies,
    };
    mtl_core::fsio::write_json(&meta_path, &meta)?;
    Ok((path, meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const ROWS: &[&str] = &[
        r#"{"id": "rev-1", "text": "Love the  Apple Watch!", "sentiment": "positive", "ner": ["O", "O", "B-BRAND", "B-PRODUCT"], "aspects": ["price"]}"#,
        r#"{"id": "rev-2", "text": "love the apple watch", "sentiment": "positive", "ner": ["O", "O", "B-BRAND", "B-PRODUCT"]}"#,
        r#"{"id": "rev-3", "text": "can&#39;t  stop", "sentiment": "negative", "ner": ["O", "O"]}"#,
        r#"{"id": "rev-4", "text": "   ", "sentiment": "neutral", "ner": []}"#,
        r#"{"id": "rev-5", "text": "Audio keeps cutting"#,
        r#"{"id": "rev-6", "text": "no tags\there", "topic": "price"}"#,
    ];

    fn sample() -> Vec<SampleLine> {
        ROWS.iter().map(|l| SampleLine::parse(l)).collect()
    }

    fn tags() -> Vec<String> {
        vec!["ner".to_string()]
    }

    fn generate(target: u64) -> (Vec<u8>, u64, u64) {
        let mut out = Vec::new();
        let (bytes, lines, _) = write_copies(&sample(), &tags(), target, &mut out).unwrap();
        assert_eq!(bytes, out.len() as u64);
        (out, bytes, lines)
    }

    fn objects(bytes: &[u8]) -> Vec<Map<String, Value>> {
        std::str::from_utf8(bytes)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    #[test]
    fn output_is_deterministic_and_reaches_the_target() {
        let (a, bytes, lines) = generate(20_000);
        let (b, _, _) = generate(20_000);
        assert_eq!(a, b);
        assert!(bytes >= 20_000, "{bytes}");
        // Stops within one line of the target.
        assert!(bytes < 20_000 + 200, "{bytes}");
        assert_eq!(lines, a.iter().filter(|&&c| c == b'\n').count() as u64);
        // Copy 0 is the sample itself.
        let text = String::from_utf8(a).unwrap();
        assert!(text.starts_with(&(ROWS.join("\n") + "\n")));
    }

    #[test]
    fn ids_are_unique_and_rows_vary() {
        let (out, _, _) = generate(50_000);
        let objs = objects(&out);
        assert!(objs.len() > 300, "{}", objs.len());
        let ids: HashSet<&str> = objs.iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), objs.len());
        // Every non-blank text differs from copy to copy.
        let texts: Vec<&str> = objs
            .iter()
            .filter(|o| o["id"].as_str().unwrap().starts_with("rev-1"))
            .map(|o| o["text"].as_str().unwrap())
            .collect();
        let distinct: HashSet<&&str> = texts.iter().collect();
        assert_eq!(distinct.len(), texts.len());
        // The broken line is kept, its id renamed.
        let raw = String::from_utf8(out).unwrap();
        assert!(raw.contains("{\"id\": \"rev-5-c3\", \"text\": \"Audio keeps cutting\n"));
    }

    #[test]
    fn tags_stay_aligned_with_an_o_on_the_new_word() {
        let (out, _, _) = generate(50_000);
        let s = sample();
        let mut checked = 0;
        for o in objects(&out) {
            let id = o["id"].as_str().unwrap();
            let Some((orig, copy)) = id.split_once("-c") else {
                continue;
            };
            let src = s
                .iter()
                .find_map(|l| l.object.as_ref().filter(|m| m["id"] == orig))
                .unwrap();
            let new_words: Vec<&str> = o["text"].as_str().unwrap().split_whitespace().collect();
            let old_words: Vec<&str> = src["text"].as_str().unwrap().split_whitespace().collect();
            if old_words.is_empty() {
                assert!(new_words.is_empty());
                continue;
            }
            assert_eq!(new_words.len(), old_words.len() + 1);
            let pos = (0..new_words.len())
                .find(|&i| new_words[..i] == old_words[..i] && new_words[i + 1..] == old_words[i..])
                .unwrap();
            assert!(new_words[pos].contains(copy), "{new_words:?}");
            if let Some(Value::Array(tags)) = o.get("ner") {
                let old: Vec<&Value> = src["ner"].as_array().unwrap().iter().collect();
                assert_eq!(tags.len(), new_words.len());
                assert_eq!(tags[pos], "O");
                let rest: Vec<&Value> = tags
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != pos)
                    .map(|(_, t)| t)
                    .collect();
                assert_eq!(rest, old);
                checked += 1;
            }
            // A label list that is not a tag column is left alone.
            if orig == "rev-1" {
                assert_eq!(o["aspects"], serde_json::json!(["price"]));
            }
        }
        assert!(checked > 100, "{checked}");
    }

    #[test]
    fn the_real_sample_keeps_its_alignment_in_every_copy() {
        let path = crate::pipeline::workspace_root().join("data/sample/reviews.jsonl");
        let sample = read_sample(&path).unwrap();
        let aligned = |line: &str| -> Option<bool> {
            let o: Map<String, Value> = serde_json::from_str(line).ok()?;
            let words = o.get("text")?.as_str()?.split_whitespace().count();
            Some(o.get("ner")?.as_array()?.len() == words)
        };
        let mut ids = HashSet::new();
        for copy in 0..4 {
            for line in &sample {
                let v = line.variant(copy, &tags());
                assert_eq!(aligned(&v), aligned(&line.raw), "{v}");
                if let Ok(o) = serde_json::from_str::<Map<String, Value>>(&v) {
                    assert!(ids.insert(o["id"].to_string()), "{v}");
                }
            }
        }
    }

    #[test]
    fn misaligned_tags_stay_misaligned_by_the_same_amount() {
        let line = SampleLine::parse(r#"{"id": "x", "text": "a b c", "ner": ["O", "O"]}"#);
        for copy in 1..50 {
            let o: Map<String, Value> = serde_json::from_str(&line.variant(copy, &tags())).unwrap();
            let words = o["text"].as_str().unwrap().split_whitespace().count();
            assert_eq!(o["ner"].as_array().unwrap().len() + 1, words);
        }
    }

    #[test]
    fn duplicates_of_the_sample_stay_duplicates() {
        let s = sample();
        for copy in 1..20 {
            let v = |i: usize| -> Map<String, Value> {
                serde_json::from_str(&s[i].variant(copy, &tags())).unwrap()
            };
            let (a, b) = (v(0), v(1));
            // rev-1 and rev-2 differ only in case, spacing and punctuation.
            assert_eq!(
                seed_key(a["text"].as_str().unwrap()),
                seed_key(b["text"].as_str().unwrap())
            );
        }
        assert_eq!(seed_key("can&#39;t &amp; Won"), seed_key("can't & won"));
    }

    #[test]
    fn words_are_inserted_between_tokens() {
        let t = "  a\tb  ";
        let starts = token_starts(t);
        assert_eq!(starts, [2, 4]);
        assert_eq!(insert_word(t, &starts, 0, "X"), "  X a\tb  ");
        assert_eq!(insert_word(t, &starts, 1, "X"), "  a\tX b  ");
        assert_eq!(insert_word(t, &starts, 2, "X"), "  a\tb   X");
    }

    #[test]
    fn ensure_reuses_a_current_file() {
        let dir = tempfile::tempdir().unwrap();
        let sample_path = dir.path().join("s.jsonl");
        std::fs::write(&sample_path, ROWS.join("\n") + "\n").unwrap();
        let out = dir.path().join("out");
        let (path, meta) = ensure(&sample_path, &tags(), &out, 1).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), meta.bytes);
        assert!(meta.bytes >= 1024 * 1024);
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        let (_, again) = ensure(&sample_path, &tags(), &out, 1).unwrap();
        assert_eq!(again, meta);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
        // A truncated file is written again.
        std::fs::write(&path, "x").unwrap();
        let (_, third) = ensure(&sample_path, &tags(), &out, 1).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), third.bytes);
    }
}
