//! Long examples as overlapping windows of whole words
//! (`tokenize.truncation = "window"`). The tokenize stage and `mtl-predict`
//! both go through [`encode_examples`], so a text is cut into the same
//! windows at training and at prediction time; which window scores which
//! word is [`mtl_core::align::window_scoring`].

use std::ops::Range;

use mtl_core::config::Truncation;
use tokenizers::Tokenizer;

use crate::encode::{Encoded, encode_batch_words};
use crate::error::Result;

/// One example as the rows it becomes: a single window with
/// `truncation = "cut"` (or when it fits), else its windows in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Windowed {
    pub windows: Vec<Encoded>,
    /// Words longer than a whole window, whose last sub-tokens were cut
    /// (window mode only; their first sub-token, and so their label, stays).
    pub cut_words: usize,
}

impl Windowed {
    /// Words that lost every sub-token to truncation (cut mode only).
    pub fn lost_words(&self) -> usize {
        self.windows.iter().map(|w| w.truncated_words).sum()
    }

    /// Whether truncation took anything away: whole words (cut) or the
    /// tails of words longer than a window (window).
    pub fn truncated(&self) -> bool {
        self.lost_words() > 0 || self.cut_words > 0
    }
}

/// Plans the windows of one example from the number of sub-tokens of each
/// word: contiguous word ranges, each fitting `budget` sub-tokens (the
/// maximum length less the special tokens), the first starting at word 0
/// and the last ending at the last word. Each window shares up to `stride`
/// words with the previous one (fewer where the shared words and the next
/// new word would not fit) and holds at least one word the previous one did
/// not, so windows always advance. A word alone longer than `budget` gets a
/// window of its own, which the caller cuts. An example that fits is one
/// window; an example without words is the one window `0..0`.
pub fn plan_windows(word_lens: &[usize], budget: usize, stride: usize) -> Vec<Range<usize>> {
    let n = word_lens.len();
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        // As many words as fit, and at least one.
        let (mut end, mut used) = (start, 0);
        while end < n && (end == start || used + word_lens[end] <= budget) {
            used += word_lens[end];
            end += 1;
        }
        out.push(start..end);
        if end >= n {
            return out;
        }
        // The next window must hold word `end`: give up shared words from
        // the front until it fits beside them.
        let mut next = end.saturating_sub(stride).max(start + 1);
        let mut shared: usize = word_lens[next..end].iter().sum();
        while next < end && shared + word_lens[end] > budget {
            shared -= word_lens[next];
            next += 1;
        }
        start = next;
    }
}

/// Cuts one untruncated encoding (special tokens included) into windows
/// of at most `max_length` sub-tokens, each keeping the encoding's leading
/// and trailing special tokens around a run of whole words planned by
/// [`plan_windows`]. `word_ids` stay the example's (absolute) word indices.
pub fn window_encoding(
    full: &Encoded,
    n_words: usize,
    max_length: usize,
    stride: usize,
) -> Windowed {
    let lead = full.word_ids.iter().take_while(|&&w| w < 0).count();
    if full.len() <= max_length || lead == full.len() {
        return Windowed {
            windows: vec![full.clone()],
            cut_words: 0,
        };
    }
    let tail = full.word_ids.iter().rev().take_while(|&&w| w < 0).count();
    let mut word_lens = vec![0usize; n_words];
    for &w in &full.word_ids {
        if let Some(n) = usize::try_from(w).ok().and_then(|w| word_lens.get_mut(w)) {
            *n += 1;
        }
    }
    // Never less than one sub-token of content, even if the specials alone
    // fill `max_length` (the config keeps max_length >= 4).
    let budget = max_length.saturating_sub(lead + tail).max(1);
    let content = lead..full.len() - tail;
    let mut out = Windowed::default();
    for words in plan_windows(&word_lens, budget, stride) {
        let mut picked: Vec<usize> = content
            .clone()
            .filter(|&p| usize::try_from(full.word_ids[p]).is_ok_and(|w| words.contains(&w)))
            .collect();
        if picked.len() > budget {
            // Only a single word can overflow its window.
            picked.truncate(budget);
            out.cut_words += 1;
        }
        let mut e = Encoded::default();
        for p in (0..lead).chain(picked).chain(full.len() - tail..full.len()) {
            e.input_ids.push(full.input_ids[p]);
            e.word_ids.push(full.word_ids[p]);
            e.offsets.push(full.offsets[p]);
        }
        out.windows.push(e);
    }
    out
}

/// Encodes examples (pre-tokenized words) in parallel and applies the
/// configured truncation: `cut` keeps the first `max_length` sub-tokens of
/// each; `window` cuts longer ones into windows sharing `stride` words.
pub fn encode_examples(
    tok: &Tokenizer,
    batch: &[Vec<String>],
    max_length: usize,
    truncation: Truncation,
    stride: usize,
) -> Result<Vec<Windowed>> {
    Ok(match truncation {
        Truncation::Cut => encode_batch_words(tok, batch, max_length)?
            .into_iter()
            .map(|e| Windowed {
                windows: vec![e],
                cut_words: 0,
            })
            .collect(),
        Truncation::Window => encode_batch_words(tok, batch, usize::MAX)?
            .iter()
            .zip(batch)
            .map(|(e, words)| window_encoding(e, words.len(), max_length, stride))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fitting_example_is_one_window() {
        assert_eq!(plan_windows(&[1, 2, 3], 6, 2), vec![0..3]);
        assert_eq!(plan_windows(&[], 6, 2), vec![0..0]);
    }

    #[test]
    fn windows_share_stride_words_and_advance() {
        // Ten one-token words, four per window, two shared.
        assert_eq!(plan_windows(&[1; 10], 4, 2), vec![0..4, 2..6, 4..8, 6..10]);
        // Without stride the windows touch.
        assert_eq!(plan_windows(&[1; 10], 4, 0), vec![0..4, 4..8, 8..10]);
    }

    #[test]
    fn shared_words_shrink_when_the_next_word_is_long() {
        // Window 0..3 holds 3 tokens; word 3 has 3 tokens, so only one
        // shared word fits beside it.
        assert_eq!(plan_windows(&[1, 1, 1, 3], 4, 2), vec![0..3, 2..4]);
    }

    #[test]
    fn an_overlong_word_gets_a_window_of_its_own() {
        assert_eq!(plan_windows(&[1, 9, 1], 4, 1), vec![0..1, 1..2, 2..3]);
        let full = Encoded {
            input_ids: vec![2, 10, 11, 12, 13, 14, 15, 16, 3],
            word_ids: vec![-1, 0, 1, 1, 1, 1, 1, 2, -1],
            offsets: vec![(0, 0); 9],
            truncated_words: 0,
        };
        let w = window_encoding(&full, 3, 5, 1);
        assert_eq!(w.cut_words, 1);
        let ids: Vec<Vec<u32>> = w.windows.iter().map(|e| e.input_ids.clone()).collect();
        assert_eq!(
            ids,
            vec![vec![2, 10, 3], vec![2, 11, 12, 13, 3], vec![2, 16, 3]]
        );
        assert_eq!(w.windows[1].word_ids, vec![-1, 1, 1, 1, -1]);
        assert!(w.truncated() && w.lost_words() == 0);
    }

    #[test]
    fn windows_keep_specials_and_absolute_word_ids() {
        let full = Encoded {
            input_ids: vec![2, 10, 11, 12, 13, 14, 15, 3],
            word_ids: vec![-1, 0, 1, 1, 2, 3, 4, -1],
            offsets: vec![(0, 0); 8],
            truncated_words: 0,
        };
        let w = window_encoding(&full, 5, 5, 1);
        let ids: Vec<Vec<i32>> = w.windows.iter().map(|e| e.word_ids.clone()).collect();
        // Three sub-tokens between the specials; word 1 has two.
        assert_eq!(
            ids,
            vec![
                vec![-1, 0, 1, 1, -1],
                vec![-1, 1, 1, 2, -1],
                vec![-1, 2, 3, 4, -1]
            ]
        );
        assert_eq!(w.cut_words, 0);
        assert!(w.windows.iter().all(|e| e.len() <= 5));
        // Fits: returned unchanged.
        assert_eq!(window_encoding(&full, 5, 8, 1).windows, vec![full]);
    }
}
