//! Word-level accuracy for tagging tasks (and as a secondary score for span
//! tasks). Scored over words, not sub-tokens, so the tokenizer cannot change
//! the denominator.

use serde::{Deserialize, Serialize};

use super::{MetricError, ratio, same_len};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TaggingMetrics {
    pub n_words: u64,
    pub correct_words: u64,
    pub accuracy: f64,
}

/// Accuracy of `pred` against `gold`, one entry per word of the corpus.
pub fn word_accuracy<T: PartialEq>(gold: &[T], pred: &[T]) -> Result<TaggingMetrics, MetricError> {
    same_len("words", gold.len(), pred.len())?;
    let correct = gold.iter().zip(pred).filter(|(g, p)| g == p).count() as u64;
    let n = gold.len() as u64;
    Ok(TaggingMetrics {
        n_words: n,
        correct_words: correct,
        accuracy: ratio(correct, n),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;

    #[test]
    fn counts_matching_words() {
        // gold: N V D N   pred: N V N N  -> 3 of 4 words right
        let m = word_accuracy(&["N", "V", "D", "N"], &["N", "V", "N", "N"]).unwrap();
        assert_eq!((m.n_words, m.correct_words), (4, 3));
        assert_close(m.accuracy, 0.75);
    }

    #[test]
    fn no_words_score_zero() {
        let m = word_accuracy::<u32>(&[], &[]).unwrap();
        assert_eq!((m.n_words, m.accuracy), (0, 0.0));
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let err = word_accuracy(&[1, 2], &[1]).unwrap_err();
        assert_eq!(
            err,
            MetricError::LengthMismatch {
                what: "words",
                gold: 2,
                pred: 1
            }
        );
    }
}
