//! Attachment scores for dependency trees, as the CoNLL 2018 shared task's
//! evaluation script (`conll18_ud_eval.py`, UFAL) defines them, on gold
//! tokenization: gold and predicted words align one to one, so a word's
//! head is right when the two head indices are equal.
//!
//! - Relations are compared on their universal part only: `nmod:poss` and
//!   `nmod` are the same relation ([`universal`]), as the script cuts every
//!   DEPREL at its first `:` before comparing.
//! - UAS: words whose head is right; LAS: words whose head and relation are
//!   right. Every word counts, punctuation and `root` included. With gold
//!   tokenization precision, recall and F1 are all this one accuracy.
//! - CLAS: LAS restricted to content words, those whose relation is one of
//!   [`CONTENT_RELATIONS`] (function words `aux`, `cop`, `mark`, `det`,
//!   `clf`, `case`, `cc`, and `punct`, are not). Gold and prediction may
//!   disagree on which words are content words, so CLAS is an F1: recall
//!   divides the right content words by the gold content words, precision
//!   by the predicted content words (each side's own relation decides), and
//!   F1 is `2 * right / (gold + predicted)`. A word is right when its gold
//!   relation is a content relation and its head and relation are right.
//! - Per relation (not part of the script; its conventions): for each
//!   universal relation, the words with that gold relation (support), with
//!   that predicted relation, and those right in head and relation, giving
//!   precision, recall and F1.
//!
//! The script also rejects files whose trees are malformed (a cycle, no
//! root or two); that is a property of the input, checked where CoNLL-U is
//! read, and attachment scores are defined word by word anyway, so any
//! head vector is scored here as long as its heads point inside the
//! sentence.
//!
//! Scores are sums of per-sentence [`AttachmentCounts`], so the bootstrap
//! resamples whole sentences: [`crate::headline::Examples::Attachments`]
//! holds one count per sentence and gives UAS, LAS and CLAS on any resample.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{MetricError, f1, ratio, same_len};

/// The universal relations the script counts as content words for CLAS
/// (its `CONTENT_DEPRELS`).
pub const CONTENT_RELATIONS: [&str; 29] = [
    "nsubj",
    "obj",
    "iobj",
    "csubj",
    "ccomp",
    "xcomp",
    "obl",
    "vocative",
    "expl",
    "dislocated",
    "advcl",
    "advmod",
    "discourse",
    "nmod",
    "appos",
    "nummod",
    "acl",
    "amod",
    "conj",
    "fixed",
    "flat",
    "compound",
    "list",
    "parataxis",
    "orphan",
    "goeswith",
    "reparandum",
    "root",
    "dep",
];

/// The universal part of a relation: `nmod:poss` is `nmod`.
pub fn universal(rel: &str) -> &str {
    rel.split_once(':').map_or(rel, |(head, _)| head)
}

/// Whether a relation (subtype or not) marks a content word for CLAS.
pub fn is_content(rel: &str) -> bool {
    CONTENT_RELATIONS.contains(&universal(rel))
}

/// What one sentence (or any set of sentences: counts add) contributes to
/// the attachment scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentCounts {
    /// Words scored (gold and predicted alike).
    pub words: u64,
    /// Words whose head is right (UAS numerator).
    pub heads_right: u64,
    /// Words whose head and universal relation are right (LAS numerator).
    pub labeled_right: u64,
    /// Words whose gold relation is a content relation.
    pub content_gold: u64,
    /// Words whose predicted relation is a content relation.
    pub content_pred: u64,
    /// Gold content words whose head and relation are right.
    pub content_right: u64,
}

impl AttachmentCounts {
    pub fn add(&mut self, other: &AttachmentCounts) {
        self.words += other.words;
        self.heads_right += other.heads_right;
        self.labeled_right += other.labeled_right;
        self.content_gold += other.content_gold;
        self.content_pred += other.content_pred;
        self.content_right += other.content_right;
    }

    pub fn uas(&self) -> f64 {
        ratio(self.heads_right, self.words)
    }

    pub fn las(&self) -> f64 {
        ratio(self.labeled_right, self.words)
    }

    pub fn clas_precision(&self) -> f64 {
        ratio(self.content_right, self.content_pred)
    }

    pub fn clas_recall(&self) -> f64 {
        ratio(self.content_right, self.content_gold)
    }

    /// CLAS as the shared task reports it: the F1.
    pub fn clas(&self) -> f64 {
        // The script's `2 * correct / (gold + system)`, which equals the
        // harmonic mean of precision and recall whenever both are defined.
        ratio(
            2 * self.content_right,
            self.content_gold + self.content_pred,
        )
    }
}

/// The sum of the counts at `idx` (repeats count again): the counts of one
/// bootstrap resample of sentences, or of all of them.
pub fn total(counts: &[AttachmentCounts], idx: &[usize]) -> AttachmentCounts {
    let mut sum = AttachmentCounts::default();
    for c in idx.iter().filter_map(|&i| counts.get(i)) {
        sum.add(c);
    }
    sum
}

fn check_heads(what: &'static str, heads: &[usize]) -> Result<(), MetricError> {
    let n = heads.len();
    match heads.iter().position(|&h| h > n) {
        Some(i) => Err(MetricError::HeadOutOfRange {
            what,
            word: i + 1,
            head: heads[i],
            n,
        }),
        None => Ok(()),
    }
}

/// Checks one sentence's four sequences against each other; the heads are
/// `0` for the root, else the 1-based index of the head word.
fn check_sentence<S, T>(
    gold_heads: &[usize],
    gold_rels: &[S],
    pred_heads: &[usize],
    pred_rels: &[T],
) -> Result<(), MetricError> {
    same_len(
        "gold heads and relations of a sentence",
        gold_heads.len(),
        gold_rels.len(),
    )?;
    same_len(
        "predicted heads and relations of a sentence",
        pred_heads.len(),
        pred_rels.len(),
    )?;
    same_len("words of a sentence", gold_heads.len(), pred_heads.len())?;
    check_heads("gold head", gold_heads)?;
    check_heads("predicted head", pred_heads)
}

/// One word's outcome, shared by [`sentence_counts`] and the scorer so the
/// two can never count differently.
struct Word<'a> {
    gold_rel: &'a str,
    pred_rel: &'a str,
    head_right: bool,
    labeled_right: bool,
}

fn words<'a, S: AsRef<str>, T: AsRef<str>>(
    gold_heads: &'a [usize],
    gold_rels: &'a [S],
    pred_heads: &'a [usize],
    pred_rels: &'a [T],
) -> impl Iterator<Item = Word<'a>> {
    gold_heads
        .iter()
        .zip(gold_rels)
        .zip(pred_heads.iter().zip(pred_rels))
        .map(|((gh, gr), (ph, pr))| {
            let gold_rel = universal(gr.as_ref());
            let pred_rel = universal(pr.as_ref());
            let head_right = gh == ph;
            Word {
                gold_rel,
                pred_rel,
                head_right,
                labeled_right: head_right && gold_rel == pred_rel,
            }
        })
}

fn count(c: &mut AttachmentCounts, w: &Word) {
    let gold_content = CONTENT_RELATIONS.contains(&w.gold_rel);
    c.words += 1;
    c.heads_right += u64::from(w.head_right);
    c.labeled_right += u64::from(w.labeled_right);
    c.content_gold += u64::from(gold_content);
    c.content_pred += u64::from(CONTENT_RELATIONS.contains(&w.pred_rel));
    c.content_right += u64::from(gold_content && w.labeled_right);
}

/// [`AttachmentCounts`] of one sentence: per word (in order) its gold head
/// and relation and its predicted head and relation; a head is `0` for the
/// root, else the 1-based index of the head word.
pub fn sentence_counts<S: AsRef<str>, T: AsRef<str>>(
    gold_heads: &[usize],
    gold_rels: &[S],
    pred_heads: &[usize],
    pred_rels: &[T],
) -> Result<AttachmentCounts, MetricError> {
    DependencyScorer::new().add(gold_heads, gold_rels, pred_heads, pred_rels)
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RelationScore {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Words with this gold relation.
    pub support: u64,
    /// Words with this predicted relation.
    pub predicted: u64,
    /// Words with this gold and predicted relation and the right head.
    pub correct: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependencyMetrics {
    pub n_words: u64,
    pub uas: f64,
    pub las: f64,
    pub clas_precision: f64,
    pub clas_recall: f64,
    /// CLAS F1, the figure the shared task reports as CLAS.
    pub clas: f64,
    pub counts: AttachmentCounts,
    /// Every universal relation seen in gold or predictions.
    pub per_relation: BTreeMap<String, RelationScore>,
}

#[derive(Debug, Clone, Copy, Default)]
struct RelationCounts {
    gold: u64,
    pred: u64,
    correct: u64,
}

// Looks up before inserting: most words hit a relation already seen, and
// `entry` would allocate the key for every word.
fn bump(
    map: &mut BTreeMap<String, RelationCounts>,
    rel: &str,
    f: impl FnOnce(&mut RelationCounts),
) {
    if let Some(c) = map.get_mut(rel) {
        f(c);
        return;
    }
    let mut c = RelationCounts::default();
    f(&mut c);
    map.insert(rel.to_string(), c);
}

/// Accumulates attachment scores sentence by sentence.
#[derive(Debug, Default)]
pub struct DependencyScorer {
    counts: AttachmentCounts,
    per_relation: BTreeMap<String, RelationCounts>,
}

impl DependencyScorer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sentence (arguments as [`sentence_counts`]) and returns its
    /// counts, which are what the bootstrap resamples. Nothing is added
    /// when the sentence is rejected.
    pub fn add<S: AsRef<str>, T: AsRef<str>>(
        &mut self,
        gold_heads: &[usize],
        gold_rels: &[S],
        pred_heads: &[usize],
        pred_rels: &[T],
    ) -> Result<AttachmentCounts, MetricError> {
        check_sentence(gold_heads, gold_rels, pred_heads, pred_rels)?;
        let mut c = AttachmentCounts::default();
        for w in words(gold_heads, gold_rels, pred_heads, pred_rels) {
            count(&mut c, &w);
            bump(&mut self.per_relation, w.gold_rel, |r| r.gold += 1);
            bump(&mut self.per_relation, w.pred_rel, |r| {
                r.pred += 1;
                r.correct += u64::from(w.labeled_right);
            });
        }
        self.counts.add(&c);
        Ok(c)
    }

    pub fn finish(&self) -> DependencyMetrics {
        let per_relation = self
            .per_relation
            .iter()
            .map(|(rel, c)| {
                let precision = ratio(c.correct, c.pred);
                let recall = ratio(c.correct, c.gold);
                let score = RelationScore {
                    precision,
                    recall,
                    f1: f1(precision, recall),
                    support: c.gold,
                    predicted: c.pred,
                    correct: c.correct,
                };
                (rel.clone(), score)
            })
            .collect();
        let c = self.counts;
        DependencyMetrics {
            n_words: c.words,
            uas: c.uas(),
            las: c.las(),
            clas_precision: c.clas_precision(),
            clas_recall: c.clas_recall(),
            clas: c.clas(),
            counts: c,
            per_relation,
        }
    }
}

/// Scores a whole corpus: the `i`-th entry of each argument belongs to
/// sentence `i` (see [`sentence_counts`]).
pub fn dependency_metrics<S: AsRef<str>, T: AsRef<str>>(
    gold_heads: &[Vec<usize>],
    gold_rels: &[Vec<S>],
    pred_heads: &[Vec<usize>],
    pred_rels: &[Vec<T>],
) -> Result<DependencyMetrics, MetricError> {
    same_len("gold sentences", gold_heads.len(), gold_rels.len())?;
    same_len("predicted sentences", pred_heads.len(), pred_rels.len())?;
    same_len("sentences", gold_heads.len(), pred_heads.len())?;
    let mut scorer = DependencyScorer::new();
    for i in 0..gold_heads.len() {
        scorer.add(&gold_heads[i], &gold_rels[i], &pred_heads[i], &pred_rels[i])?;
    }
    Ok(scorer.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::bootstrap::{RESAMPLES, interval, seed_for};
    use crate::headline::{Examples, Headline};
    use proptest::prelude::*;

    fn rels(s: &str) -> Vec<&str> {
        s.split_whitespace().collect()
    }

    #[test]
    fn universal_part_and_content_words() {
        assert_eq!(universal("nmod:poss"), "nmod");
        assert_eq!(universal("acl:relcl"), "acl");
        assert_eq!(universal("nsubj"), "nsubj");
        assert_eq!(universal(""), "");
        assert!(is_content("nmod:poss") && is_content("root") && is_content("dep"));
        for rel in ["aux", "aux:pass", "cop", "mark", "det", "clf", "case", "cc"] {
            assert!(!is_content(rel), "{rel}");
        }
        assert!(!is_content("punct"));
        // The script compares strings as they are.
        assert!(!is_content("NSUBJ"));
    }

    // "The cat 's toy broke ." (EWT style)
    //   1 The   det        -> 2
    //   2 cat   nmod:poss  -> 4
    //   3 's    case       -> 2
    //   4 toy   nsubj      -> 5
    //   5 broke root       -> 0
    //   6 .     punct      -> 5
    const GOLD_HEADS: [usize; 6] = [2, 4, 2, 5, 0, 5];
    const GOLD_RELS: &str = "det nmod:poss case nsubj root punct";

    #[test]
    fn hand_computed_sentence() {
        // Predicted:
        //   1 det    -> 2   right head, right relation
        //   2 nmod   -> 4   right: `nmod` vs gold `nmod:poss` is the same relation
        //   3 case   -> 4   wrong head (function word: CLAS ignores it)
        //   4 obj    -> 5   right head, wrong relation
        //   5 root   -> 0   right
        //   6 punct  -> 4   wrong head
        // UAS: words 1 2 4 5 = 4/6; LAS: words 1 2 5 = 3/6.
        // Content words: gold {2 nmod, 4 nsubj, 5 root} = 3;
        // predicted {2 nmod, 4 obj, 5 root} = 3; right {2, 5} = 2.
        // CLAS P = R = F1 = 2/3. (conll18_ud_eval.py --counts on this
        // sentence: UAS 4/6, LAS 3/6, CLAS 2 of 3 gold, 3 predicted.)
        let pred_heads = [2, 4, 4, 5, 0, 4];
        let pred_rels = rels("det nmod case obj root punct");
        let gold_rels = rels(GOLD_RELS);
        let c = sentence_counts(&GOLD_HEADS, &gold_rels, &pred_heads, &pred_rels).unwrap();
        assert_eq!(
            c,
            AttachmentCounts {
                words: 6,
                heads_right: 4,
                labeled_right: 3,
                content_gold: 3,
                content_pred: 3,
                content_right: 2,
            }
        );
        assert_close(c.uas(), 4.0 / 6.0);
        assert_close(c.las(), 0.5);
        assert_close(c.clas(), 2.0 / 3.0);

        let m = dependency_metrics(
            &[GOLD_HEADS.to_vec()],
            &[gold_rels],
            &[pred_heads.to_vec()],
            &[pred_rels],
        )
        .unwrap();
        assert_eq!(m.counts, c);
        assert_eq!((m.n_words, m.uas, m.las), (6, c.uas(), c.las()));
        // Per relation, on universal parts: `nmod:poss` and `nmod` are one.
        assert!(!m.per_relation.contains_key("nmod:poss"));
        let nmod = m.per_relation["nmod"];
        assert_eq!((nmod.support, nmod.predicted, nmod.correct), (1, 1, 1));
        // nsubj: gold once, never predicted; obj: predicted once, no gold.
        let nsubj = m.per_relation["nsubj"];
        assert_eq!((nsubj.support, nsubj.predicted, nsubj.f1), (1, 0, 0.0));
        let obj = m.per_relation["obj"];
        assert_eq!((obj.support, obj.predicted, obj.precision), (0, 1, 0.0));
        // case and punct: relation right, head wrong -> not correct.
        assert_eq!(m.per_relation["case"].correct, 0);
        assert_eq!(m.per_relation["punct"].f1, 0.0);
        assert_close(m.per_relation["det"].f1, 1.0);
        assert_eq!(m.per_relation.len(), 7);
    }

    #[test]
    fn clas_precision_and_recall_differ_when_content_words_do() {
        // Gold word 1 is a function word (`det`) predicted as `amod` (a
        // content relation): it adds to CLAS's predicted words only. Gold
        // word 4 (`obl`, content) is predicted as `mark`: it adds to the
        // gold content words only.
        //   gold  heads 2 3 0 3      det nsubj root obl:tmod
        //   pred  heads 2 3 0 3      amod nsubj root mark
        // UAS 4/4; LAS: words 2, 3 = 2/4.
        // Content: gold {2, 3, 4} = 3; predicted {1, 2, 3} = 3; right {2, 3}.
        // Now word 3's head wrong as well, in a second sentence:
        //   gold  heads 0 1        root obj
        //   pred  heads 2 0        root obj   (both heads wrong)
        // Content: gold 2, predicted 2, right 0; UAS 0/2.
        // Totals: UAS 4/6, LAS 2/6, CLAS right 2, gold 5, predicted 5.
        let m = dependency_metrics(
            &[vec![2, 3, 0, 3], vec![0, 1]],
            &[rels("det nsubj root obl:tmod"), rels("root obj")],
            &[vec![2, 3, 0, 3], vec![2, 0]],
            &[rels("amod nsubj root mark"), rels("root obj")],
        )
        .unwrap();
        assert_close(m.uas, 4.0 / 6.0);
        assert_close(m.las, 2.0 / 6.0);
        assert_eq!(
            (
                m.counts.content_right,
                m.counts.content_gold,
                m.counts.content_pred
            ),
            (2, 5, 5)
        );
        assert_close(m.clas, 0.4);

        // One sentence on its own, where precision and recall differ:
        //   gold: det nsubj root       pred: amod amod root, all heads right
        // Content: gold {2, 3} = 2, predicted {1, 2, 3} = 3, right {3} = 1
        // P = 1/3, R = 1/2, F1 = 2 * 1 / (2 + 3) = 2/5.
        let c = sentence_counts(
            &[2, 3, 0],
            &rels("det nsubj root"),
            &[2, 3, 0],
            &rels("amod amod root"),
        )
        .unwrap();
        assert_close(c.clas_precision(), 1.0 / 3.0);
        assert_close(c.clas_recall(), 0.5);
        assert_close(c.clas(), 0.4);
        assert_close(c.clas(), f1(c.clas_precision(), c.clas_recall()));
        assert_close(c.uas(), 1.0);
        assert_close(c.las(), 1.0 / 3.0);
    }

    #[test]
    fn a_function_word_counts_for_las_but_not_clas() {
        // "the dog": `det` attached wrongly, the rest right.
        // LAS 1/2, but CLAS sees only `root`: 1/1.
        let c = sentence_counts(&[2, 0], &rels("det root"), &[0, 1], &rels("det root")).unwrap();
        assert_close(c.las(), 0.0);
        let c = sentence_counts(&[2, 0], &rels("det root"), &[1, 0], &rels("det root")).unwrap();
        assert_close(c.las(), 0.5);
        assert_eq!((c.content_gold, c.content_pred, c.content_right), (1, 1, 1));
        assert_close(c.clas(), 1.0);
    }

    #[test]
    fn all_wrong_scores_zero() {
        // Every head wrong: relations do not matter.
        let c = sentence_counts(
            &[2, 0, 2],
            &rels("nsubj root obj"),
            &[0, 3, 1],
            &rels("nsubj root obj"),
        )
        .unwrap();
        assert_eq!((c.uas(), c.las(), c.clas()), (0.0, 0.0, 0.0));
        assert_eq!((c.content_gold, c.content_pred), (3, 3));
        // Only punctuation and function words: CLAS has nothing to score and
        // is 0, not NaN.
        let c = sentence_counts(&[0, 1], &rels("root punct"), &[2, 0], &rels("punct det")).unwrap();
        assert_eq!((c.uas(), c.las(), c.clas()), (0.0, 0.0, 0.0));
        assert_eq!(c.clas_precision(), 0.0);
        let m = dependency_metrics::<&str, &str>(&[], &[], &[], &[]).unwrap();
        assert_eq!((m.n_words, m.uas, m.las, m.clas), (0, 0.0, 0.0, 0.0));
        assert!(m.per_relation.is_empty());
    }

    #[test]
    fn bad_input_is_an_error() {
        let g = rels("nsubj root");
        assert_eq!(
            sentence_counts(&[2, 0], &g, &[2], &rels("nsubj")).unwrap_err(),
            MetricError::LengthMismatch {
                what: "words of a sentence",
                gold: 2,
                pred: 1
            }
        );
        assert!(matches!(
            sentence_counts(&[2, 0], &rels("root"), &[2, 0], &g),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert!(matches!(
            sentence_counts(&[2, 0], &g, &[2, 0], &rels("root")),
            Err(MetricError::LengthMismatch { .. })
        ));
        assert_eq!(
            sentence_counts(&[2, 0], &g, &[2, 3], &g).unwrap_err(),
            MetricError::HeadOutOfRange {
                what: "predicted head",
                word: 2,
                head: 3,
                n: 2
            }
        );
        assert!(matches!(
            sentence_counts(&[7, 0], &g, &[2, 0], &g),
            Err(MetricError::HeadOutOfRange { word: 1, .. })
        ));
        assert!(
            dependency_metrics(&[vec![0]], &[rels("root")], &[], &Vec::<Vec<&str>>::new()).is_err()
        );
        // A rejected sentence adds nothing to the scorer.
        let mut s = DependencyScorer::new();
        assert!(s.add(&[2, 0], &g, &[2, 9], &g).is_err());
        assert_eq!(s.finish().n_words, 0);
    }

    #[test]
    fn resamples_sum_sentence_counts() {
        // The two sentences of `clas_precision_and_recall_differ...`.
        let a = sentence_counts(
            &[2, 3, 0, 3],
            &rels("det nsubj root obl:tmod"),
            &[2, 3, 0, 3],
            &rels("amod nsubj root mark"),
        )
        .unwrap();
        let b = sentence_counts(&[0, 1], &rels("root obj"), &[2, 0], &rels("root obj")).unwrap();
        let ex = Examples::Attachments(vec![a, b]);
        assert_close(ex.score(&Headline::Uas), 4.0 / 6.0);
        assert_close(ex.score(&Headline::Las), 2.0 / 6.0);
        assert_close(ex.score(&Headline::Clas), 0.4);
        // Sentence a twice: UAS 1, LAS 1/2, CLAS 2*4 / (6 + 6).
        assert_close(ex.value(&Headline::Las, &[0, 0]), 0.5);
        assert_close(ex.value(&Headline::Clas, &[0, 0]), 2.0 / 3.0);
        assert_eq!(total(&[a, b], &[0, 0]).words, 8);
        // What eval does for the other kinds: the interval brackets the score.
        let [lo, hi] = interval(ex.len(), RESAMPLES, seed_for("deps/dev"), |idx| {
            ex.value(&Headline::Las, idx)
        })
        .unwrap();
        assert!(lo <= 2.0 / 6.0 && 2.0 / 6.0 <= hi, "{lo} {hi}");
    }

    const REL_POOL: [&str; 10] = [
        "nsubj",
        "obj",
        "root",
        "det",
        "case",
        "punct",
        "nmod:poss",
        "nmod",
        "aux:pass",
        "acl:relcl",
    ];

    fn sentence() -> impl Strategy<Value = (Vec<usize>, Vec<usize>, Vec<usize>, Vec<usize>)> {
        (1usize..25).prop_flat_map(|n| {
            (
                proptest::collection::vec(0..=n, n),
                proptest::collection::vec(0..REL_POOL.len(), n),
                proptest::collection::vec(0..=n, n),
                proptest::collection::vec(0..REL_POOL.len(), n),
            )
        })
    }

    proptest! {
        #[test]
        fn scores_are_ordered_and_bounded(sents in proptest::collection::vec(sentence(), 1..6)) {
            let name = |ids: &Vec<usize>| ids.iter().map(|&i| REL_POOL[i]).collect::<Vec<_>>();
            let gh: Vec<Vec<usize>> = sents.iter().map(|s| s.0.clone()).collect();
            let gr: Vec<Vec<&str>> = sents.iter().map(|s| name(&s.1)).collect();
            let ph: Vec<Vec<usize>> = sents.iter().map(|s| s.2.clone()).collect();
            let pr: Vec<Vec<&str>> = sents.iter().map(|s| name(&s.3)).collect();
            let m = dependency_metrics(&gh, &gr, &ph, &pr).unwrap();
            prop_assert!(m.las <= m.uas);
            for v in [m.uas, m.las, m.clas, m.clas_precision, m.clas_recall] {
                prop_assert!((0.0..=1.0).contains(&v), "{v}");
            }
            let c = m.counts;
            prop_assert!(c.content_right <= c.content_gold.min(c.content_pred));
            prop_assert!(c.content_right <= c.labeled_right);
            // Per relation: gold and predicted words partition the words,
            // and the correct ones are exactly LAS's.
            let sum = |f: fn(&RelationScore) -> u64| m.per_relation.values().map(f).sum::<u64>();
            prop_assert_eq!(sum(|r| r.support), c.words);
            prop_assert_eq!(sum(|r| r.predicted), c.words);
            prop_assert_eq!(sum(|r| r.correct), c.labeled_right);
            // Sentence counts add up to the corpus counts.
            let per: Vec<AttachmentCounts> = (0..gh.len())
                .map(|i| sentence_counts(&gh[i], &gr[i], &ph[i], &pr[i]).unwrap())
                .collect();
            let all: Vec<usize> = (0..per.len()).collect();
            prop_assert_eq!(total(&per, &all), c);
            // A prediction equal to gold is perfect.
            let perfect = dependency_metrics(&gh, &gr, &gh, &gr).unwrap();
            prop_assert_eq!(perfect.uas, 1.0);
            prop_assert_eq!(perfect.las, 1.0);
            let content = perfect.counts.content_gold > 0;
            prop_assert_eq!(perfect.clas, if content { 1.0 } else { 0.0 });
        }
    }
}
