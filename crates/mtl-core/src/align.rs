//! How word labels sit on sub-tokens. This is part of the contract between
//! tokenize (which aligns), and train, eval and predict (which read back):
//! a word's label lives on its first sub-token; other positions carry
//! [`crate::artifact::IGNORE_INDEX`] unless every sub-token is labelled.

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
}
