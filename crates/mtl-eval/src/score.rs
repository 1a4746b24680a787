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
    DependencyDetail, MultilabelDetail, ParsedTree, RegressionDetail, SpanDetail, SplitMetrics,
    TaskDetail, WordDetail,
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
        (Some(Gold::Tree { heads, rels }), RowPreds::Tree { head, label })
            if kind == TaskKind::Dependency =>
        {
            let trees = tree_pairs(data, name, labels, (heads, rels), (head, label))?;
            let (score, baseline, ci) =
                headline_scores(h, &trees.model, &trees.baseline, task.seed);
            Ok(SplitMetrics {
                n: trees.sentences,
                score,
                ci,
                baseline,
                metrics: TaskDetail::Dependency(DependencyDetail {
                    attachment: trees.metrics,
                    truncated_words: trees.truncated,
                    examples: Vec::new(),
                    examples_note: None,
                }),
            })
        }
        _ => Err(missing()),
    }
}

/// Per row, its ids aligned to sub-tokens, `None` when the row does not
/// carry the task.
type IdRows = [Option<Vec<i32>>];

/// A dependency task's scored sentences.
struct Trees {
    sentences: u64,
    /// Per sentence, truncated words included (as wrong).
    model: Examples,
    /// Every word attached to the word before it (the first to the root)
    /// with the most frequent training relation.
    baseline: Examples,
    metrics: crate::metrics::dependency::DependencyMetrics,
    truncated: u64,
}

/// One row's gold and predicted trees over its scored words, heads as
/// CoNLL-U numbers words (positions are turned into word numbers through
/// the row's word starts).
struct RowTrees<'l> {
    gold_heads: Vec<usize>,
    gold_rels: Vec<&'l str>,
    pred_heads: Vec<usize>,
    pred_rels: Vec<&'l str>,
    /// Words cut off by truncation, or whose gold head was.
    cut: u64,
}

/// [`RowTrees`] of `row` from its gold and predicted heads and relations,
/// each aligned to sub-tokens.
fn row_trees<'l>(
    data: &SplitData,
    row: usize,
    task: &str,
    labels: &'l TaskLabels,
    (gh, gr): (&[i32], &[i32]),
    (ph, pr): (&[u32], &[u32]),
) -> Result<RowTrees<'l>> {
    use mtl_model::heads::biaffine::word_number;

    let column = col::heads(task);
    let name = |what: &str, id: i64| -> Result<&'l str> {
        usize::try_from(id)
            .ok()
            .and_then(|i| labels.labels.get(i))
            .map(String::as_str)
            .ok_or_else(|| {
                data.row_error(
                    row,
                    &col::target(task),
                    format!("{what} relation id {id} is not in labels.json"),
                )
            })
    };
    let starts = mtl_model::batch::word_starts(&data.word_ids[row]);
    let mut t = RowTrees {
        gold_heads: Vec::with_capacity(starts.len()),
        gold_rels: Vec::with_capacity(starts.len()),
        pred_heads: Vec::with_capacity(starts.len()),
        pred_rels: Vec::with_capacity(starts.len()),
        cut: data.n_words[row].saturating_sub(starts.len()) as u64,
    };
    for &p in &starts {
        let (Some(&g), Some(&r)) = (gh.get(p), gr.get(p)) else {
            return Err(data.row_error(row, &column, "shorter than the row"));
        };
        if r == IGNORE_INDEX {
            continue;
        }
        let Some(g) = usize::try_from(g)
            .ok()
            .and_then(|g| word_number(&starts, g))
        else {
            // The gold head was cut off (or is `_`): no prediction can
            // be right.
            t.cut += 1;
            continue;
        };
        let (Some(&h), Some(&l)) = (ph.get(p), pr.get(p)) else {
            return Err(data.row_error(row, &column, "no prediction for a word"));
        };
        let h = word_number(&starts, h as usize).ok_or_else(|| {
            data.row_error(
                row,
                &column,
                format!("the model attached a word to position {h}, not a word"),
            )
        })?;
        t.gold_heads.push(g);
        t.gold_rels.push(name("gold", r.into())?);
        t.pred_heads.push(h);
        t.pred_rels.push(name("predicted", l.into())?);
    }
    Ok(t)
}

/// Gold and predicted trees of the rows that carry a dependency task.
fn tree_pairs(
    data: &SplitData,
    task: &str,
    labels: &TaskLabels,
    (gold_heads, gold_rels): (&IdRows, &IdRows),
    (pred_heads, pred_rels): (&[Vec<u32>], &[Vec<u32>]),
) -> Result<Trees> {
    use crate::metrics::dependency::{AttachmentCounts, DependencyScorer, total};

    let majority = labels
        .labels
        .get(labels.majority())
        .map(String::as_str)
        .unwrap_or("dep");
    let metric_err = |source| Error::Metric {
        task: task.to_string(),
        source,
    };
    let mut scorer = DependencyScorer::new();
    let (mut model, mut base) = (Vec::new(), Vec::new());
    let mut truncated = 0u64;
    for row in 0..data.len() {
        let (Some(gh), Some(gr)) = (&gold_heads[row], &gold_rels[row]) else {
            continue;
        };
        let t = row_trees(
            data,
            row,
            task,
            labels,
            (gh, gr),
            (&pred_heads[row], &pred_rels[row]),
        )?;
        let mut c = scorer
            .add(&t.gold_heads, &t.gold_rels, &t.pred_heads, &t.pred_rels)
            .map_err(metric_err)?;
        let left: Vec<usize> = (0..t.gold_heads.len()).collect();
        let mut b = crate::metrics::dependency::sentence_counts(
            &t.gold_heads,
            &t.gold_rels,
            &left,
            &vec![majority; t.gold_heads.len()],
        )
        .map_err(metric_err)?;
        for counts in [&mut c, &mut b] {
            counts.words += t.cut;
        }
        truncated += t.cut;
        model.push(c);
        base.push(b);
    }
    let mut metrics = scorer.finish();
    let all: AttachmentCounts = total(&model, &(0..model.len()).collect::<Vec<_>>());
    metrics.n_words = all.words;
    metrics.uas = all.uas();
    metrics.las = all.las();
    metrics.counts = all;
    Ok(Trees {
        sentences: model.len() as u64,
        model: Examples::Attachments(model),
        baseline: Examples::Attachments(base),
        metrics,
        truncated,
    })
}

/// How many parsed sentences the report draws.
pub const DRAWN_SENTENCES: usize = 3;

/// Sentence lengths the drawn sentences are first taken from: long enough
/// that a tree has some depth and a few attachment decisions to get wrong,
/// short enough that its words fit one row of the report's page width.
pub const DRAWN_WORDS: std::ops::RangeInclusive<usize> = 6..=14;

/// Longest sentence drawn when too few have [`DRAWN_WORDS`] (a treebank of
/// short sentences); longer ones would need scrolling across many screens.
pub const MAX_DRAWN_WORDS: usize = 30;

/// A sentence [`parsed_sentences`] chose, without its words (which only the
/// split stage's table holds).
#[derive(Debug, Clone, PartialEq)]
pub struct ChosenParse {
    pub id: String,
    pub n_words: usize,
    pub gold: ParsedTree,
    pub predicted: ParsedTree,
}

/// The dependency task's sentences the report draws: the first
/// [`DRAWN_SENTENCES`] rows in table order that carry the task with every
/// word scored (nothing truncated, no head unknown) and have
/// [`DRAWN_WORDS`] words, topped up with other whole rows of at most
/// [`MAX_DRAWN_WORDS`] words, again in table order. The choice never looks
/// at the predictions, so it shows neither the best nor the worst parses,
/// and two models evaluated on the same data show the same sentences.
pub fn parsed_sentences(
    data: &SplitData,
    task: &str,
    labels: &TaskLabels,
    preds: &RowPreds,
) -> Result<Vec<ChosenParse>> {
    let (Some(Gold::Tree { heads, rels }), RowPreds::Tree { head, label }) =
        (data.gold.get(task), preds)
    else {
        return Err(Error::Task {
            path: data.path.clone(),
            task: task.to_string(),
            message: "the model gave no tree for this dependency task".into(),
        });
    };
    let tree = |heads: Vec<usize>, rels: Vec<&str>| ParsedTree {
        heads,
        relations: rels.into_iter().map(str::to_string).collect(),
    };
    let (mut preferred, mut others) = (Vec::new(), Vec::new());
    for row in 0..data.len() {
        if preferred.len() == DRAWN_SENTENCES {
            break;
        }
        let n = data.n_words[row];
        let wanted = DRAWN_WORDS.contains(&n);
        if n == 0 || n > MAX_DRAWN_WORDS || (!wanted && others.len() == DRAWN_SENTENCES) {
            continue;
        }
        let (Some(gh), Some(gr)) = (&heads[row], &rels[row]) else {
            continue;
        };
        let (ph, pr) = match (head.get(row), label.get(row)) {
            (Some(h), Some(l)) => (h, l),
            _ => return Err(data.row_error(row, &col::heads(task), "no prediction")),
        };
        let t = row_trees(data, row, task, labels, (gh, gr), (ph, pr))?;
        if t.gold_heads.len() != n {
            continue;
        }
        let chosen = ChosenParse {
            id: data.ids[row].clone(),
            n_words: n,
            gold: tree(t.gold_heads, t.gold_rels),
            predicted: tree(t.pred_heads, t.pred_rels),
        };
        if wanted {
            preferred.push(chosen);
        } else {
            others.push(chosen);
        }
    }
    preferred.extend(others);
    preferred.truncate(DRAWN_SENTENCES);
    Ok(preferred)
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

    /// Relations: root=0 nsubj=1 case=2 obl=3; case is the train majority.
    fn rels() -> TaskLabels {
        labels(
            TaskKind::Dependency,
            &["root", "nsubj", "case", "obl:tmod"],
            &[10, 10, 30, 5],
        )
    }

    #[test]
    fn trees_are_scored_per_word_with_truncated_words_counted_wrong() {
        // r1: johnny(1) <-nsubj- lives(2, root). Predicted: both right.
        // r2: in(1) -case-> paris(2, root); word 3 was cut off. Predicted:
        // `in` on the root with `case` (head wrong), paris right but
        // labelled `obl:tmod` (head right, relation wrong).
        let gold = Gold::Tree {
            heads: vec![
                Some(vec![-100, 3, -100, 0, -100]),
                Some(vec![-100, 2, 0, -100]),
                None,
            ],
            rels: vec![
                Some(vec![-100, 1, -100, 0, -100]),
                Some(vec![-100, 2, 0, -100]),
                None,
            ],
        };
        let pred = RowPreds::Tree {
            head: vec![vec![0, 3, 0, 0, 0], vec![0, 0, 0, 0], vec![0, 0]],
            label: vec![vec![0, 1, 0, 0, 0], vec![0, 2, 3, 0], vec![0, 0]],
        };
        let d = data(gold, "deps");
        let m = score(&d, "deps", TaskKind::Dependency, &rels(), &pred, None, 0).unwrap();
        let TaskDetail::Dependency(t) = &m.metrics else {
            panic!("{m:?}")
        };
        assert_eq!(m.n, 2, "the unlabelled row is not scored");
        assert_eq!(t.truncated_words, 1);
        // 5 words: heads right 3 (johnny, lives, paris), labelled 2.
        assert_eq!(t.attachment.n_words, 5);
        assert_close(t.attachment.uas, 3.0 / 5.0);
        assert_close(t.attachment.las, 2.0 / 5.0);
        assert_close(m.score, 2.0 / 5.0);
        // The baseline hangs each first word on the root and each second
        // word on the first: every gold head here is the other way round.
        assert_close(m.baseline, 0.0);
        // `paris` was predicted `obl`: per relation on the universal part.
        assert_eq!(t.attachment.per_relation["obl"].predicted, 1);
        assert_eq!(t.attachment.per_relation["obl"].correct, 0);
        assert_eq!(t.attachment.per_relation["root"].correct, 1);
    }

    #[test]
    fn a_predicted_head_that_is_no_word_is_an_error() {
        let gold = Gold::Tree {
            heads: vec![Some(vec![-100, 3, -100, 0, -100]), None, None],
            rels: vec![Some(vec![-100, 1, -100, 0, -100]), None, None],
        };
        // Position 2 is `##ny`, a continuation piece.
        let pred = RowPreds::Tree {
            head: vec![vec![0, 2, 0, 0, 0], vec![0; 4], vec![0, 0]],
            label: vec![vec![0; 5], vec![0; 4], vec![0, 0]],
        };
        let d = data(gold, "deps");
        let err = score(&d, "deps", TaskKind::Dependency, &rels(), &pred, None, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a word") && err.contains("r1"), "{err}");
    }

    /// One dependency row for [`parsed_sentences`]: `n_words` words in the
    /// table of which the first `kept` survived truncation, one sub-token
    /// each (word k at position k + 1). Gold: each word on the next, the
    /// last on the root, `nsubj` then `root`. Predicted: the same but the
    /// first word on the root and the second word `case`.
    struct TreeRow {
        id: &'static str,
        n_words: usize,
        kept: usize,
        labelled: bool,
        /// A word whose relation is not scored (`_` in the treebank).
        unscored: Option<usize>,
    }

    fn tree_data(rows: &[TreeRow]) -> (SplitData, RowPreds) {
        let (mut heads, mut rels, mut ph, mut pr) = (vec![], vec![], vec![], vec![]);
        let mut word_ids = Vec::new();
        for r in rows {
            let k = r.kept;
            let mut ids = vec![-1];
            ids.extend(0..k as i32);
            ids.push(-1);
            let (mut gh, mut gr) = (vec![-100; k + 2], vec![-100; k + 2]);
            let (mut h, mut l) = (vec![0u32; k + 2], vec![0u32; k + 2]);
            for w in 0..k {
                let last = w + 1 == r.n_words;
                // Word w + 2 is at position w + 2; the cut-off head of the
                // last kept word points past the row, as tokenize leaves it.
                gh[w + 1] = if last { 0 } else { w as i32 + 2 };
                gr[w + 1] = if last { 0 } else { 1 };
                h[w + 1] = if w == 0 { 0 } else { gh[w + 1] as u32 };
                l[w + 1] = if w == 1 { 2 } else { gr[w + 1] as u32 };
            }
            if let Some(u) = r.unscored {
                gr[u + 1] = -100;
            }
            heads.push(r.labelled.then_some(gh));
            rels.push(r.labelled.then_some(gr));
            ph.push(h);
            pr.push(l);
            word_ids.push(ids);
        }
        let mut gold = BTreeMap::new();
        gold.insert("deps".to_string(), Gold::Tree { heads, rels });
        let data = SplitData {
            path: PathBuf::from("runs/t/tokenize/dev.parquet"),
            ids: rows.iter().map(|r| r.id.to_string()).collect(),
            input_ids: word_ids.iter().map(|w| vec![5; w.len()]).collect(),
            word_ids,
            n_words: rows.iter().map(|r| r.n_words).collect(),
            gold,
            features: vec![BTreeMap::new(); rows.len()],
            windows: None,
        };
        (
            data,
            RowPreds::Tree {
                head: ph,
                label: pr,
            },
        )
    }

    fn whole(id: &'static str, n_words: usize) -> TreeRow {
        TreeRow {
            id,
            n_words,
            kept: n_words,
            labelled: true,
            unscored: None,
        }
    }

    fn chosen_ids(rows: &[TreeRow]) -> Vec<String> {
        let (d, pred) = tree_data(rows);
        parsed_sentences(&d, "deps", &rels(), &pred)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect()
    }

    #[test]
    fn drawn_sentences_are_the_first_whole_ones_of_a_readable_length() {
        let rows = || {
            vec![
                whole("short", 3),
                whole("b7", 7),
                TreeRow {
                    labelled: false,
                    ..whole("unlabelled", 8)
                },
                TreeRow {
                    kept: 6,
                    ..whole("truncated", 9)
                },
                whole("long", 40),
                whole("f14", 14),
                whole("tiny", 2),
                TreeRow {
                    unscored: Some(3),
                    ..whole("unscored", 10)
                },
                whole("i9", 9),
                whole("j12", 12),
            ]
        };
        assert_eq!(chosen_ids(&rows()), ["b7", "f14", "i9"]);
        // Too few of 6 to 14 words: the rest are the first other whole
        // rows, never the truncated, unscored, unlabelled or long ones.
        let few: Vec<TreeRow> = rows()
            .into_iter()
            .filter(|r| !["i9", "j12"].contains(&r.id))
            .collect();
        assert_eq!(chosen_ids(&few), ["b7", "f14", "short"]);
        let none: Vec<TreeRow> = rows()
            .into_iter()
            .filter(|r| ["unlabelled", "truncated", "long", "unscored"].contains(&r.id))
            .collect();
        assert!(chosen_ids(&none).is_empty());
    }

    #[test]
    fn drawn_sentences_carry_both_trees_as_conllu_numbers_them() {
        let (d, pred) = tree_data(&[whole("s", 4)]);
        let chosen = parsed_sentences(&d, "deps", &rels(), &pred).unwrap();
        assert_eq!(
            chosen,
            [ChosenParse {
                id: "s".into(),
                n_words: 4,
                gold: ParsedTree {
                    heads: vec![2, 3, 4, 0],
                    relations: ["nsubj", "nsubj", "nsubj", "root"].map(String::from).into(),
                },
                predicted: ParsedTree {
                    heads: vec![0, 3, 4, 0],
                    relations: ["nsubj", "case", "nsubj", "root"].map(String::from).into(),
                },
            }]
        );
        // Sub-tokens: the head of `john ##ny` is read at its first piece and
        // `lives` (position 3) is word 2.
        let gold = Gold::Tree {
            heads: vec![Some(vec![-100, 3, -100, 0, -100]), None, None],
            rels: vec![Some(vec![-100, 1, -100, 0, -100]), None, None],
        };
        let pred = RowPreds::Tree {
            head: vec![vec![0, 3, 0, 0, 0], vec![0; 4], vec![0, 0]],
            label: vec![vec![0, 1, 0, 0, 0], vec![0; 4], vec![0, 0]],
        };
        let chosen = parsed_sentences(&data(gold, "deps"), "deps", &rels(), &pred).unwrap();
        assert_eq!(chosen.len(), 1);
        assert_eq!((chosen[0].id.as_str(), chosen[0].n_words), ("r1", 2));
        assert_eq!(chosen[0].gold.heads, [2, 0]);
        assert_eq!(chosen[0].predicted.relations, ["nsubj", "root"]);
        // A row of another kind is an error, not an empty choice.
        let wrong = RowPreds::Token(vec![vec![0; 5], vec![0; 4], vec![0, 0]]);
        assert!(parsed_sentences(&d, "deps", &rels(), &wrong).is_err());
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
