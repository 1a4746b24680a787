//! Dev-set scores for model selection and early stopping: each task's
//! headline metric (`[[tasks]] metric`, else its kind's default), computed
//! by `mtl-metrics` exactly as `mtl-eval` computes the reported score, so
//! the kept weights are the ones that maximize what the report shows.
//!
//! Two differences from eval remain, both because training holds windows,
//! not examples: a windowed example is scored window by window (each word
//! is scored in exactly one window, so word accuracy is the same, but an
//! entity cut by a window boundary counts as two), and words lost to `cut`
//! truncation are not scored. Neither depends on the weights being compared.
//!
//! Lower-is-better headlines (`mse`, `rmse`, `mae`) enter the selection mean
//! negated ([`selection_value`]); the log shows their own values.

use std::collections::BTreeMap;

use candle_core::Device;
use mtl_core::{FeatureSet, LabelSet, PipelineConfig, TaskKind};
use mtl_metrics::dependency::AttachmentCounts;
use mtl_metrics::headline::{Examples, Headline};
use mtl_metrics::spans::{SentenceCounts, sentence_counts};
use mtl_model::heads::biaffine::word_number;
use mtl_model::{MultiTaskModel, TaskOutput};

use crate::data::{Example, RowTarget};
use crate::error::{Error, Result};

/// How one task is scored on dev: its headline and label names (span
/// tasks read entities out of the names).
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub headline: Headline,
    pub labels: Vec<String>,
}

impl Selection {
    /// The kind's default headline, for tasks the map leaves out.
    fn default_for(kind: TaskKind) -> Selection {
        Selection {
            headline: Headline::resolve(kind, None, &[]).unwrap_or(Headline::Accuracy),
            labels: Vec::new(),
        }
    }
}

/// Every configured task's [`Selection`], with the config's `metric`.
pub fn selections(cfg: &PipelineConfig, labels: &LabelSet) -> Result<BTreeMap<String, Selection>> {
    cfg.tasks
        .iter()
        .map(|t| {
            let names = labels.get(&t.name)?.labels.clone();
            let headline =
                Headline::resolve(t.kind, t.metric.as_ref(), &names).map_err(|message| {
                    Error::Data {
                        path: cfg.source.path.clone(),
                        message: format!("[[tasks]] `{}` metric: {message}", t.name),
                    }
                })?;
            Ok((
                t.name.clone(),
                Selection {
                    headline,
                    labels: names,
                },
            ))
        })
        .collect()
}

/// The value a score adds to the selection mean: higher is always better.
pub fn selection_value(headline: &Headline, score: f64) -> f64 {
    if headline.lower_is_better() {
        -score
    } else {
        score
    }
}

/// Per task with labelled rows in `examples`, its headline on them.
#[allow(clippy::too_many_arguments)]
pub fn dev_scores(
    model: &MultiTaskModel,
    features: &FeatureSet,
    examples: &[Example],
    selections: &BTreeMap<String, Selection>,
    batch_size: usize,
    pad_to: Option<usize>,
    device: &Device,
) -> Result<BTreeMap<String, f64>> {
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let order: Vec<usize> = (0..examples.len()).collect();
    for chunk in order.chunks(batch_size.max(1)) {
        let batch = crate::batching::batch_rows(examples, chunk, features, pad_to, device)?;
        let out = mtl_model::bundle::predict(model, &batch)?;
        for (task, pred) in out {
            let head = model.spec.head(&task);
            let a = acc.entry(task.clone()).or_insert_with(|| Acc {
                k: head.map_or(0, |h| h.num_labels),
                ..Acc::default()
            });
            let sel = selections.get(&task);
            let names = sel.map_or(&[][..], |s| s.labels.as_slice());
            let spans = head.is_some_and(|h| h.kind == TaskKind::Spans);
            for (k, &i) in chunk.iter().enumerate() {
                let gold = examples[i].targets.get(&task);
                if let TaskOutput::Tree { .. } = pred {
                    let starts = batch.word_starts.as_ref().map(|s| s[k].as_slice());
                    a.add_tree(gold, &pred, k, starts, names);
                } else {
                    a.add(gold, &pred, k, spans.then_some(names));
                }
            }
        }
    }
    let mut scores = BTreeMap::new();
    for (task, a) in acc {
        let kind = model.spec.head(&task).map(|h| h.kind);
        let sel = match (selections.get(&task), kind) {
            (Some(s), _) => s.clone(),
            (None, Some(kind)) => Selection::default_for(kind),
            (None, None) => continue,
        };
        if let Some(ex) = a.examples(&task)? {
            scores.insert(task, ex.score(&sel.headline));
        }
    }
    Ok(scores)
}

/// The mean of `scores` in selection direction (see [`selection_value`]).
pub fn selection_mean(
    scores: &BTreeMap<String, f64>,
    selections: &BTreeMap<String, Selection>,
) -> f64 {
    let sum: f64 = scores
        .iter()
        .map(|(task, &s)| match selections.get(task) {
            Some(sel) => selection_value(&sel.headline, s),
            None => s,
        })
        .sum();
    sum / scores.len().max(1) as f64
}

/// What the scored rows of one task contribute, in `mtl-metrics`' terms.
#[derive(Default)]
struct Acc {
    /// Label vocabulary size.
    k: usize,
    classes: (Vec<usize>, Vec<usize>),
    words: Vec<(u64, u64)>,
    entities: Vec<SentenceCounts>,
    sets: (Vec<Vec<usize>>, Vec<Vec<usize>>),
    values: (Vec<f64>, Vec<f64>),
    /// A span task whose label names were missing or did not cover an id.
    bad_names: bool,
    /// Per sentence of a dependency task.
    trees: Vec<AttachmentCounts>,
    bad_tree: bool,
}

impl Acc {
    /// Adds row `k` of `pred`; `span_names` holds the label names of a
    /// span task (entities are read out of them).
    fn add(
        &mut self,
        gold: Option<&RowTarget>,
        pred: &TaskOutput,
        k: usize,
        span_names: Option<&[String]>,
    ) {
        match (gold, pred) {
            (Some(RowTarget::Sentence(y)), TaskOutput::Sentence { label, .. }) if *y >= 0 => {
                self.classes.0.push(*y as usize);
                self.classes.1.push(label[k] as usize);
            }
            (Some(RowTarget::Token(y)), TaskOutput::Token { label, .. }) => {
                let (mut g, mut p) = (Vec::new(), Vec::new());
                for (pos, gold) in y.iter().enumerate() {
                    if *gold >= 0 {
                        g.push(*gold as usize);
                        p.push(label[k].get(pos).map_or(usize::MAX, |&l| l as usize));
                    }
                }
                let right = g.iter().zip(&p).filter(|(a, b)| a == b).count() as u64;
                self.words.push((right, g.len() as u64));
                if let Some(names) = span_names {
                    let tag = |i: &usize| names.get(*i).map(String::as_str);
                    let gt: Option<Vec<&str>> = g.iter().map(tag).collect();
                    let pt: Option<Vec<&str>> = p.iter().map(tag).collect();
                    match (gt, pt) {
                        (Some(gt), Some(pt)) => match sentence_counts(&gt, &pt) {
                            Ok(c) => self.entities.push(c),
                            Err(_) => self.bad_names = true,
                        },
                        _ => self.bad_names = true,
                    }
                }
            }
            (Some(RowTarget::Multilabel(y)), TaskOutput::Multilabel { labels, .. }) => {
                self.sets.0.push(y.iter().map(|&l| l as usize).collect());
                self.sets
                    .1
                    .push(labels[k].iter().map(|&l| l as usize).collect());
            }
            (Some(RowTarget::Regression(y)), TaskOutput::Regression { value }) => {
                self.values.0.push(f64::from(*y));
                self.values.1.push(f64::from(value[k]));
            }
            _ => {}
        }
    }

    /// Adds row `k` of a dependency task's `pred`: the words of the row
    /// (`starts`, its word starts) with a gold head, numbered as CoNLL-U
    /// numbers them, relations by their names.
    fn add_tree(
        &mut self,
        gold: Option<&RowTarget>,
        pred: &TaskOutput,
        k: usize,
        starts: Option<&[usize]>,
        names: &[String],
    ) {
        let (Some(RowTarget::Tree { heads, rels }), TaskOutput::Tree { head, label, .. }) =
            (gold, pred)
        else {
            return;
        };
        let Some(starts) = starts else {
            self.bad_tree = true;
            return;
        };
        let word = |pos: i64| {
            usize::try_from(pos)
                .ok()
                .and_then(|p| word_number(starts, p))
        };
        let name = |id: i64| usize::try_from(id).ok().and_then(|i| names.get(i));
        let (mut gh, mut gr, mut ph, mut pr) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &p in starts {
            let Some(&g) = heads.get(p).filter(|&&g| g >= 0) else {
                continue;
            };
            let got = (
                word(g.into()),
                rels.get(p).and_then(|&r| name(r.into())),
                head[k].get(p).and_then(|&h| word(h.into())),
                label[k].get(p).and_then(|&r| name(r.into())),
            );
            let (Some(a), Some(b), Some(c), Some(d)) = got else {
                self.bad_tree = true;
                return;
            };
            gh.push(a);
            gr.push(b.as_str());
            ph.push(c);
            pr.push(d.as_str());
        }
        // A word's head may have lost its number when the sentence was cut;
        // the metric's own range checks then reject the sentence.
        match mtl_metrics::dependency::sentence_counts(&gh, &gr, &ph, &pr) {
            Ok(c) => self.trees.push(c),
            Err(_) => self.bad_tree = true,
        }
    }

    /// The examples of `task` to score, or `None` when no row carried it.
    fn examples(self, task: &str) -> Result<Option<Examples>> {
        if self.bad_names {
            return Err(Error::Scoring {
                task: task.to_string(),
                message: "its label names (labels.json) do not cover the model's label ids".into(),
            });
        }
        if self.bad_tree {
            return Err(Error::Scoring {
                task: task.to_string(),
                message: "a dev row's gold or predicted tree does not fit its words \
                          (word starts missing, a head outside the row, or a relation \
                          id beyond labels.json)"
                    .into(),
            });
        }
        Ok(if !self.trees.is_empty() {
            Some(Examples::Attachments(self.trees))
        } else if !self.classes.0.is_empty() {
            Some(Examples::Classes {
                gold: self.classes.0,
                pred: self.classes.1,
                k: self.k,
            })
        } else if !self.words.is_empty() {
            Some(Examples::Sentences {
                words: self.words,
                entities: self.entities,
            })
        } else if !self.sets.0.is_empty() {
            Some(Examples::sets(&self.sets.0, &self.sets.1, self.k))
        } else if !self.values.0.is_empty() {
            Some(Examples::Values {
                gold: self.values.0,
                pred: self.values.1,
            })
        } else {
            None
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(h: Headline, labels: &[&str]) -> Selection {
        Selection {
            headline: h,
            labels: labels.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn spans_are_scored_by_entity_f1_not_by_tag_accuracy() {
        // One sentence of 4 words: gold `B-X I-X O B-Y`, predicted
        // `B-X O O B-Y`. Tag accuracy is 3/4, but only 1 of 2 entities is
        // right on each side: entity F1 = 0.5, the number eval reports.
        let names = ["O", "B-X", "I-X", "B-Y", "I-Y"];
        let s = sel(Headline::EntityF1, &names);
        let mut a = Acc {
            k: 5,
            ..Acc::default()
        };
        let names_owned = s.labels.clone();
        // Position 0 is [CLS] (not scored), then the four words.
        let gold = RowTarget::Token(vec![-100, 1, 2, 0, 3]);
        let pred = TaskOutput::Token {
            label: vec![vec![0, 1, 0, 0, 3]],
            prob: vec![vec![1.0; 5]],
        };
        a.add(Some(&gold), &pred, 0, Some(&names_owned));
        let ex = a.examples("t").unwrap().unwrap();
        assert!((ex.score(&Headline::EntityF1) - 0.5).abs() < 1e-12);
        assert!((ex.score(&Headline::Accuracy) - 0.75).abs() < 1e-12);
    }

    #[test]
    fn classification_uses_the_configured_headline() {
        // Gold 0 0 0 1, predicted 0 0 0 0: accuracy 0.75, but macro-F1
        // (class 0: F1 6/7, class 1: 0) is 3/7 and F1 of class 1 is 0.
        let mut a = Acc {
            k: 2,
            ..Acc::default()
        };
        let pred = TaskOutput::Sentence {
            label: vec![0, 0, 0, 0],
            prob: vec![1.0; 4],
        };
        for (k, y) in [0, 0, 0, 1].into_iter().enumerate() {
            a.add(Some(&RowTarget::Sentence(y)), &pred, k, None);
        }
        a.add(Some(&RowTarget::Sentence(-1)), &pred, 0, None);
        let ex = a.examples("t").unwrap().unwrap();
        assert_eq!(ex.len(), 4, "a row without a label is not scored");
        assert!((ex.score(&Headline::Accuracy) - 0.75).abs() < 1e-12);
        assert!((ex.score(&Headline::MacroF1) - 3.0 / 7.0).abs() < 1e-12);
        let f1_of = Headline::F1Of(vec![(1, "b".into())]);
        assert_eq!(ex.score(&f1_of), 0.0);
    }

    #[test]
    fn multilabel_and_regression_examples() {
        let mut a = Acc {
            k: 3,
            ..Acc::default()
        };
        let pred = TaskOutput::Multilabel {
            probs: vec![vec![0.9, 0.8, 0.1], vec![0.1, 0.1, 0.1]],
            labels: vec![vec![0, 1], vec![]],
        };
        a.add(Some(&RowTarget::Multilabel(vec![0, 2])), &pred, 0, None);
        a.add(Some(&RowTarget::Multilabel(vec![])), &pred, 1, None);
        a.add(None, &pred, 1, None);
        // tp 1, fp 1, fn 1: micro-F1 2 / 4.
        let ex = a.examples("t").unwrap().unwrap();
        assert!((ex.score(&Headline::MicroF1) - 0.5).abs() < 1e-12);

        let mut r = Acc::default();
        let pred = TaskOutput::Regression {
            value: vec![1.0, 2.0, 4.0],
        };
        for (k, y) in [1.0f32, 2.0, 3.0].into_iter().enumerate() {
            r.add(Some(&RowTarget::Regression(y)), &pred, k, None);
        }
        let ex = r.examples("t").unwrap().unwrap();
        // Errors 0, 0, 1: MSE 1/3.
        assert!((ex.score(&Headline::Mse) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn lower_is_better_headlines_are_negated_for_selection() {
        let sels: BTreeMap<String, Selection> = [
            ("a".to_string(), sel(Headline::Mse, &[])),
            ("b".to_string(), sel(Headline::MacroF1, &[])),
        ]
        .into_iter()
        .collect();
        let scores: BTreeMap<String, f64> = [("a".to_string(), 0.2), ("b".to_string(), 0.8)]
            .into_iter()
            .collect();
        assert!((selection_mean(&scores, &sels) - 0.3).abs() < 1e-12);
    }
}
