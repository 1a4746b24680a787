//! Encoding pre-tokenized words into sub-token ids that remember their word.

use tokenizers::models::ModelWrapper;
use tokenizers::{EncodeInput, Encoding, InputSequence, Model, Tokenizer};

use crate::error::{Error, Result};

/// One example as sub-tokens, special tokens included, unpadded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoded {
    pub input_ids: Vec<u32>,
    /// Index of the word each sub-token comes from; -1 for special tokens.
    pub word_ids: Vec<i32>,
    /// Char offsets of each sub-token within its word; (0, 0) for specials.
    pub offsets: Vec<(usize, usize)>,
    /// Words that lost every sub-token to truncation.
    pub truncated_words: usize,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }

    fn push(&mut self, id: u32, word: i32, offsets: (usize, usize)) {
        self.input_ids.push(id);
        self.word_ids.push(word);
        self.offsets.push(offsets);
    }
}

/// Encodes one example's words (pre-tokenized input: the tokenizer may split
/// a word further, e.g. at punctuation, but every piece keeps the word's
/// index), adds the tokenizer's special tokens and truncates to
/// `max_length` sub-tokens, keeping the trailing special token(s).
///
/// A word the tokenizer turns into nothing (say, a lone combining accent
/// that the normalizer strips) gets one unknown token, so that every word
/// keeps a position to carry its label. The tokenizer is expected to have
/// padding off, as [`crate::load_pretrained`] and
/// [`crate::train_tokenizer`] leave it.
pub fn encode_words(tok: &Tokenizer, words: &[String], max_length: usize) -> Result<Encoded> {
    let enc = tok
        .encode_char_offsets(EncodeInput::Single(InputSequence::from(words)), true)
        .map_err(|e| Error::Encode {
            message: e.to_string(),
        })?;
    Ok(finish(&enc, words, unk_id(tok), max_length))
}

/// [`encode_words`] over many examples, in parallel (the tokenizers crate's
/// rayon pool; `TOKENIZERS_PARALLELISM=false` turns it off).
pub fn encode_batch_words(
    tok: &Tokenizer,
    batch: &[Vec<String>],
    max_length: usize,
) -> Result<Vec<Encoded>> {
    let inputs: Vec<EncodeInput> = batch
        .iter()
        .map(|w| EncodeInput::Single(InputSequence::from(w.as_slice())))
        .collect();
    let encs = tok
        .encode_batch_char_offsets(inputs, true)
        .map_err(|e| Error::Encode {
            message: e.to_string(),
        })?;
    let unk = unk_id(tok);
    Ok(encs
        .iter()
        .zip(batch)
        .map(|(e, w)| finish(e, w, unk, max_length))
        .collect())
}

/// Id of the tokenizer's unknown token, if its model has one.
pub fn unk_id(tok: &Tokenizer) -> Option<u32> {
    match tok.get_model() {
        ModelWrapper::WordPiece(m) => tok.token_to_id(&m.unk_token),
        ModelWrapper::WordLevel(m) => tok.token_to_id(&m.unk_token),
        ModelWrapper::BPE(m) => m.unk_token.as_deref().and_then(|t| tok.token_to_id(t)),
        // Unigram keeps its unk id private; a noncharacter is never a piece,
        // so it comes back as the unknown token (or as byte pieces, when
        // the model falls back to bytes and has no use for one).
        ModelWrapper::Unigram(m) => match m.tokenize("\u{10FFFF}").ok()?.as_slice() {
            [t] => Some(t.id),
            _ => None,
        },
    }
}

fn finish(enc: &Encoding, words: &[String], unk: Option<u32>, max_length: usize) -> Encoded {
    let ids = enc.get_ids();
    let offsets = enc.get_offsets();
    let n_words = words.len();
    let word_of: Vec<i32> = enc
        .get_word_ids()
        .iter()
        .map(|w| w.and_then(|w| i32::try_from(w).ok()).unwrap_or(-1))
        .collect();

    let mut has_token = vec![false; n_words];
    for &w in &word_of {
        if let Some(slot) = usize::try_from(w).ok().and_then(|w| has_token.get_mut(w)) {
            *slot = true;
        }
    }

    // Rebuild the sequence, slotting an unknown token in for each word that
    // produced none: before the next word's sub-tokens, or before the
    // trailing special tokens.
    let n = ids.len();
    // With no word token at all (every word vanished) the specials cannot
    // be told apart by position; templates end with one closing special
    // (`[SEP]`, `</s>`), so the fillers go before the last one.
    let tail_at = word_of
        .iter()
        .rposition(|&w| w >= 0)
        .map_or(n.saturating_sub(1), |p| p + 1);
    let mut out = Encoded::default();
    let mut next_word = 0usize;
    let fill_to = |out: &mut Encoded, upto: usize, next_word: &mut usize| {
        while *next_word < upto.min(n_words) {
            let w = *next_word;
            if let (false, Some(unk)) = (has_token[w], unk) {
                out.push(unk, w as i32, (0, words[w].chars().count()));
            }
            *next_word += 1;
        }
    };
    for p in 0..=n {
        if p == tail_at {
            fill_to(&mut out, n_words, &mut next_word);
        }
        if p == n {
            break;
        }
        if let Ok(w) = usize::try_from(word_of[p]) {
            fill_to(&mut out, w, &mut next_word);
            next_word = next_word.max(w + 1);
        }
        out.push(ids[p], word_of[p], offsets[p]);
    }

    let before = words_present(&out.word_ids, n_words);
    if out.len() > max_length {
        truncate(&mut out, max_length);
        let after = words_present(&out.word_ids, n_words);
        out.truncated_words = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| **b && !**a)
            .count();
    }
    out
}

fn words_present(word_ids: &[i32], n_words: usize) -> Vec<bool> {
    let mut present = vec![false; n_words];
    for &w in word_ids {
        if let Some(slot) = usize::try_from(w).ok().and_then(|w| present.get_mut(w)) {
            *slot = true;
        }
    }
    present
}

/// Cuts sub-tokens from the end of the content, keeping the trailing
/// special tokens (`[SEP]`), so the result is `max_length` long.
fn truncate(e: &mut Encoded, max_length: usize) {
    let len = e.len();
    let trailing = e.word_ids.iter().rev().take_while(|&&w| w < 0).count();
    let (head, tail_start) = if trailing < max_length {
        (max_length - trailing, len - trailing)
    } else {
        (max_length, len)
    };
    fn cut<T>(v: &mut Vec<T>, head: usize, tail_start: usize, max_length: usize) {
        v.drain(head..tail_start);
        v.truncate(max_length);
    }
    cut(&mut e.input_ids, head, tail_start, max_length);
    cut(&mut e.word_ids, head, tail_start, max_length);
    cut(&mut e.offsets, head, tail_start, max_length);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::tests::{config, corpus};
    use crate::train::{CLS, SEP};
    use mtl_core::config::TokenizerKind;

    fn tok() -> Tokenizer {
        crate::train_tokenizer(corpus().into_iter(), &config(TokenizerKind::Wordpiece, 90)).unwrap()
    }

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn word_ids_follow_words_split_into_several_sub_tokens() {
        let tok = tok();
        let ws = words(&["the", "unbelievable", "dogs,", "run"]);
        let e = encode_words(&tok, &ws, 128).unwrap();
        let tokens: Vec<String> = e
            .input_ids
            .iter()
            .map(|&i| tok.id_to_token(i).unwrap())
            .collect();
        assert_eq!(tokens.first().unwrap(), CLS);
        assert_eq!(tokens.last().unwrap(), SEP);
        assert_eq!(e.word_ids.first(), Some(&-1));
        assert_eq!(e.word_ids.last(), Some(&-1));
        let count = |w: i32| e.word_ids.iter().filter(|&&x| x == w).count();
        assert!(
            count(1) >= 2,
            "`unbelievable` splits with a small vocab: {tokens:?}"
        );
        assert!(count(2) >= 2, "`dogs,` splits at the comma: {tokens:?}");
        // Sub-tokens of a word are contiguous and in word order.
        let content: Vec<i32> = e.word_ids.iter().copied().filter(|&w| w >= 0).collect();
        assert!(content.windows(2).all(|p| p[0] <= p[1]), "{content:?}");
        assert_eq!(content.first(), Some(&0));
        assert_eq!(content.last(), Some(&3));
        // Offsets are chars within the word: the comma of `dogs,` is char 4.
        let comma = tokens.iter().position(|t| t == ",").unwrap();
        assert_eq!((e.word_ids[comma], e.offsets[comma]), (2, (4, 5)));
        assert_eq!(e.truncated_words, 0);
    }

    #[test]
    fn truncation_keeps_cls_and_sep_and_counts_lost_words() {
        let tok = tok();
        let ws = words(&["the", "dog", "runs", "home", "quickly", "unbelievable"]);
        let full = encode_words(&tok, &ws, 512).unwrap();
        assert!(full.len() > 6);
        let e = encode_words(&tok, &ws, 6).unwrap();
        assert_eq!(e.len(), 6);
        assert_eq!(tok.id_to_token(e.input_ids[0]).as_deref(), Some(CLS));
        assert_eq!(tok.id_to_token(e.input_ids[5]).as_deref(), Some(SEP));
        assert_eq!(e.input_ids[..5], full.input_ids[..5]);
        let kept: std::collections::BTreeSet<i32> =
            e.word_ids.iter().copied().filter(|&w| w >= 0).collect();
        assert_eq!(e.truncated_words, ws.len() - kept.len());
        assert!(e.truncated_words >= 2, "{:?}", e.word_ids);
        assert_eq!(e.word_ids.len(), e.offsets.len());
    }

    #[test]
    fn words_that_vanish_get_an_unknown_token() {
        let tok = tok();
        // A lone combining accent is stripped by the lowercasing normalizer.
        let ws = words(&["the", "\u{301}", "dog", "\u{301}"]);
        let e = encode_words(&tok, &ws, 128).unwrap();
        let unk = unk_id(&tok).unwrap();
        for w in [1, 3] {
            let at: Vec<usize> = (0..e.len()).filter(|&p| e.word_ids[p] == w).collect();
            assert_eq!(at.len(), 1, "{:?}", e.word_ids);
            assert_eq!((e.input_ids[at[0]], e.offsets[at[0]]), (unk, (0, 1)));
        }
        let content: Vec<i32> = e.word_ids.iter().copied().filter(|&w| w >= 0).collect();
        assert!(content.windows(2).all(|p| p[0] <= p[1]), "{content:?}");
        assert_eq!(e.word_ids.last(), Some(&-1));
    }

    #[test]
    fn empty_examples_are_just_specials() {
        let e = encode_words(&tok(), &[], 8).unwrap();
        assert_eq!(e.word_ids, vec![-1, -1]);
        assert_eq!(e.input_ids, vec![2, 3]);
    }

    #[test]
    fn batch_matches_single() {
        let tok = tok();
        let batch: Vec<Vec<String>> = corpus()
            .into_iter()
            .chain([words(&["x\u{301}", "ünknöwn", "!?"])])
            .collect();
        let many = encode_batch_words(&tok, &batch, 12).unwrap();
        for (ws, e) in batch.iter().zip(&many) {
            assert_eq!(&encode_words(&tok, ws, 12).unwrap(), e);
        }
    }

    #[test]
    fn unk_id_of_each_model_kind() {
        for kind in [
            TokenizerKind::Wordpiece,
            TokenizerKind::Bpe,
            TokenizerKind::Unigram,
        ] {
            let tok = crate::train_tokenizer(corpus().into_iter(), &config(kind, 100)).unwrap();
            assert_eq!(unk_id(&tok), Some(1), "{kind:?}");
        }
    }
}
