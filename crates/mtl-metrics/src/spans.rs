//! Entity-level scores for span tasks written as per-word tags.
//!
//! Entities are read the way seqeval does in its default (non-strict) mode,
//! so scores are comparable with published numbers: an `I-X` that follows
//! `O` or a different type opens a new entity, `B-X B-X` are two entities,
//! and `E-`/`S-` tags (BIOES) close and open entities as seqeval's
//! `end_of_chunk`/`start_of_chunk` say. A tag without a `B-`/`I-`/`E-`/`S-`
//! prefix (other than `O`) is read as `I-<tag>` (the IO scheme).
//!
//! A predicted entity is correct only when its type and word span both match
//! a gold entity of the same sentence exactly. Precision, recall and F1 are
//! micro-averaged over all entities, and also given per type.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{MetricError, f1, ratio, same_len};

/// An entity over words `start..end` (end exclusive).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Entity {
    pub kind: String,
    pub start: usize,
    pub end: usize,
}

/// Splits a tag into its prefix (`B`, `I`, `E`, `S` or `O`) and type.
fn parse(tag: &str) -> (u8, &str) {
    if tag == "O" {
        return (b'O', "");
    }
    match tag.split_once('-') {
        Some((p @ ("B" | "I" | "E" | "S"), ty)) => (p.as_bytes()[0], ty),
        Some(("O", _)) => (b'O', ""),
        _ => (b'I', tag),
    }
}

// seqeval's `end_of_chunk`: does an entity end before this position?
fn ends(prev: u8, tag: u8, prev_type: &str, ty: &str) -> bool {
    matches!(prev, b'E' | b'S')
        || (matches!(prev, b'B' | b'I') && matches!(tag, b'B' | b'S' | b'O'))
        || (prev != b'O' && prev_type != ty)
}

// seqeval's `start_of_chunk`: does an entity start at this position?
fn starts(prev: u8, tag: u8, prev_type: &str, ty: &str) -> bool {
    matches!(tag, b'B' | b'S')
        || (matches!(prev, b'E' | b'S' | b'O') && matches!(tag, b'E' | b'I'))
        || (tag != b'O' && prev_type != ty)
}

/// The entities of one sentence's tags, in order.
pub fn entities<S: AsRef<str>>(tags: &[S]) -> Vec<Entity> {
    let mut out = Vec::new();
    let (mut prev, mut prev_type) = (b'O', "");
    let mut begin = 0;
    // One `O` past the end closes an entity that runs to the last word.
    for i in 0..=tags.len() {
        let (tag, ty) = tags.get(i).map_or((b'O', ""), |t| parse(t.as_ref()));
        if ends(prev, tag, prev_type, ty) {
            out.push(Entity {
                kind: if prev_type.is_empty() {
                    "_".into()
                } else {
                    prev_type.to_string()
                },
                start: begin,
                end: i,
            });
        }
        if starts(prev, tag, prev_type, ty) {
            begin = i;
        }
        prev = tag;
        prev_type = ty;
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TypeScore {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Gold entities of the type.
    pub support: u64,
    /// Predicted entities of the type.
    pub predicted: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanMetrics {
    pub entity_precision: f64,
    pub entity_recall: f64,
    pub entity_f1: f64,
    pub gold_entities: u64,
    pub predicted_entities: u64,
    pub correct_entities: u64,
    /// Every type seen in gold or predictions.
    pub per_type: BTreeMap<String, TypeScore>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    correct: u64,
    gold: u64,
    pred: u64,
}

impl Counts {
    fn score(&self) -> (f64, f64, f64) {
        let p = ratio(self.correct, self.pred);
        let r = ratio(self.correct, self.gold);
        (p, r, f1(p, r))
    }
}

/// Accumulates entity matches sentence by sentence, so that entities of
/// different sentences never match each other.
#[derive(Debug, Default)]
pub struct SpanScorer {
    per_type: BTreeMap<String, Counts>,
}

impl SpanScorer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sentence's gold and predicted tags (one per word).
    pub fn add<S: AsRef<str>, T: AsRef<str>>(
        &mut self,
        gold: &[S],
        pred: &[T],
    ) -> Result<(), MetricError> {
        same_len("span tags of a sentence", gold.len(), pred.len())?;
        let gold = entities(gold);
        let pred = entities(pred);
        for e in &gold {
            self.per_type.entry(e.kind.clone()).or_default().gold += 1;
        }
        for e in &pred {
            let c = self.per_type.entry(e.kind.clone()).or_default();
            c.pred += 1;
            // Spans within a sentence never overlap, so a match is unique.
            if gold.contains(e) {
                c.correct += 1;
            }
        }
        Ok(())
    }

    pub fn finish(&self) -> SpanMetrics {
        let mut total = Counts::default();
        let mut per_type = BTreeMap::new();
        for (kind, c) in &self.per_type {
            total.correct += c.correct;
            total.gold += c.gold;
            total.pred += c.pred;
            let (precision, recall, f1) = c.score();
            per_type.insert(
                kind.clone(),
                TypeScore {
                    precision,
                    recall,
                    f1,
                    support: c.gold,
                    predicted: c.pred,
                },
            );
        }
        let (p, r, f) = total.score();
        SpanMetrics {
            entity_precision: p,
            entity_recall: r,
            entity_f1: f,
            gold_entities: total.gold,
            predicted_entities: total.pred,
            correct_entities: total.correct,
            per_type,
        }
    }
}

/// Entity counts of one sentence: exact matches, gold, predicted. What the
/// bootstrap resamples (sentences are its unit, so entities never match
/// across sentences there either).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentenceCounts {
    pub correct: u64,
    pub gold: u64,
    pub pred: u64,
}

/// [`SentenceCounts`] of one sentence's gold and predicted tags.
pub fn sentence_counts<S: AsRef<str>, T: AsRef<str>>(
    gold: &[S],
    pred: &[T],
) -> Result<SentenceCounts, MetricError> {
    same_len("span tags of a sentence", gold.len(), pred.len())?;
    let gold = entities(gold);
    let pred = entities(pred);
    Ok(SentenceCounts {
        correct: pred.iter().filter(|e| gold.contains(e)).count() as u64,
        gold: gold.len() as u64,
        pred: pred.len() as u64,
    })
}

/// Scores whole corpora: `gold[i]` and `pred[i]` are the tags of sentence `i`.
pub fn span_metrics<S: AsRef<str>, T: AsRef<str>>(
    gold: &[Vec<S>],
    pred: &[Vec<T>],
) -> Result<SpanMetrics, MetricError> {
    same_len("sentences", gold.len(), pred.len())?;
    let mut scorer = SpanScorer::new();
    for (g, p) in gold.iter().zip(pred) {
        scorer.add(g, p)?;
    }
    Ok(scorer.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;

    fn ents(tags: &str) -> Vec<(String, usize, usize)> {
        let tags: Vec<&str> = tags.split_whitespace().collect();
        entities(&tags)
            .into_iter()
            .map(|e| (e.kind, e.start, e.end))
            .collect()
    }

    fn e(kind: &str, start: usize, end: usize) -> (String, usize, usize) {
        (kind.to_string(), start, end)
    }

    fn sent(tags: &str) -> Vec<&str> {
        tags.split_whitespace().collect()
    }

    #[test]
    fn iob2_entities() {
        assert_eq!(
            ents("B-PER I-PER O B-LOC"),
            vec![e("PER", 0, 2), e("LOC", 3, 4)]
        );
        assert_eq!(ents("O O O"), vec![]);
        assert_eq!(ents(""), vec![]);
    }

    #[test]
    fn entity_at_sentence_end_is_closed() {
        assert_eq!(ents("O B-LOC I-LOC"), vec![e("LOC", 1, 3)]);
        assert_eq!(ents("O O B-LOC"), vec![e("LOC", 2, 3)]);
    }

    #[test]
    fn i_without_b_starts_an_entity() {
        // seqeval default mode: I- after O (or at the start) opens an entity.
        assert_eq!(ents("I-PER I-PER O"), vec![e("PER", 0, 2)]);
        assert_eq!(
            ents("O I-LOC O I-LOC"),
            vec![e("LOC", 1, 2), e("LOC", 3, 4)]
        );
    }

    #[test]
    fn type_change_splits_entities() {
        // I-LOC after B-PER: PER ends, a LOC starts.
        assert_eq!(ents("B-PER I-LOC"), vec![e("PER", 0, 1), e("LOC", 1, 2)]);
        assert_eq!(
            ents("B-PER I-PER I-LOC I-LOC"),
            vec![e("PER", 0, 2), e("LOC", 2, 4)]
        );
    }

    #[test]
    fn adjacent_entities_of_the_same_type() {
        assert_eq!(ents("B-PER B-PER"), vec![e("PER", 0, 1), e("PER", 1, 2)]);
        assert_eq!(
            ents("B-PER I-PER B-PER"),
            vec![e("PER", 0, 2), e("PER", 2, 3)]
        );
    }

    #[test]
    fn bioes_entities() {
        assert_eq!(
            ents("S-PER B-LOC I-LOC E-LOC O S-ORG"),
            vec![e("PER", 0, 1), e("LOC", 1, 4), e("ORG", 5, 6)]
        );
        // S-X S-X are two entities; E- after E- starts a new one (seqeval).
        assert_eq!(ents("S-PER S-PER"), vec![e("PER", 0, 1), e("PER", 1, 2)]);
        assert_eq!(
            ents("B-LOC E-LOC E-LOC"),
            vec![e("LOC", 0, 2), e("LOC", 2, 3)]
        );
    }

    #[test]
    fn bioes_scores() {
        // gold S-PER O B-LOC E-LOC  -> PER[0,1) LOC[2,4)
        // pred S-PER O S-LOC E-LOC  -> PER[0,1) LOC[2,3) LOC[3,4) (E- after S- opens one)
        // correct 1 (PER), gold 2, predicted 3: P 1/3, R 1/2, F1 2/5
        // LOC: P 0/2, R 0/1 -> 0; PER 1
        let gold = vec![sent("S-PER O B-LOC E-LOC")];
        let pred = vec![sent("S-PER O S-LOC E-LOC")];
        let m = span_metrics(&gold, &pred).unwrap();
        assert_eq!(
            (m.correct_entities, m.gold_entities, m.predicted_entities),
            (1, 2, 3)
        );
        assert_close(m.entity_precision, 1.0 / 3.0);
        assert_close(m.entity_recall, 0.5);
        assert_close(m.entity_f1, 0.4);
        assert_eq!(m.per_type["LOC"].f1, 0.0);
        assert_close(m.per_type["PER"].f1, 1.0);
        assert_eq!(
            sentence_counts(&gold[0], &pred[0]).unwrap(),
            SentenceCounts {
                correct: 1,
                gold: 2,
                pred: 3
            }
        );
    }

    #[test]
    fn unprefixed_tags_read_as_io() {
        assert_eq!(ents("PER PER O LOC"), vec![e("PER", 0, 2), e("LOC", 3, 4)]);
    }

    #[test]
    fn micro_and_per_type_scores() {
        // s1 gold  B-PER I-PER O B-LOC -> PER[0,2) LOC[3,4)
        // s1 pred  B-PER O     O B-LOC -> PER[0,1) LOC[3,4)      (PER span wrong)
        // s2 gold  O     B-ORG         -> ORG[1,2)
        // s2 pred  B-ORG B-ORG         -> ORG[0,1) ORG[1,2)      (one spurious)
        // correct = LOC + ORG[1,2) = 2, gold = 3, predicted = 4
        // P = 2/4, R = 2/3, F1 = 2*(1/2)*(2/3) / (1/2+2/3) = (2/3)/(7/6) = 4/7
        // PER: 0/1, 0/1 -> 0; LOC: 1/1 -> 1; ORG: P=1/2 R=1/1 F1=2/3
        let gold = vec![sent("B-PER I-PER O B-LOC"), sent("O B-ORG")];
        let pred = vec![sent("B-PER O O B-LOC"), sent("B-ORG B-ORG")];
        let m = span_metrics(&gold, &pred).unwrap();
        assert_eq!(
            (m.correct_entities, m.gold_entities, m.predicted_entities),
            (2, 3, 4)
        );
        assert_close(m.entity_precision, 0.5);
        assert_close(m.entity_recall, 2.0 / 3.0);
        assert_close(m.entity_f1, 4.0 / 7.0);
        assert_eq!(m.per_type["PER"].f1, 0.0);
        assert_close(m.per_type["LOC"].f1, 1.0);
        assert_close(m.per_type["ORG"].f1, 2.0 / 3.0);
        assert_eq!(m.per_type["ORG"].predicted, 2);
    }

    #[test]
    fn same_span_in_another_sentence_does_not_match() {
        let gold = vec![sent("B-PER O"), sent("O O")];
        let pred = vec![sent("O O"), sent("B-PER O")];
        let m = span_metrics(&gold, &pred).unwrap();
        assert_eq!(m.correct_entities, 0);
        assert_eq!(m.entity_f1, 0.0);
    }

    #[test]
    fn no_predictions_give_zero_not_nan() {
        // 2 gold entities, 0 predicted: P = 0/0 -> 0, R = 0/2 = 0, F1 = 0.
        let m = span_metrics(&[sent("B-PER O B-LOC")], &[sent("O O O")]).unwrap();
        assert_eq!(
            (m.entity_precision, m.entity_recall, m.entity_f1),
            (0.0, 0.0, 0.0)
        );
        assert_eq!(m.per_type["PER"].support, 1);
        // Nothing anywhere: still 0, not NaN.
        let m = span_metrics::<&str, &str>(&[], &[]).unwrap();
        assert_eq!(m.entity_f1, 0.0);
        assert!(m.per_type.is_empty());
    }

    #[test]
    fn wrong_type_on_right_span_is_wrong() {
        let m = span_metrics(&[sent("B-PER I-PER")], &[sent("B-ORG I-ORG")]).unwrap();
        assert_eq!(m.correct_entities, 0);
        assert_eq!(m.per_type.len(), 2);
    }

    #[test]
    fn length_mismatch_is_an_error() {
        assert!(span_metrics(&[sent("O O")], &[sent("O")]).is_err());
        assert!(span_metrics::<&str, &str>(&[sent("O O")], &[]).is_err());
    }
}
