//! Turning one split's gold and predictions into one task's scores: the task
//! mask, word alignment for token tasks, truncated words, and the baseline.

use mtl_core::align::first_subtoken_positions;
use mtl_core::artifact::{IGNORE_INDEX, col};
use mtl_core::{TaskKind, TaskLabels};

use crate::data::{Gold, SplitData};
use crate::error::{Error, Result};
use crate::metrics::headline::{Examples, Headline};
use crate::metrics::{
    baseline, bootstrap, classification::classification_metrics, multilabel::multilabel_metrics,
    regression::regression_metrics, spans::sentence_counts, spans::span_metrics,
    tagging::word_accuracy,
};
use crate::predict::RowPreds;
use crate::report::{
    MultilabelDetail, RegressionDetail, SpanDetail, SplitMetrics, TaskDetail, WordDetail,
};
use crate::truncated::WordLabels;

/// Rows that carry `task` and lost words to truncation.
pub fn truncated_rows<'a>(data: &'a SplitData, task: &str) -> Vec<&'a str> {
    let Some(Gold::Token(gold)) = data.gold.get(task) else {
        return Vec::new();
    };
    (0..data.len())
        .filter(|&r| gold[r].is_some())
        .filter(|&r| first_subtoken_positions(&data.word_ids[r], data.n_words[r]).contains(&None))
        .map(|r| data.ids[r].as_str())
        .collect()
}

/// One task as [`score_task`] scores it.
pub struct TaskRef<'a> {
    pub name: &'a str,
    pub kind: TaskKind,
    pub labels: &'a TaskLabels,
    pub headline: &'a Headline,
    /// The number of labelled training texts, which only the multilabel
    /// baseline uses ([`baseline::multilabel_set`]).
    pub train_texts: u64,
    /// Seed of the bootstrap resamples ([`bootstrap::seed_for`]).
    pub seed: u64,
}

/// The headline of the model's and the baseline's examples, with the
/// model's bootstrap interval.
fn headline_scores(
    h: &Headline,
    model: &Examples,
    base: &Examples,
    seed: u64,
) -> (f64, f64, Option<[f64; 2]>) {
    let ci = bootstrap::interval(model.len(), bootstrap::RESAMPLES, seed, |idx| {
        model.value(h, idx)
    });
    (model.score(h), base.score(h), ci)
}

/// Scores `task` on `data`. `full_words` holds the gold labels of every word
/// of rows that lost words to truncation, when the split table was found.
pub fn score_task(
    data: &SplitData,
    task: &TaskRef,
    preds: &RowPreds,
    full_words: Option<&WordLabels>,
) -> Result<SplitMetrics> {
    let (name, kind, labels, h) = (task.name, task.kind, task.labels, task.headline);
    let missing = || Error::Task {
        path: data.path.clone(),
        task: name.to_string(),
        message: "the model gave no prediction of the right kind for this task".into(),
    };
    let metric_err = |source| Error::Metric {
        task: name.to_string(),
        source,
    };
    let k = labels.len();
    match (data.gold.get(name), preds) {
        (Some(Gold::Sentence(gold)), RowPreds::Sentence(pred))
            if kind == TaskKind::Classification =>
        {
            let (g, p) = sentence_pairs(data, name, labels, gold, pred)?;
            let m = classification_metrics(&g, &p, &labels.labels).map_err(metric_err)?;
            let base = Examples::Classes {
                pred: vec![labels.majority(); g.len()],
                gold: g.clone(),
                k,
            };
            let model = Examples::Classes {
                gold: g,
                pred: p,
                k,
            };
            let (score, baseline, ci) = headline_scores(h, &model, &base, task.seed);
            Ok(SplitMetrics {
                n: m.n,
                score,
                ci,
                baseline,
                metrics: TaskDetail::Classification(m),
            })
        }
        (Some(Gold::Token(gold)), RowPreds::Token(pred)) if kind.is_token_level() => {
            let words = word_pairs(data, name, labels, gold, pred, full_words)?;
            let flat_gold: Vec<usize> = words.gold.iter().flatten().copied().collect();
            let flat_pred: Vec<usize> = words.pred.iter().flatten().copied().collect();
            let detail = WordDetail {
                words: word_accuracy(&flat_gold, &flat_pred).map_err(metric_err)?,
                truncated_words: words.truncated,
                unscored_words: words.unscored,
            };
            let n = words.gold.len() as u64;
            let majority = labels.majority();
            let right = |g: &[usize], p: &[usize]| {
                let r = g.iter().zip(p).filter(|(a, b)| a == b).count() as u64;
                (r, g.len() as u64)
            };
            let model_words: Vec<(u64, u64)> = words
                .gold
                .iter()
                .zip(&words.pred)
                .map(|(g, p)| right(g, p))
                .collect();
            let base_words: Vec<(u64, u64)> = words
                .gold
                .iter()
                .map(|g| right(g, &vec![majority; g.len()]))
                .collect();
            if kind == TaskKind::Tagging {
                let model = Examples::Sentences {
                    words: model_words,
                    entities: Vec::new(),
                };
                let base = Examples::Sentences {
                    words: base_words,
                    entities: Vec::new(),
                };
                let (score, baseline, ci) = headline_scores(h, &model, &base, task.seed);
                return Ok(SplitMetrics {
                    n,
                    score,
                    ci,
                    baseline,
                    metrics: TaskDetail::Tagging(detail),
                });
            }
            let tag_names = |ids: &Vec<usize>| -> Vec<&str> {
                ids.iter().map(|&i| labels.labels[i].as_str()).collect()
            };
            let gold_tags: Vec<Vec<&str>> = words.gold.iter().map(tag_names).collect();
            let pred_tags: Vec<Vec<&str>> = words.pred.iter().map(tag_names).collect();
            let entities = span_metrics(&gold_tags, &pred_tags).map_err(metric_err)?;
            let majority_tag = labels.labels.get(majority).map_or("O", String::as_str);
            let (mut model_ents, mut base_ents) = (Vec::new(), Vec::new());
            for (g, p) in gold_tags.iter().zip(&pred_tags) {
                model_ents.push(sentence_counts(g, p).map_err(metric_err)?);
                base_ents
                    .push(sentence_counts(g, &vec![majority_tag; g.len()]).map_err(metric_err)?);
            }
            let model = Examples::Sentences {
                words: model_words,
                entities: model_ents,
            };
            let base = Examples::Sentences {
                words: base_words,
                entities: base_ents,
            };
            let (score, baseline, ci) = headline_scores(h, &model, &base, task.seed);
            Ok(SplitMetrics {
                n,
                score,
                ci,
                baseline,
                metrics: TaskDetail::Spans(SpanDetail {
                    entities,
                    words: detail,
                }),
            })
        }
        (Some(Gold::Multilabel(gold)), RowPreds::Multilabel(pred))
            if kind == TaskKind::Multilabel =>
        {
            let (g, p) = label_set_pairs(data, name, labels, gold, pred)?;
            let m = multilabel_metrics(&g, &p, &labels.labels).map_err(metric_err)?;
            let set = baseline::multilabel_set(labels, task.train_texts);
            let b = baseline::multilabel(&g, &set, labels).map_err(metric_err)?;
            let model = Examples::sets(&g, &p, k);
            let base = Examples::sets(&g, &vec![set.clone(); g.len()], k);
            let (score, baseline, ci) = headline_scores(h, &model, &base, task.seed);
            Ok(SplitMetrics {
                n: m.n,
                score,
                ci,
                baseline,
                metrics: TaskDetail::Multilabel(MultilabelDetail {
                    metrics: m,
                    baseline_labels: set.iter().map(|&i| labels.labels[i].clone()).collect(),
                    baseline: b,
                }),
            })
        }
        (Some(Gold::Regression(gold)), RowPreds::Regression(pred))
            if kind == TaskKind::Regression =>
        {
            let column = col::target(name);
            let (mut g, mut p) = (Vec::new(), Vec::new());
            for (row, y) in gold.iter().enumerate() {
                let Some(y) = *y else { continue };
                let yhat = pred
                    .get(row)
                    .copied()
                    .ok_or_else(|| data.row_error(row, &column, "no prediction"))?;
                if !yhat.is_finite() {
                    return Err(data.row_error(
                        row,
                        &column,
                        format!("the model predicted {yhat}"),
                    ));
                }
                g.push(f64::from(y));
                p.push(f64::from(yhat));
            }
            let m = regression_metrics(&g, &p).map_err(metric_err)?;
            let mean = labels.target.map(|t| t.mean).ok_or_else(|| Error::Task {
                path: data.path.clone(),
                task: name.to_string(),
                message: "labels.json has no training statistics (`target`) for this \
                          regression task (re-run `mtl-split`)"
                    .into(),
            })?;
            let b = baseline::regression(&g, mean).map_err(metric_err)?;
            let base = Examples::Values {
                pred: vec![mean; g.len()],
                gold: g.clone(),
            };
            let model = Examples::Values { gold: g, pred: p };
            let (score, baseline, ci) = headline_scores(h, &model, &base, task.seed);
            Ok(SplitMetrics {
                n: m.n,
                score,
                ci,
                baseline,
                metrics: TaskDetail::Regression(RegressionDetail {
                    metrics: m,
                    baseline_mean: mean,
                    baseline: b,
                }),
            })
        }
        _ => Err(missing()),
    }
}

/// One label-id set per scored text.
type LabelSets = Vec<Vec<usize>>;

/// Gold and predicted label sets of the rows that carry a multilabel task.
fn label_set_pairs(
    data: &SplitData,
    task: &str,
    labels: &TaskLabels,
    gold: &[Option<Vec<i32>>],
    pred: &[Vec<u32>],
) -> Result<(LabelSets, LabelSets)> {
    let column = col::target(task);
    let k = labels.len();
    let (mut g, mut p) = (Vec::new(), Vec::new());
    for (row, y) in gold.iter().enumerate() {
        let Some(y) = y else { continue };
        g.push(
            y.iter()
                .map(|&id| check_id(data, row, &column, "gold", id.into(), k))
                .collect::<Result<Vec<_>>>()?,
        );
        let yhat = pred
            .get(row)
            .ok_or_else(|| data.row_error(row, &column, "no prediction"))?;
        p.push(
            yhat.iter()
                .map(|&id| check_id(data, row, &column, "predicted", id.into(), k))
                .collect::<Result<Vec<_>>>()?,
        );
    }
    Ok((g, p))
}

fn check_id(
    data: &SplitData,
    row: usize,
    column: &str,
    what: &str,
    id: i64,
    n: usize,
) -> Result<usize> {
    if id < 0 || id as usize >= n {
        return Err(data.row_error(
            row,
            column,
            format!("{what} label id {id} is outside the task's {n} labels"),
        ));
    }
    Ok(id as usize)
}

/// Gold and predicted class ids of the rows that carry the task.
fn sentence_pairs(
    data: &SplitData,
    task: &str,
    labels: &TaskLabels,
    gold: &[Option<i32>],
    pred: &[u32],
) -> Result<(Vec<usize>, Vec<usize>)> {
    let column = col::target(task);
    let k = labels.len();
    let (mut g, mut p) = (Vec::new(), Vec::new());
    for (row, y) in gold.iter().enumerate() {
        let Some(y) = *y else { continue };
        g.push(check_id(data, row, &column, "gold", y.into(), k)?);
        let yhat = pred
            .get(row)
            .copied()
            .ok_or_else(|| data.row_error(row, &column, "no prediction"))?;
        p.push(check_id(data, row, &column, "predicted", yhat.into(), k)?);
    }
    Ok((g, p))
}

struct WordPairs {
    /// Per scored sentence, one id per scored word.
    gold: Vec<Vec<usize>>,
    pred: Vec<Vec<usize>>,
    truncated: u64,
    unscored: u64,
}

/// Gold and predicted word labels, read at each word's first sub-token.
/// Words cut off by truncation get the majority tag as their prediction and
/// their gold from `full_words`; without it they are left out (counted in
/// `unscored`). Truncation drops a suffix, so leaving those words out never
/// joins entities across a gap.
fn word_pairs(
    data: &SplitData,
    task: &str,
    labels: &TaskLabels,
    gold: &[Option<Vec<i32>>],
    pred: &[Vec<u32>],
    full_words: Option<&WordLabels>,
) -> Result<WordPairs> {
    let column = col::target(task);
    let k = labels.len();
    let majority = labels.majority();
    let mut out = WordPairs {
        gold: Vec::new(),
        pred: Vec::new(),
        truncated: 0,
        unscored: 0,
    };
    for (row, y) in gold.iter().enumerate() {
        let Some(y) = y else { continue };
        let n_words = data.n_words[row];
        let positions = first_subtoken_positions(&data.word_ids[row], n_words);
        let full = full_words
            .and_then(|m| m.get(&data.ids[row]))
            .filter(|words| words.len() == n_words);
        let row_pred = pred
            .get(row)
            .ok_or_else(|| data.row_error(row, &column, "no prediction"))?;
        let (mut g, mut p) = (Vec::with_capacity(n_words), Vec::with_capacity(n_words));
        for (w, pos) in positions.iter().enumerate() {
            match *pos {
                Some(pos) => {
                    let yw = y.get(pos).copied().unwrap_or(IGNORE_INDEX);
                    if yw == IGNORE_INDEX {
                        out.unscored += 1;
                        continue;
                    }
                    g.push(check_id(data, row, &column, "gold", yw.into(), k)?);
                    let yhat = row_pred.get(pos).copied().ok_or_else(|| {
                        data.row_error(
                            row,
                            &column,
                            format!("the model gave no prediction at position {pos}"),
                        )
                    })?;
                    p.push(check_id(data, row, &column, "predicted", yhat.into(), k)?);
                }
                None => {
                    out.truncated += 1;
                    match full.and_then(|words| labels.id(&words[w])) {
                        Some(id) => {
                            g.push(id);
                            p.push(majority);
                        }
                        None => out.unscored += 1,
                    }
                }
            }
        }
        out.gold.push(g);
        out.pred.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::assert_close;
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    /// [`score_task`] with the kind's default headline.
    fn score(
        data: &SplitData,
        name: &str,
        kind: TaskKind,
        labels: &TaskLabels,
        preds: &RowPreds,
        full_words: Option<&WordLabels>,
        train_texts: u64,
    ) -> Result<SplitMetrics> {
        let headline = Headline::resolve(kind, None, &labels.labels).unwrap();
        let task = TaskRef {
            name,
            kind,
            labels,
            headline: &headline,
            train_texts,
            seed: 1,
        };
        score_task(data, &task, preds, full_words)
    }

    fn labels(kind: TaskKind, names: &[&str], counts: &[u64]) -> TaskLabels {
        TaskLabels {
            kind,
            scheme: None,
            labels: names.iter().map(|s| s.to_string()).collect(),
            train_counts: counts.to_vec(),
            class_weights: None,
            target: None,
        }
    }

    /// Three rows. Row r1: [CLS] john ##ny lives [SEP] (2 words, both in the
    /// window). Row r2: [CLS] in paris (3 words, "paris" has a second
    /// sub-token and the last word "today" was cut off). Row r3: no label.
    fn data(gold: Gold, task: &str) -> SplitData {
        let mut g = BTreeMap::new();
        g.insert(task.to_string(), gold);
        SplitData {
            path: PathBuf::from("runs/t/tokenize/dev.parquet"),
            ids: vec!["r1".into(), "r2".into(), "r3".into()],
            input_ids: vec![vec![2, 10, 11, 12, 3], vec![2, 13, 14, 15], vec![2, 3]],
            word_ids: vec![vec![-1, 0, 0, 1, -1], vec![-1, 0, 1, 1], vec![-1, -1]],
            n_words: vec![2, 3, 0],
            gold: g,
            features: vec![BTreeMap::new(); 3],
            windows: None,
        }
    }

    // Span labels: O=0 B-PER=1 I-PER=2 B-LOC=3; O is the train majority.
    fn ner() -> TaskLabels {
        labels(
            TaskKind::Spans,
            &["O", "B-PER", "I-PER", "B-LOC"],
            &[50, 5, 2, 4],
        )
    }

    fn ner_gold() -> Gold {
        Gold::Token(vec![
            Some(vec![-100, 1, -100, 0, -100]), // B-PER O
            Some(vec![-100, 0, 3, -100]),       // O B-LOC (+ truncated word)
            None,
        ])
    }

    fn ner_pred() -> RowPreds {
        RowPreds::Token(vec![
            vec![0, 1, 2, 0, 0], // B-PER (I-PER on ##ny is ignored) O
            vec![0, 0, 3, 3],    // O B-LOC
            vec![0, 0],
        ])
    }

    #[test]
    fn spans_use_first_subtokens_and_skip_unlabelled_rows() {
        // Without split labels the truncated word of r2 cannot be scored:
        // gold  [B-PER O] [O B-LOC]   pred [B-PER O] [O B-LOC]
        // entities: 2 gold, 2 predicted, 2 correct -> F1 1; words 4/4.
        let d = data(ner_gold(), "ner");
        let m = score(&d, "ner", TaskKind::Spans, &ner(), &ner_pred(), None, 0).unwrap();
        assert_eq!(m.n, 2);
        assert_close(m.score, 1.0);
        assert_eq!(m.baseline, 0.0, "majority O finds no entity");
        let TaskDetail::Spans(s) = &m.metrics else {
            panic!("{m:?}")
        };
        assert_eq!((s.words.truncated_words, s.words.unscored_words), (1, 1));
        assert_eq!(s.words.words.n_words, 4);
        assert_eq!(s.entities.gold_entities, 2);
    }

    #[test]
    fn truncated_words_are_scored_as_majority_when_gold_is_known() {
        // r2's third word "today" is gold B-LOC in the split table and gets
        // the majority prediction O: gold entities 3, predicted 2, correct 2
        // -> P = 1, R = 2/3, F1 = 0.8; words 4 of 5.
        let d = data(ner_gold(), "ner");
        let mut full = WordLabels::new();
        full.insert(
            "r2".into(),
            vec!["O".into(), "B-LOC".into(), "B-LOC".into()],
        );
        let m = score(
            &d,
            "ner",
            TaskKind::Spans,
            &ner(),
            &ner_pred(),
            Some(&full),
            0,
        )
        .unwrap();
        assert_close(m.score, 0.8);
        let TaskDetail::Spans(s) = &m.metrics else {
            panic!()
        };
        assert_eq!((s.words.truncated_words, s.words.unscored_words), (1, 0));
        assert_eq!((s.words.words.correct_words, s.words.words.n_words), (4, 5));
        assert_eq!(truncated_rows(&d, "ner"), vec!["r2"]);
    }

    #[test]
    fn tagging_accuracy_and_majority_baseline() {
        // Tags N=0 V=1, train majority V. Gold [N V] [V V]; pred [N N] [V V].
        // Accuracy 3/4; baseline (all V) 3/4 too.
        let gold = Gold::Token(vec![
            Some(vec![-100, 0, -100, 1, -100]),
            Some(vec![-100, 1, 1, -100]),
            None,
        ]);
        let pred = RowPreds::Token(vec![vec![0, 0, 0, 0, 0], vec![0, 1, 1, 1], vec![0, 0]]);
        let d = data(gold, "pos");
        let l = labels(TaskKind::Tagging, &["N", "V"], &[1, 9]);
        let m = score(&d, "pos", TaskKind::Tagging, &l, &pred, None, 0).unwrap();
        assert_close(m.score, 0.75);
        assert_close(m.baseline, 0.75);
        assert!(matches!(m.metrics, TaskDetail::Tagging(_)));
    }

    #[test]
    fn classification_skips_masked_rows() {
        // Rows r1 and r3 carry the task: gold [a, b], pred [a, a].
        // macro-F1 = (2/3 + 0) / 2 = 1/3; baseline (train majority b) = (0 + 2/3) / 2 = 1/3
        let d = data(Gold::Sentence(vec![Some(0), None, Some(1)]), "s");
        let l = labels(TaskKind::Classification, &["a", "b"], &[1, 3]);
        let m = score(
            &d,
            "s",
            TaskKind::Classification,
            &l,
            &RowPreds::Sentence(vec![0, 1, 0]),
            None,
            0,
        )
        .unwrap();
        assert_eq!(m.n, 2);
        assert_close(m.score, 1.0 / 3.0);
        assert_close(m.baseline, 1.0 / 3.0);
    }

    #[test]
    fn configured_headline_scores_model_and_baseline_with_an_interval() {
        // Rows r1 and r3: gold [a, b], pred [a, a] (see above).
        // F1 of b: model 0 (never predicted); baseline always b: P 1/2 R 1 -> 2/3.
        // Macro recall: model (1 + 0) / 2 = 1/2.
        let d = data(Gold::Sentence(vec![Some(0), None, Some(1)]), "s");
        let l = labels(TaskKind::Classification, &["a", "b"], &[1, 3]);
        let pred = RowPreds::Sentence(vec![0, 1, 0]);
        let f1_b = Headline::F1Of(vec![(1, "b".into())]);
        let task = |headline| TaskRef {
            name: "s",
            kind: TaskKind::Classification,
            labels: &l,
            headline,
            train_texts: 0,
            seed: 3,
        };
        let m = score_task(&d, &task(&f1_b), &pred, None).unwrap();
        assert_eq!(m.score, 0.0);
        assert_close(m.baseline, 2.0 / 3.0);
        let [lo, hi] = m.ci.unwrap();
        assert!(lo <= hi && (0.0..=1.0).contains(&lo) && (0.0..=1.0).contains(&hi));
        let m = score_task(&d, &task(&Headline::MacroRecall), &pred, None).unwrap();
        assert_close(m.score, 0.5);
        // No labelled row: no interval.
        let empty = data(Gold::Sentence(vec![None, None, None]), "s");
        let m = score_task(&empty, &task(&Headline::MacroRecall), &pred, None).unwrap();
        assert_eq!((m.n, m.ci), (0, None));
    }

    #[test]
    fn bad_gold_id_names_file_column_and_row() {
        let d = data(Gold::Sentence(vec![Some(0), Some(7), None]), "s");
        let l = labels(TaskKind::Classification, &["a", "b"], &[1, 3]);
        let err = score(
            &d,
            "s",
            TaskKind::Classification,
            &l,
            &RowPreds::Sentence(vec![0, 0, 0]),
            None,
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("dev.parquet")
                && err.contains("y_s")
                && err.contains("`r2`")
                && err.contains("7"),
            "{err}"
        );
    }

    #[test]
    fn kind_mismatch_is_an_error() {
        let d = data(Gold::Sentence(vec![Some(0), None, None]), "s");
        let l = labels(TaskKind::Classification, &["a"], &[1]);
        assert!(
            score(
                &d,
                "s",
                TaskKind::Classification,
                &l,
                &RowPreds::Token(vec![]),
                None,
                0
            )
            .is_err()
        );
    }

    #[test]
    fn multilabel_skips_unlabelled_rows_and_keeps_empty_sets() {
        // r1 gold {a, b}, r2 unlabelled, r3 labelled with nothing.
        // pred r1 {a}, r3 {} -> tp 1, predicted 1, gold 2: micro P 1, R 1/2,
        // F1 2/3; subset accuracy 1/2 (r3 right).
        // Baseline: 4 labelled train texts, a on 3, b on 1 -> always {a}:
        // tp 1, predicted 2, gold 2 -> micro F1 1/2.
        let d = data(
            Gold::Multilabel(vec![Some(vec![0, 1]), None, Some(vec![])]),
            "m",
        );
        let l = labels(TaskKind::Multilabel, &["a", "b"], &[3, 1]);
        let pred = RowPreds::Multilabel(vec![vec![0], vec![0, 1], vec![]]);
        let m = score(&d, "m", TaskKind::Multilabel, &l, &pred, None, 4).unwrap();
        assert_eq!(m.n, 2);
        assert_close(m.score, 2.0 / 3.0);
        assert_close(m.baseline, 0.5);
        let TaskDetail::Multilabel(ml) = &m.metrics else {
            panic!("{m:?}")
        };
        assert_close(ml.metrics.subset_accuracy, 0.5);
        assert_eq!(ml.baseline_labels, ["a"]);
        assert_close(ml.baseline.subset_accuracy, 0.0);
    }

    #[test]
    fn multilabel_bad_gold_id_names_the_row() {
        let d = data(Gold::Multilabel(vec![None, Some(vec![5]), None]), "m");
        let l = labels(TaskKind::Multilabel, &["a", "b"], &[3, 1]);
        let pred = RowPreds::Multilabel(vec![vec![]; 3]);
        let err = score(&d, "m", TaskKind::Multilabel, &l, &pred, None, 4)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("y_m") && err.contains("`r2`") && err.contains("5"),
            "{err}"
        );
    }

    fn regression_labels(mean: f64) -> TaskLabels {
        let mut l = labels(TaskKind::Regression, &[], &[]);
        l.target = Some(mtl_core::task::TargetStats {
            count: 10,
            mean,
            std: 1.0,
            min: 0.0,
            max: 9.0,
        });
        l
    }

    #[test]
    fn regression_scores_labelled_rows_against_the_train_mean() {
        // r1 gold 1, r2 unlabelled, r3 gold 3; pred 2 (r1), 9 (r2), 4 (r3).
        // errors 1 1 -> RMSE 1, MAE 1; pearson of (1,3) vs (2,4) = 1.
        // Baseline mean 2: errors 1, -1 -> RMSE 1, MAE 1, pearson 0.
        let d = data(Gold::Regression(vec![Some(1.0), None, Some(3.0)]), "r");
        let pred = RowPreds::Regression(vec![2.0, 9.0, 4.0]);
        let m = score(
            &d,
            "r",
            TaskKind::Regression,
            &regression_labels(2.0),
            &pred,
            None,
            0,
        )
        .unwrap();
        assert_eq!(m.n, 2);
        assert_close(m.score, 1.0);
        assert_eq!(m.baseline, 0.0);
        let TaskDetail::Regression(r) = &m.metrics else {
            panic!("{m:?}")
        };
        assert_close(r.metrics.rmse, 1.0);
        assert_close(r.metrics.mae, 1.0);
        assert_eq!(r.baseline_mean, 2.0);
        assert_close(r.baseline.mae, 1.0);
    }

    #[test]
    fn regression_without_train_statistics_or_with_nan_is_an_error() {
        let d = data(Gold::Regression(vec![Some(1.0), None, Some(3.0)]), "r");
        let l = labels(TaskKind::Regression, &[], &[]);
        let pred = RowPreds::Regression(vec![2.0, 9.0, 4.0]);
        let err = score(&d, "r", TaskKind::Regression, &l, &pred, None, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("target") && err.contains("`r`"), "{err}");
        let pred = RowPreds::Regression(vec![2.0, 9.0, f32::NAN]);
        let err = score(
            &d,
            "r",
            TaskKind::Regression,
            &regression_labels(0.0),
            &pred,
            None,
            0,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`r3`") && err.contains("NaN"), "{err}");
    }
}
