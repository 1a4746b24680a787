//! The character vocabulary of `tokenize.char_ids` (`tokenize/chars.json`),
//! for a character-level word encoder: fitted on the train split's words
//! only, like the sub-word tokenizer. It lives here, not in the tokenize
//! stage, because the model bundle carries it and predict replays it.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Characters and their ids. Id 0 is padding, 1 the unknown character;
/// `chars[i]` has id `i + 2`, most frequent first (ties in character
/// order).
///
/// `chars.json`:
///
/// ```json
/// {"lowercase": true, "max_word_chars": 16, "chars": ["e", "t", "a", "."]}
/// ```
///
/// `lowercase`: words are lowercased before lookup (the tokenizer's
/// `tokenize.lowercase`); `max_word_chars`: ids kept per word, the rest
/// cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "CharVocabFile", into = "CharVocabFile")]
pub struct CharVocab {
    pub lowercase: bool,
    pub max_word_chars: usize,
    pub chars: Vec<char>,
    index: HashMap<char, u32>,
}

/// The on-disk form, without the lookup index.
#[derive(Serialize, Deserialize)]
struct CharVocabFile {
    lowercase: bool,
    max_word_chars: usize,
    chars: Vec<char>,
}

impl From<CharVocabFile> for CharVocab {
    fn from(f: CharVocabFile) -> Self {
        CharVocab::new(f.chars, f.lowercase, f.max_word_chars)
    }
}

impl From<CharVocab> for CharVocabFile {
    fn from(v: CharVocab) -> Self {
        CharVocabFile {
            lowercase: v.lowercase,
            max_word_chars: v.max_word_chars,
            chars: v.chars,
        }
    }
}

impl CharVocab {
    pub const FILE: &'static str = "chars.json";
    pub const PAD: u32 = 0;
    pub const UNK: u32 = 1;

    /// A vocabulary over `chars` (in id order, from id 2).
    pub fn new(chars: Vec<char>, lowercase: bool, max_word_chars: usize) -> Self {
        let index = chars
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32 + 2))
            .collect();
        CharVocab {
            lowercase,
            max_word_chars,
            chars,
            index,
        }
    }

    /// Counts every character of `words` (lowercased with `lowercase`) and
    /// orders them by descending count, ties by character.
    pub fn fit<'a>(
        words: impl IntoIterator<Item = &'a String>,
        lowercase: bool,
        max_word_chars: usize,
    ) -> Self {
        let mut counts: HashMap<char, u64> = HashMap::new();
        for w in words {
            let w = Self::normalize(w, lowercase);
            for c in w.chars() {
                *counts.entry(c).or_default() += 1;
            }
        }
        let mut chars: Vec<(char, u64)> = counts.into_iter().collect();
        chars.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Self::new(
            chars.into_iter().map(|(c, _)| c).collect(),
            lowercase,
            max_word_chars,
        )
    }

    fn normalize(word: &str, lowercase: bool) -> std::borrow::Cow<'_, str> {
        if lowercase {
            word.to_lowercase().into()
        } else {
            word.into()
        }
    }

    /// Ids of the first `max_word_chars` characters of `word`.
    pub fn ids(&self, word: &str) -> Vec<u32> {
        Self::normalize(word, self.lowercase)
            .chars()
            .take(self.max_word_chars)
            .map(|c| self.index.get(&c).copied().unwrap_or(Self::UNK))
            .collect()
    }

    /// Ids including padding and unknown.
    pub fn len(&self) -> usize {
        self.chars.len() + 2
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn read(path: &Path) -> crate::Result<CharVocab> {
        crate::fsio::read_json(path)
    }

    pub fn write(&self, path: &Path) -> crate::Result<()> {
        crate::fsio::write_json(path, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn ids_follow_train_frequency_then_character_order() {
        let v = CharVocab::fit(&words(&["Abba", "cab", "ÉTÉ"]), true, 3);
        // a:3 b:3 é:2 c:1 t:1 — ties by character.
        assert_eq!(v.chars, vec!['a', 'b', 'é', 'c', 't']);
        assert_eq!(v.len(), 7);
        assert_eq!(v.ids("BAC"), vec![3, 2, 5]);
        assert_eq!(v.ids("été"), vec![4, 6, 4]);
        // Unknown characters get 1; long words keep their first chars.
        assert_eq!(v.ids("axbca"), vec![2, CharVocab::UNK, 3]);
        assert_eq!(v.ids(""), Vec::<u32>::new());
    }

    #[test]
    fn case_is_kept_without_lowercase() {
        let v = CharVocab::fit(&words(&["Aa", "a"]), false, 8);
        assert_eq!(v.chars, vec!['a', 'A']);
        assert_eq!(v.ids("aA"), vec![2, 3]);
    }

    #[test]
    fn chars_json_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CharVocab::FILE);
        let v = CharVocab::fit(&words(&["hello", "wörld"]), true, 4);
        v.write(&path).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["chars"][0], "l");
        assert_eq!(json["max_word_chars"], 4);
        assert_eq!(json.as_object().unwrap().len(), 3, "{json}");
        let back = CharVocab::read(&path).unwrap();
        assert_eq!(back, v);
        assert_eq!(back.ids("Lö"), v.ids("lö"));
    }
}
