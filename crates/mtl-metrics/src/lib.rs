//! Scoring functions, pure and independent of models and files: the one
//! definition of every metric mtl reports. `mtl-train` selects weights and
//! stops early on a task's headline ([`headline`]), `mtl-eval` reports the
//! same headline with bootstrap intervals, and `mtl-predict` reads entities
//! out of tags with [`spans::entities`], so a score during training and the
//! score in the report can never differ by a convention.
//!
//! Dependency trees are scored by [`dependency`]: UAS, LAS and CLAS as the
//! CoNLL 2018 shared task's evaluation script defines them, and
//! per-relation scores.
//!
//! It never reads files, runs a model or knows about stages.
//!
//! Every classification-style score is a fraction in `[0, 1]`; correlations
//! are in `[-1, 1]` and regression errors are in the target's units. An
//! undefined ratio or correlation (nothing predicted, nothing to find, a
//! constant series) is 0, never NaN, so that reports and comparisons stay
//! total.

pub mod baseline;
pub mod bootstrap;
pub mod classification;
pub mod dependency;
pub mod headline;
pub mod multilabel;
pub mod regression;
pub mod spans;
pub mod tagging;

/// Misuse of a metric function: the caller paired sequences that do not
/// belong together. Raised instead of silently scoring a prefix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    #[error("{what}: {gold} gold items but {pred} predictions")]
    LengthMismatch {
        what: &'static str,
        gold: usize,
        pred: usize,
    },
    #[error("class id {id} is outside the {n} known labels")]
    UnknownClass { id: usize, n: usize },
    /// A head index past the sentence's last word (`word` is 1-based).
    #[error("{what} of word {word} is {head}, outside a sentence of {n} words")]
    HeadOutOfRange {
        what: &'static str,
        word: usize,
        head: usize,
        n: usize,
    },
    #[error("{what} #{index} is {value}")]
    NonFinite {
        what: &'static str,
        index: usize,
        value: f64,
    },
}

/// `num / den`, with 0 for an empty denominator (sklearn's `zero_division=0`).
pub(crate) fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Harmonic mean of precision and recall, 0 when both are 0.
pub(crate) fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

pub(crate) fn same_len(what: &'static str, gold: usize, pred: usize) -> Result<(), MetricError> {
    if gold == pred {
        Ok(())
    } else {
        Err(MetricError::LengthMismatch { what, gold, pred })
    }
}

/// Test helper: scores are compared to hand-computed fractions.
#[doc(hidden)]
pub fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_ratios_are_zero() {
        assert_eq!(ratio(0, 0), 0.0);
        assert_eq!(f1(0.0, 0.0), 0.0);
        assert_close(f1(0.5, 1.0), 2.0 / 3.0);
    }
}
