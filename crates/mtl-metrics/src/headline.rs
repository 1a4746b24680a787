//! A task's headline metric (`[[tasks]] metric` in the config, else the
//! kind's default) and its value on any subset of the scored examples.
//!
//! [`Examples`] holds what each scored example contributes (a gold and a
//! predicted class, a sentence's word and entity counts, a sentence's
//! attachment counts, two label sets, two values), and [`Examples::value`]
//! computes the headline from the examples at some indices. The point
//! score is the value on every example once; the bootstrap
//! ([`super::bootstrap`]) calls the same function on resampled indices, so
//! the score and its interval can never disagree on a definition. Tests
//! check the point score against the full metrics.

use mtl_core::TaskKind;
use mtl_core::config::HeadlineMetric;

use super::classification::Averages;
use super::dependency::{self, AttachmentCounts};
use super::regression::{pearson, ranks};
use super::spans::SentenceCounts;
use super::{f1, ratio};

/// A resolved headline metric. Every one is "higher is better" except the
/// regression errors ([`Headline::lower_is_better`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Headline {
    Accuracy,
    MacroF1,
    MicroF1,
    WeightedF1,
    MacroPrecision,
    MacroRecall,
    /// Mean F1 of these class ids, with their names for display.
    F1Of(Vec<(usize, String)>),
    EntityF1,
    EntityPrecision,
    EntityRecall,
    SamplesF1,
    SubsetAccuracy,
    Pearson,
    Spearman,
    Mse,
    Rmse,
    Mae,
    /// Attachment scores ([`super::dependency`]); CLAS is its F1.
    Uas,
    Las,
    Clas,
}

/// The metric names each task kind accepts, the default first.
pub fn known_names(kind: TaskKind) -> &'static [&'static str] {
    match kind {
        TaskKind::Classification => &[
            "macro_f1",
            "accuracy",
            "micro_f1",
            "weighted_f1",
            "macro_precision",
            "macro_recall",
        ],
        TaskKind::Tagging => &["accuracy"],
        TaskKind::Spans => &["entity_f1", "entity_precision", "entity_recall", "accuracy"],
        TaskKind::Multilabel => &["micro_f1", "macro_f1", "samples_f1", "subset_accuracy"],
        TaskKind::Regression => &["pearson", "spearman", "mse", "rmse", "mae"],
        // LAS first: the shared task's main parsing score.
        TaskKind::Dependency => &["las", "uas", "clas"],
    }
}

fn named(name: &str) -> Option<Headline> {
    Some(match name {
        "accuracy" => Headline::Accuracy,
        "macro_f1" => Headline::MacroF1,
        "micro_f1" => Headline::MicroF1,
        "weighted_f1" => Headline::WeightedF1,
        "macro_precision" => Headline::MacroPrecision,
        "macro_recall" => Headline::MacroRecall,
        "entity_f1" => Headline::EntityF1,
        "entity_precision" => Headline::EntityPrecision,
        "entity_recall" => Headline::EntityRecall,
        "samples_f1" => Headline::SamplesF1,
        "subset_accuracy" => Headline::SubsetAccuracy,
        "pearson" => Headline::Pearson,
        "spearman" => Headline::Spearman,
        "mse" => Headline::Mse,
        "rmse" => Headline::Rmse,
        "mae" => Headline::Mae,
        "uas" => Headline::Uas,
        "las" => Headline::Las,
        "clas" => Headline::Clas,
        _ => return None,
    })
}

impl Headline {
    /// The headline of a task of `kind` whose config says `metric`, with
    /// `labels` its vocabulary (id order). The error says what is wrong
    /// and what would be accepted; the caller names the config key.
    pub fn resolve(
        kind: TaskKind,
        metric: Option<&HeadlineMetric>,
        labels: &[String],
    ) -> Result<Headline, String> {
        let names = known_names(kind);
        match metric {
            None => Ok(named(names[0]).unwrap_or(Headline::Accuracy)),
            Some(HeadlineMetric::Named(name)) => match named(name) {
                Some(h) if names.contains(&name.as_str()) => Ok(h),
                _ => Err(format!(
                    "unknown metric `{name}` for a {} task; one of: {}{}",
                    kind.name(),
                    names.join(", "),
                    if kind == TaskKind::Classification {
                        ", or { f1_of = [labels] }"
                    } else {
                        ""
                    }
                )),
            },
            Some(HeadlineMetric::F1Of { f1_of }) => {
                if kind != TaskKind::Classification {
                    return Err(format!(
                        "`f1_of` is for classification tasks, not {}",
                        kind.name()
                    ));
                }
                if f1_of.is_empty() {
                    return Err("`f1_of` names no label".into());
                }
                let mut ids = Vec::with_capacity(f1_of.len());
                for name in f1_of {
                    let Some(id) = labels.iter().position(|l| l == name) else {
                        return Err(format!(
                            "`f1_of` label `{name}` is not in the task's vocabulary ({})",
                            labels.join(", ")
                        ));
                    };
                    if !ids.iter().any(|&(i, _)| i == id) {
                        ids.push((id, name.clone()));
                    }
                }
                Ok(Headline::F1Of(ids))
            }
        }
    }

    /// The name shown in tables and written to `metrics.json`.
    pub fn name(&self) -> String {
        let s = match self {
            Headline::F1Of(ids) => {
                let names: Vec<&str> = ids.iter().map(|(_, n)| n.as_str()).collect();
                return format!("f1_of({})", names.join(", "));
            }
            Headline::Accuracy => "accuracy",
            Headline::MacroF1 => "macro_f1",
            Headline::MicroF1 => "micro_f1",
            Headline::WeightedF1 => "weighted_f1",
            Headline::MacroPrecision => "macro_precision",
            Headline::MacroRecall => "macro_recall",
            Headline::EntityF1 => "entity_f1",
            Headline::EntityPrecision => "entity_precision",
            Headline::EntityRecall => "entity_recall",
            Headline::SamplesF1 => "samples_f1",
            Headline::SubsetAccuracy => "subset_accuracy",
            Headline::Pearson => "pearson",
            Headline::Spearman => "spearman",
            Headline::Mse => "mse",
            Headline::Rmse => "rmse",
            Headline::Mae => "mae",
            Headline::Uas => "uas",
            Headline::Las => "las",
            Headline::Clas => "clas",
        };
        s.to_string()
    }

    pub fn lower_is_better(&self) -> bool {
        matches!(self, Headline::Mse | Headline::Rmse | Headline::Mae)
    }
}

/// What each scored example contributes to a headline metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Examples {
    /// Gold and predicted class per text, `k` classes.
    Classes {
        gold: Vec<usize>,
        pred: Vec<usize>,
        k: usize,
    },
    /// Per sentence: words right, words scored, and entity counts (span
    /// tasks; zero for tagging).
    Sentences {
        words: Vec<(u64, u64)>,
        entities: Vec<SentenceCounts>,
    },
    /// Gold and predicted label sets per text (sorted, distinct), `k` labels.
    Sets {
        gold: Vec<Vec<usize>>,
        pred: Vec<Vec<usize>>,
        k: usize,
    },
    /// Gold and predicted value per text.
    Values { gold: Vec<f64>, pred: Vec<f64> },
    /// Attachment counts per sentence (dependency trees).
    Attachments(Vec<AttachmentCounts>),
}

impl Examples {
    /// Label sets, deduplicated and sorted so that set operations are merges.
    pub fn sets(gold: &[Vec<usize>], pred: &[Vec<usize>], k: usize) -> Examples {
        let norm = |s: &Vec<usize>| {
            let mut s = s.clone();
            s.sort_unstable();
            s.dedup();
            s
        };
        Examples::Sets {
            gold: gold.iter().map(norm).collect(),
            pred: pred.iter().map(norm).collect(),
            k,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Examples::Classes { gold, .. } => gold.len(),
            Examples::Sentences { words, .. } => words.len(),
            Examples::Sets { gold, .. } => gold.len(),
            Examples::Values { gold, .. } => gold.len(),
            Examples::Attachments(counts) => counts.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value on every example once: the point score.
    pub fn score(&self, h: &Headline) -> f64 {
        let all: Vec<usize> = (0..self.len()).collect();
        self.value(h, &all)
    }

    /// `h` on the examples at `idx` (repeats count again). A headline that
    /// does not apply to these examples ([`Headline::resolve`] prevents
    /// that) is 0.
    pub fn value(&self, h: &Headline, idx: &[usize]) -> f64 {
        match self {
            Examples::Classes { gold, pred, k } => {
                let mut confusion = vec![vec![0u64; *k]; *k];
                for &i in idx {
                    if let (Some(&g), Some(&p)) = (gold.get(i), pred.get(i))
                        && g < *k
                        && p < *k
                    {
                        confusion[g][p] += 1;
                    }
                }
                let a = Averages::of(&confusion);
                match h {
                    Headline::Accuracy => a.accuracy,
                    Headline::MacroF1 => a.macro_f1,
                    Headline::MicroF1 => a.micro_f1,
                    Headline::WeightedF1 => a.weighted_f1,
                    Headline::MacroPrecision => a.macro_precision,
                    Headline::MacroRecall => a.macro_recall,
                    Headline::F1Of(ids) if !ids.is_empty() => {
                        ids.iter()
                            .map(|&(id, _)| a.f1.get(id).copied().unwrap_or(0.0))
                            .sum::<f64>()
                            / ids.len() as f64
                    }
                    _ => 0.0,
                }
            }
            Examples::Sentences { words, entities } => {
                let (mut right, mut total) = (0u64, 0u64);
                let mut c = SentenceCounts::default();
                for &i in idx {
                    if let Some(&(r, t)) = words.get(i) {
                        right += r;
                        total += t;
                    }
                    if let Some(e) = entities.get(i) {
                        c.correct += e.correct;
                        c.gold += e.gold;
                        c.pred += e.pred;
                    }
                }
                let p = ratio(c.correct, c.pred);
                let r = ratio(c.correct, c.gold);
                match h {
                    Headline::Accuracy => ratio(right, total),
                    Headline::EntityF1 => f1(p, r),
                    Headline::EntityPrecision => p,
                    Headline::EntityRecall => r,
                    _ => 0.0,
                }
            }
            Examples::Sets { gold, pred, k } => sets_value(h, gold, pred, *k, idx),
            Examples::Attachments(counts) => {
                let c = dependency::total(counts, idx);
                match h {
                    Headline::Uas => c.uas(),
                    Headline::Las => c.las(),
                    Headline::Clas => c.clas(),
                    _ => 0.0,
                }
            }
            Examples::Values { gold, pred } => {
                let g: Vec<f64> = idx.iter().filter_map(|&i| gold.get(i).copied()).collect();
                let p: Vec<f64> = idx.iter().filter_map(|&i| pred.get(i).copied()).collect();
                let n = g.len().min(p.len());
                let mean_sq = if n == 0 {
                    0.0
                } else {
                    g.iter()
                        .zip(&p)
                        .map(|(a, b)| (b - a) * (b - a))
                        .sum::<f64>()
                        / n as f64
                };
                match h {
                    Headline::Pearson => pearson(&g, &p),
                    Headline::Spearman => pearson(&ranks(&g), &ranks(&p)),
                    Headline::Mse => mean_sq,
                    Headline::Rmse => mean_sq.sqrt(),
                    Headline::Mae if n > 0 => {
                        g.iter().zip(&p).map(|(a, b)| (b - a).abs()).sum::<f64>() / n as f64
                    }
                    _ => 0.0,
                }
            }
        }
    }
}

/// Multilabel headlines, with the conventions of [`super::multilabel`].
fn sets_value(
    h: &Headline,
    gold: &[Vec<usize>],
    pred: &[Vec<usize>],
    k: usize,
    idx: &[usize],
) -> f64 {
    let (mut tp, mut support, mut predicted) = (vec![0u64; k], vec![0u64; k], vec![0u64; k]);
    let (mut exact, mut samples_sum, mut n) = (0u64, 0.0, 0u64);
    for &i in idx {
        let (Some(g), Some(p)) = (gold.get(i), pred.get(i)) else {
            continue;
        };
        n += 1;
        let mut hits = 0u64;
        for &id in g.iter().filter(|&&id| id < k) {
            support[id] += 1;
            if p.binary_search(&id).is_ok() {
                tp[id] += 1;
                hits += 1;
            }
        }
        for &id in p.iter().filter(|&&id| id < k) {
            predicted[id] += 1;
        }
        if g == p {
            exact += 1;
        }
        let sizes = (g.len() + p.len()) as u64;
        samples_sum += if sizes == 0 {
            1.0
        } else {
            ratio(2 * hits, sizes)
        };
    }
    match h {
        Headline::MicroF1 => {
            let all_tp = tp.iter().sum();
            f1(
                ratio(all_tp, predicted.iter().sum()),
                ratio(all_tp, support.iter().sum()),
            )
        }
        Headline::MacroF1 => {
            let (mut sum, mut present) = (0.0, 0usize);
            for id in 0..k {
                if support[id] > 0 || predicted[id] > 0 {
                    sum += f1(ratio(tp[id], predicted[id]), ratio(tp[id], support[id]));
                    present += 1;
                }
            }
            if present == 0 {
                0.0
            } else {
                sum / present as f64
            }
        }
        Headline::SamplesF1 if n > 0 => samples_sum / n as f64,
        Headline::SubsetAccuracy => ratio(exact, n),
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assert_close;
    use crate::classification::classification_metrics;
    use crate::multilabel::multilabel_metrics;
    use crate::regression::regression_metrics;

    fn names(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    fn metric(name: &str) -> HeadlineMetric {
        HeadlineMetric::Named(name.into())
    }

    #[test]
    fn defaults_per_kind() {
        let r = |k| Headline::resolve(k, None, &[]).unwrap();
        assert_eq!(r(TaskKind::Classification), Headline::MacroF1);
        assert_eq!(r(TaskKind::Tagging), Headline::Accuracy);
        assert_eq!(r(TaskKind::Spans), Headline::EntityF1);
        assert_eq!(r(TaskKind::Multilabel), Headline::MicroF1);
        assert_eq!(r(TaskKind::Regression), Headline::Pearson);
        assert_eq!(r(TaskKind::Dependency), Headline::Las);
        let clas = HeadlineMetric::Named("clas".into());
        let h = Headline::resolve(TaskKind::Dependency, Some(&clas), &[]).unwrap();
        assert_eq!((h.name(), h.lower_is_better()), ("clas".to_string(), false));
        assert!(Headline::resolve(TaskKind::Tagging, Some(&clas), &[]).is_err());
    }

    #[test]
    fn names_and_f1_of_resolve_against_the_vocabulary() {
        let labels = names(&["against", "favor", "none"]);
        let c = TaskKind::Classification;
        assert_eq!(
            Headline::resolve(c, Some(&metric("macro_recall")), &labels).unwrap(),
            Headline::MacroRecall
        );
        let h = Headline::resolve(
            c,
            Some(&HeadlineMetric::F1Of {
                f1_of: names(&["against", "favor"]),
            }),
            &labels,
        )
        .unwrap();
        assert_eq!(
            h,
            Headline::F1Of(vec![(0, "against".into()), (1, "favor".into())])
        );
        assert_eq!(h.name(), "f1_of(against, favor)");

        let err = Headline::resolve(c, Some(&metric("f2")), &labels).unwrap_err();
        assert!(
            err.contains("`f2`") && err.contains("macro_recall"),
            "{err}"
        );
        let err = Headline::resolve(
            c,
            Some(&HeadlineMetric::F1Of {
                f1_of: names(&["ironic"]),
            }),
            &labels,
        )
        .unwrap_err();
        assert!(err.contains("`ironic`") && err.contains("against"), "{err}");
        // A name of another kind is unknown here.
        assert!(Headline::resolve(TaskKind::Tagging, Some(&metric("pearson")), &[]).is_err());
        assert!(
            Headline::resolve(
                TaskKind::Spans,
                Some(&HeadlineMetric::F1Of {
                    f1_of: names(&["PER"])
                }),
                &[]
            )
            .is_err()
        );
        assert!(Headline::Rmse.lower_is_better() && !Headline::Pearson.lower_is_better());
    }

    #[test]
    fn class_headlines_equal_the_full_metrics() {
        // The worked example of `classification`: macro 59/90, weighted 61/90.
        let (gold, pred) = (vec![0, 0, 0, 1, 1, 2], vec![0, 0, 1, 1, 2, 2]);
        let labels = names(&["a", "b", "c", "d"]);
        let m = classification_metrics(&gold, &pred, &labels).unwrap();
        let ex = Examples::Classes { gold, pred, k: 4 };
        assert_close(ex.score(&Headline::MacroF1), 59.0 / 90.0);
        assert_eq!(ex.score(&Headline::WeightedF1), m.weighted_f1);
        assert_eq!(ex.score(&Headline::MacroRecall), m.macro_recall);
        assert_eq!(ex.score(&Headline::Accuracy), m.accuracy);
        // F1 of a (0.8) and c (2/3): 11/15
        let h = Headline::F1Of(vec![(0, "a".into()), (2, "c".into())]);
        assert_close(ex.score(&h), 11.0 / 15.0);
        // A resample: examples 0 and 0 again and 4 (gold b, pred c):
        // a: P 1 R 1 F1 1; b: gold, never predicted -> 0; c: predicted, no gold -> 0
        // macro = 1/3, accuracy 2/3
        assert_close(ex.value(&Headline::MacroF1, &[0, 0, 4]), 1.0 / 3.0);
        assert_close(ex.value(&Headline::Accuracy, &[0, 0, 4]), 2.0 / 3.0);
    }

    #[test]
    fn sentence_headlines_sum_counts() {
        // s0: 3 of 4 words, entities 1 correct of 2 predicted, 2 gold
        // s1: 1 of 1 word, entities 1/1/1
        let ex = Examples::Sentences {
            words: vec![(3, 4), (1, 1)],
            entities: vec![
                SentenceCounts {
                    correct: 1,
                    gold: 2,
                    pred: 2,
                },
                SentenceCounts {
                    correct: 1,
                    gold: 1,
                    pred: 1,
                },
            ],
        };
        assert_close(ex.score(&Headline::Accuracy), 0.8);
        // correct 2, predicted 3, gold 3 -> P = R = F1 = 2/3
        assert_close(ex.score(&Headline::EntityF1), 2.0 / 3.0);
        // s1 twice: 2/2 words, entities 2 of 2 -> 1
        assert_close(ex.value(&Headline::EntityPrecision, &[1, 1]), 1.0);
        assert_close(ex.value(&Headline::Accuracy, &[0, 0]), 0.75);
    }

    #[test]
    fn set_headlines_equal_the_full_metrics() {
        let gold = vec![vec![0, 1], vec![2], vec![], vec![0]];
        let pred = vec![vec![0], vec![2, 1], vec![], vec![0, 0]];
        let m = multilabel_metrics(&gold, &pred, &names(&["a", "b", "c", "d"])).unwrap();
        let ex = Examples::sets(&gold, &pred, 4);
        assert_eq!(ex.score(&Headline::MicroF1), m.micro_f1);
        assert_eq!(ex.score(&Headline::MacroF1), m.macro_f1);
        assert_close(ex.score(&Headline::SamplesF1), m.samples_f1);
        assert_eq!(ex.score(&Headline::SubsetAccuracy), m.subset_accuracy);
        assert_close(ex.score(&Headline::MicroF1), 0.75);
    }

    #[test]
    fn value_headlines_equal_the_full_metrics() {
        let (gold, pred) = (vec![1.0, 2.0, 3.0, 4.0], vec![2.0, 2.0, 4.0, 3.0]);
        let m = regression_metrics(&gold, &pred).unwrap();
        let ex = Examples::Values { gold, pred };
        assert_eq!(ex.score(&Headline::Pearson), m.pearson);
        assert_eq!(ex.score(&Headline::Spearman), m.spearman);
        assert_close(ex.score(&Headline::Mse), 0.75);
        assert_close(ex.score(&Headline::Rmse), m.rmse);
        assert_close(ex.score(&Headline::Mae), 0.75);
    }
}
