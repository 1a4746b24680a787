//! How word labels sit on sub-tokens. This is part of the contract between
//! tokenize (which aligns), and train, eval and predict (which read back):
//! a word's label lives on its first sub-token; other positions carry
//! [`crate::artifact::IGNORE_INDEX`] unless every sub-token is labelled.
//!
//! With `tokenize.truncation = "window"` a long example becomes several
//! windows (rows sharing its `id`), each holding a contiguous run of its
//! words; consecutive windows share some words. Every word is scored in
//! exactly one window, decided from the windows' word ranges alone
//! ([`scoring_ranges`]), so tokenize (which puts labels there) and eval and
//! predict (which read predictions back, [`scored_positions`]) agree
//! without any extra column.

use std::ops::Range;

/// For each word `0..n_words`, the position of its first sub-token, or
/// `None` if truncation dropped the word. `word_ids` uses -1 for special
/// tokens.
pub fn first_subtoken_positions(word_ids: &[i32], n_words: usize) -> Vec<Option<usize>> {
    let mut out = vec![None; n_words];
    for (pos, &w) in word_ids.iter().enumerate() {
        if w >= 0 && (w as usize) < n_words && out[w as usize].is_none() {
            out[w as usize] = Some(pos);
        }
    }
    out
}

/// The words a window holds: from its smallest to its largest word id;
/// `None` for a window of special tokens only (an example without words).
pub fn window_words(word_ids: &[i32]) -> Option<Range<usize>> {
    let mut words = word_ids.iter().filter_map(|&w| usize::try_from(w).ok());
    let first = words.next()?;
    let (lo, hi) = words.fold((first, first), |(lo, hi), w| (lo.min(w), hi.max(w)));
    Some(lo..hi + 1)
}

/// The words each window scores, given the words each window holds (in
/// window order, each starting after the previous one and overlapping it
/// or touching it). Of the words shared by two consecutive windows, the
/// first half (rounded down) is scored in the earlier window and the rest
/// in the later one, so every word between the first window's start and
/// the last window's end is scored exactly once, in a window that holds
/// it. The ranges are contiguous and in order; some may be empty.
pub fn scoring_ranges(windows: &[Range<usize>]) -> Vec<Range<usize>> {
    let mut out = Vec::with_capacity(windows.len());
    let mut start = windows.first().map_or(0, |w| w.start);
    for (k, w) in windows.iter().enumerate() {
        let end = match windows.get(k + 1) {
            Some(next) => {
                let shared = w.end.saturating_sub(next.start);
                (next.start + shared / 2).min(w.end)
            }
            None => w.end,
        }
        .max(start);
        out.push(start..end);
        start = end;
    }
    out
}

/// [`scoring_ranges`] of the windows of one example, each given by its
/// `word_ids` (in window order). A window without words holds the empty
/// range where the previous one ended.
pub fn window_scoring<W: AsRef<[i32]>>(windows: &[W]) -> Vec<Range<usize>> {
    let mut spans = Vec::with_capacity(windows.len());
    for w in windows {
        let prev_end = spans.last().map_or(0, |r: &Range<usize>| r.end);
        spans.push(window_words(w.as_ref()).unwrap_or(prev_end..prev_end));
    }
    scoring_ranges(&spans)
}

/// Per word `0..n_words` of an example cut into windows (`windows[k]` is
/// the `word_ids` of window `k`), the window that scores the word and the
/// position of the word's first sub-token there: where tokenize put the
/// word's label, and where a word's prediction is read. `None` for a word
/// no window scores (truncation cut it off).
pub fn scored_positions<W: AsRef<[i32]>>(
    windows: &[W],
    n_words: usize,
) -> Vec<Option<(usize, usize)>> {
    let mut out = vec![None; n_words];
    for (k, (w, scored)) in windows.iter().zip(window_scoring(windows)).enumerate() {
        let first = first_subtoken_positions(w.as_ref(), n_words);
        for word in scored.start.min(n_words)..scored.end.min(n_words) {
            out[word] = first[word].map(|p| (k, p));
        }
    }
    out
}

/// Merges per-position values (predictions, labels) of an example's
/// windows back into one value per word: each word's value is the one at
/// its first sub-token in the window that scores it ([`scored_positions`]).
/// `values[k]` runs parallel to `word_ids[k]`; `None` for words no window
/// scores or whose position lies beyond `values[k]`.
pub fn merge_windows<T: Clone, W: AsRef<[i32]>, V: AsRef<[T]>>(
    word_ids: &[W],
    values: &[V],
    n_words: usize,
) -> Vec<Option<T>> {
    scored_positions(word_ids, n_words)
        .into_iter()
        .map(|at| at.and_then(|(k, p)| values.get(k)?.as_ref().get(p).cloned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_positions_skip_specials_and_continuations() {
        // [CLS] un ##believ ##able day [SEP]
        let ids = [-1, 0, 0, 0, 1, -1];
        assert_eq!(
            first_subtoken_positions(&ids, 3),
            vec![Some(1), Some(4), None]
        );
    }

    #[test]
    fn window_words_span_the_word_ids() {
        assert_eq!(window_words(&[-1, 3, 3, 4, 6, -1]), Some(3..7));
        assert_eq!(window_words(&[-1, -1]), None);
    }

    #[test]
    fn shared_words_are_split_between_neighbours() {
        // 0..6 and 3..9 share 3, 4, 5: the earlier scores 3, the later 4, 5.
        assert_eq!(scoring_ranges(&[0..6, 3..9]), vec![0..4, 4..9]);
        // Two shared words: one each. Touching windows share none.
        assert_eq!(scoring_ranges(&[0..4, 2..7, 7..9]), vec![0..3, 3..7, 7..9]);
        let one = 0..5;
        assert_eq!(scoring_ranges(std::slice::from_ref(&one)), [one]);
        assert_eq!(scoring_ranges(&[]), Vec::<Range<usize>>::new());
    }

    #[test]
    fn scored_positions_read_each_word_from_its_scoring_window() {
        // Words 0..4 in two windows sharing words 1 and 2; word 2 splits.
        let w0 = vec![-1, 0, 1, 2, 2, -1];
        let w1 = vec![-1, 1, 2, 2, 3, -1];
        assert_eq!(
            scored_positions(&[w0, w1], 4),
            vec![Some((0, 1)), Some((0, 2)), Some((1, 2)), Some((1, 4))]
        );
        // One window: the first sub-token; words cut off are None.
        assert_eq!(
            scored_positions(&[[-1, 0, 0, 1, -1]], 3),
            vec![Some((0, 1)), Some((0, 3)), None]
        );
        let none: [[i32; 2]; 1] = [[-1, -1]];
        assert_eq!(scored_positions(&none, 0), vec![]);
    }

    #[test]
    fn merge_takes_each_word_from_its_scoring_window() {
        let ids = [vec![-1, 0, 1, 2, 2, -1], vec![-1, 1, 2, 2, 3, -1]];
        let preds = [vec![9, 10, 11, 12, 13, 9], vec![9, 21, 22, 23, 24, 9]];
        assert_eq!(
            merge_windows(&ids, &preds, 5),
            vec![Some(10), Some(11), Some(22), Some(24), None]
        );
    }
}
