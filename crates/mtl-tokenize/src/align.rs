//! Word labels on sub-tokens and back, following the contract in
//! [`mtl_core::align`]: a word's label sits on its first sub-token, in the
//! one window that scores the word.

use std::ops::Range;

use mtl_core::artifact::IGNORE_INDEX;

/// Spreads word labels over sub-tokens: the first sub-token of each word
/// gets the word's label; later sub-tokens get it too with `all_subtokens`,
/// [`IGNORE_INDEX`] otherwise. Special tokens (word id -1) and word ids
/// beyond `word_labels` always get [`IGNORE_INDEX`].
pub fn align_labels(word_labels: &[i32], word_ids: &[i32], all_subtokens: bool) -> Vec<i32> {
    align_scored(
        word_labels,
        word_ids,
        &(0..word_labels.len()),
        all_subtokens,
    )
}

/// [`align_labels`] for one window of an example: only the words in
/// `scored` (the window's range from [`mtl_core::align::window_scoring`])
/// carry labels; the window's other words get [`IGNORE_INDEX`], since
/// another window scores them.
pub fn align_scored(
    word_labels: &[i32],
    word_ids: &[i32],
    scored: &Range<usize>,
    all_subtokens: bool,
) -> Vec<i32> {
    let mut seen = vec![false; word_labels.len()];
    word_ids
        .iter()
        .map(|&w| {
            let Some(w) = usize::try_from(w)
                .ok()
                .filter(|&w| w < word_labels.len() && scored.contains(&w))
            else {
                return IGNORE_INDEX;
            };
            if !seen[w] {
                seen[w] = true;
                word_labels[w]
            } else if all_subtokens {
                word_labels[w]
            } else {
                IGNORE_INDEX
            }
        })
        .collect()
}

/// Aligns word labels to every window of an example (`word_ids[k]` is
/// window `k`'s), each window labelling the words it scores.
pub fn align_windows<W: AsRef<[i32]>>(
    word_labels: &[i32],
    word_ids: &[W],
    all_subtokens: bool,
) -> Vec<Vec<i32>> {
    let scoring = mtl_core::align::window_scoring(word_ids);
    word_ids
        .iter()
        .zip(&scoring)
        .map(|(ids, scored)| align_scored(word_labels, ids.as_ref(), scored, all_subtokens))
        .collect()
}

/// Reads word labels back from sub-token labels (e.g. predictions): the
/// label of each word's first sub-token, `None` for words that truncation
/// dropped.
pub fn unalign(sub_labels: &[i32], word_ids: &[i32], n_words: usize) -> Vec<Option<i32>> {
    mtl_core::align::first_subtoken_positions(word_ids, n_words)
        .into_iter()
        .map(|pos| pos.and_then(|p| sub_labels.get(p).copied()))
        .collect()
}

/// [`unalign`] over an example's windows: each word's label from the
/// window that scores it ([`mtl_core::align::merge_windows`]).
pub fn unalign_windows<W: AsRef<[i32]>, L: AsRef<[i32]>>(
    sub_labels: &[L],
    word_ids: &[W],
    n_words: usize,
) -> Vec<Option<i32>> {
    mtl_core::align::merge_windows(word_ids, sub_labels, n_words)
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use mtl_core::config::TokenizerKind;
    use proptest::prelude::*;
    use tokenizers::Tokenizer;

    use super::*;
    use crate::train::tests::{config, corpus};
    use crate::{encode_examples, encode_words};
    use mtl_core::config::Truncation;

    #[test]
    fn first_subtoken_carries_the_label() {
        // [CLS] un ##believ ##able day [SEP]
        let ids = [-1, 0, 0, 0, 1, -1];
        assert_eq!(
            align_labels(&[4, 7], &ids, false),
            vec![-100, 4, -100, -100, 7, -100]
        );
        assert_eq!(
            align_labels(&[4, 7], &ids, true),
            vec![-100, 4, 4, 4, 7, -100]
        );
        assert_eq!(
            unalign(&[-100, 4, 9, 9, 7, -100], &ids, 3),
            vec![Some(4), Some(7), None]
        );
    }

    #[test]
    fn each_window_labels_only_the_words_it_scores() {
        // Words 0..4; the windows share words 1 and 2: the first scores 1,
        // the second 2.
        let ids = [vec![-1, 0, 1, 2, 2, -1], vec![-1, 1, 2, 2, 3, -1]];
        let labels = [5, 6, 7, 8];
        assert_eq!(
            align_windows(&labels, &ids, false),
            vec![
                vec![-100, 5, 6, -100, -100, -100],
                vec![-100, -100, 7, -100, 8, -100]
            ]
        );
        assert_eq!(
            align_windows(&labels, &ids, true),
            vec![
                vec![-100, 5, 6, -100, -100, -100],
                vec![-100, -100, 7, 7, 8, -100]
            ]
        );
        let back = unalign_windows(&align_windows(&labels, &ids, false), &ids, 4);
        assert_eq!(back, vec![Some(5), Some(6), Some(7), Some(8)]);
    }

    fn tokenizer() -> &'static Tokenizer {
        static TOK: OnceLock<Tokenizer> = OnceLock::new();
        // A small vocabulary, so that many words split into several pieces.
        TOK.get_or_init(|| {
            crate::train_tokenizer(corpus().into_iter(), &config(TokenizerKind::Wordpiece, 70))
                .unwrap()
        })
    }

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            // Seen words, words that split into several sub-tokens, words
            // with glued punctuation, unseen characters, a vanishing accent.
            prop::sample::select(vec![
                "the",
                "dog",
                "unbelievable",
                "unbelievably",
                "runners",
                "dogs,",
                "(rightly)",
                "end.",
                "!!",
                "Café",
                "naïve",
                "ÄÖÜ",
                "東京",
                "🙂",
                "\u{301}",
                "x\u{301}y",
                "a-b-c",
                "...",
            ])
            .prop_map(str::to_string),
            "[a-zA-Z]{1,12}",
            "[a-z]{1,5}[,.;:!?()]{1,2}",
        ]
    }

    fn example() -> impl Strategy<Value = (Vec<String>, Vec<i32>)> {
        prop::collection::vec((word(), 0i32..7), 0..24).prop_map(|v| v.into_iter().unzip())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn every_word_gets_exactly_one_scored_position((words, labels) in example()) {
            let e = encode_words(tokenizer(), &words, 512).unwrap();
            prop_assert_eq!(e.truncated_words, 0);
            let aligned = align_labels(&labels, &e.word_ids, false);
            for (w, &label) in labels.iter().enumerate() {
                let scored: Vec<i32> = e.word_ids.iter().zip(&aligned)
                    .filter(|(wid, l)| **wid == w as i32 && **l != IGNORE_INDEX)
                    .map(|(_, l)| *l)
                    .collect();
                prop_assert_eq!(scored, vec![label], "word {} {:?} in {:?}", w, &words[w], &e.word_ids);
            }
        }

        #[test]
        fn special_tokens_never_carry_labels((words, labels) in example(), all in any::<bool>(), max_length in 4usize..20) {
            let e = encode_words(tokenizer(), &words, max_length).unwrap();
            prop_assert!(e.len() <= max_length);
            prop_assert_eq!(e.word_ids[0], -1);
            prop_assert_eq!(*e.word_ids.last().unwrap(), -1);
            let aligned = align_labels(&labels, &e.word_ids, all);
            for (p, (wid, l)) in e.word_ids.iter().zip(&aligned).enumerate() {
                let expected = match usize::try_from(*wid) {
                    Err(_) => IGNORE_INDEX,
                    Ok(w) if all || e.word_ids.iter().position(|x| x == wid) == Some(p) => labels[w],
                    Ok(_) => IGNORE_INDEX,
                };
                prop_assert_eq!(*l, expected, "position {} of {:?}", p, &e.word_ids);
            }
        }

        #[test]
        fn align_then_unalign_is_identity((words, labels) in example(), all in any::<bool>()) {
            let e = encode_words(tokenizer(), &words, 512).unwrap();
            let aligned = align_labels(&labels, &e.word_ids, all);
            let back = unalign(&aligned, &e.word_ids, words.len());
            prop_assert_eq!(back, labels.iter().copied().map(Some).collect::<Vec<_>>());
        }

        #[test]
        fn truncation_drops_whole_words_from_the_end((words, labels) in example(), max_length in 4usize..16) {
            let e = encode_words(tokenizer(), &words, max_length).unwrap();
            let back = unalign(&align_labels(&labels, &e.word_ids, false), &e.word_ids, words.len());
            let kept = back.iter().take_while(|l| l.is_some()).count();
            prop_assert!(back[kept..].iter().all(Option::is_none), "lost words are a suffix: {:?}", back);
            prop_assert_eq!(&back[..kept], &labels[..kept].iter().copied().map(Some).collect::<Vec<_>>()[..]);
            prop_assert_eq!(e.truncated_words, words.len() - kept);
        }

        #[test]
        fn windows_score_every_word_once_and_round_trip(
            (words, labels) in example(),
            all in any::<bool>(),
            max_length in 4usize..16,
            stride in 0usize..4,
        ) {
            // The config keeps 2 * stride < max_length.
            let stride = stride.min((max_length - 1) / 2);
            let w = encode_examples(tokenizer(), std::slice::from_ref(&words), max_length, Truncation::Window, stride)
                .unwrap()
                .remove(0);
            let full = encode_words(tokenizer(), &words, usize::MAX).unwrap();
            let ids: Vec<&[i32]> = w.windows.iter().map(|e| e.word_ids.as_slice()).collect();
            let aligned = align_windows(&labels, &ids, all);
            prop_assert_eq!(w.lost_words(), 0);
            let mut scored = vec![0usize; words.len()];
            for (e, y) in w.windows.iter().zip(&aligned) {
                prop_assert!(e.len() <= max_length, "{:?}", e.word_ids);
                prop_assert_eq!(e.word_ids[0], -1);
                prop_assert_eq!(*e.word_ids.last().unwrap(), -1);
                let span = mtl_core::align::window_words(&e.word_ids);
                for (p, (&wid, &l)) in e.word_ids.iter().zip(y).enumerate() {
                    let Ok(word) = usize::try_from(wid) else {
                        prop_assert_eq!(l, IGNORE_INDEX, "a special token carries a label");
                        continue;
                    };
                    // Words are never split: all of a word's sub-tokens, or
                    // the head of a word alone in its window.
                    let here = e.word_ids.iter().filter(|&&x| x == wid).count();
                    let whole = full.word_ids.iter().filter(|&&x| x == wid).count();
                    prop_assert!(here == whole || (here < whole && span == Some(word..word + 1)));
                    let first = e.word_ids.iter().position(|&x| x == wid) == Some(p);
                    if l != IGNORE_INDEX {
                        prop_assert_eq!(l, labels[word]);
                        prop_assert!(first || all);
                        scored[word] += usize::from(first);
                    }
                }
            }
            prop_assert!(scored.iter().all(|&n| n == 1), "scored {:?} in {:?}", scored, ids);
            // Windows advance over contiguous runs of words and share at
            // most `stride` of them.
            let spans: Vec<_> = ids.iter().map(|i| mtl_core::align::window_words(i)).collect();
            for pair in spans.windows(2) {
                let (a, b) = (pair[0].clone().unwrap(), pair[1].clone().unwrap());
                prop_assert!(b.start > a.start && b.end > a.end && b.start <= a.end);
                prop_assert!(a.end - b.start <= stride);
            }
            if w.windows.len() == 1 && w.cut_words == 0 {
                prop_assert_eq!(&w.windows[0], &full);
            }
            let back = unalign_windows(&aligned, &ids, words.len());
            prop_assert_eq!(back, labels.iter().copied().map(Some).collect::<Vec<_>>());
        }
    }
}
