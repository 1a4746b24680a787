//! `metrics.json` as typed data, and its human renderings: the plain-text
//! table printed at the end of a run and `report.md`. `cargo xtask` reads
//! `metrics.json` back through these types.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use mtl_core::TaskKind;
use serde::{Deserialize, Serialize};

use crate::baselines::{Comparison, ModelCost, SingleTaskScores};
use crate::metrics::classification::ClassificationMetrics;
use crate::metrics::multilabel::MultilabelMetrics;
use crate::metrics::regression::RegressionMetrics;
use crate::metrics::spans::SpanMetrics;
use crate::metrics::tagging::TaggingMetrics;

/// `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub pipeline: String,
    /// The split whose scores are each task's `score` and `baseline`.
    pub headline_split: String,
    /// Scored splits in config order (JSON objects do not keep an order).
    #[serde(default)]
    pub splits: Vec<String>,
    pub tasks: BTreeMap<String, TaskMetrics>,
    /// How the confidence intervals were computed; absent in files written
    /// before they existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapInfo>,
    /// What the scored model cost to train and to run; absent in files
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<ModelCost>,
}

/// The percentile bootstrap behind every `ci` ([`crate::metrics::bootstrap`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BootstrapInfo {
    /// Confidence level, 0.95.
    pub level: f64,
    pub resamples: usize,
    /// What one draw resamples: texts for sentence tasks, sentences for
    /// token tasks.
    pub unit: String,
    /// The base seed; each task and split mixes its name into it.
    pub seed: u64,
}

impl BootstrapInfo {
    pub fn current() -> Self {
        use crate::metrics::bootstrap;
        BootstrapInfo {
            level: bootstrap::LEVEL,
            resamples: bootstrap::RESAMPLES,
            unit: "example (a text; a sentence for token tasks)".into(),
            seed: bootstrap::SEED,
        }
    }
}

impl Metrics {
    pub const FILE: &'static str = "metrics.json";

    /// Reads `dir/metrics.json` (an eval output folder).
    pub fn read(dir: &Path) -> Result<Metrics, mtl_core::CoreError> {
        mtl_core::fsio::read_json(&dir.join(Self::FILE))
    }

    /// Split names in display order: `splits`, else the headline split and
    /// then whatever else the tasks hold.
    pub fn split_order(&self) -> Vec<String> {
        if !self.splits.is_empty() {
            return self.splits.clone();
        }
        let mut out = vec![self.headline_split.clone()];
        for t in self.tasks.values() {
            for s in t.splits.keys() {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMetrics {
    pub kind: TaskKind,
    /// Name of the headline metric: the task's `metric` in the config
    /// (e.g. `macro_recall`, `f1_of(irony)`), else the kind's default
    /// ([`headline_metric`]): `macro_f1`, `accuracy`, `entity_f1`,
    /// `micro_f1` (multilabel) or `pearson` (regression).
    pub metric: String,
    /// Headline metric on the headline split.
    pub score: f64,
    /// 95% bootstrap interval of `score`.
    #[serde(default)]
    pub ci: Option<[f64; 2]>,
    /// Baseline of the headline metric on the headline split: the majority
    /// label, the frequent-label set (multilabel) or the training mean
    /// (regression, whose Pearson r is then 0).
    pub baseline: f64,
    pub splits: BTreeMap<String, SplitMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    /// Rows scored for the task (rows without its label are skipped).
    pub n: u64,
    /// The task's headline metric.
    pub score: f64,
    /// 95% bootstrap interval of `score`; null when nothing was scored.
    #[serde(default)]
    pub ci: Option<[f64; 2]>,
    pub baseline: f64,
    pub metrics: TaskDetail,
}

/// Every metric of one task on one split. Untagged in JSON: the task's
/// `kind` says which one it is, and each variant has a field the next lacks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskDetail {
    Classification(ClassificationMetrics),
    Spans(SpanDetail),
    Tagging(WordDetail),
    Multilabel(MultilabelDetail),
    Regression(RegressionDetail),
    Dependency(DependencyDetail),
}

/// Attachment scores of a dependency task (CoNLL 2018 definitions on gold
/// words), with what truncation did to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DependencyDetail {
    #[serde(flatten)]
    pub attachment: crate::metrics::dependency::DependencyMetrics,
    /// Words the tokenizer cut off, or whose head it cut off: scored as
    /// wrong (head and relation), so truncation costs score. They are in
    /// `n_words` but in no relation's row.
    pub truncated_words: u64,
    /// A few dev sentences parsed whole, which the reports draw beside
    /// their gold trees (the first whole ones of 6 to 14 words, in table
    /// order). Absent on other splits and in files written before they
    /// existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<ParsedSentence>,
    /// Why no sentence is drawn where some would be (e.g. the split
    /// stage's table, the one place the words are, was not found); the
    /// reports show it after "No parsed sentence drawn: ".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples_note: Option<String>,
}

/// One parsed sentence with its gold tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedSentence {
    /// The row's `id`.
    pub id: String,
    pub words: Vec<String>,
    pub gold: ParsedTree,
    pub predicted: ParsedTree,
}

/// One tree as CoNLL-U writes it: per word its head (0 = the root, else the
/// head's 1-based word number) and its relation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedTree {
    pub heads: Vec<usize>,
    pub relations: Vec<String>,
}

impl ParsedSentence {
    /// Per word, whether the predicted arc is wrong: another head, or
    /// another relation as LAS compares them (on the universal part, so
    /// `obl` for gold `obl:tmod` is right, as the score counts it).
    pub fn wrong(&self) -> Vec<bool> {
        use crate::metrics::dependency::universal;
        let (g, p) = (&self.gold, &self.predicted);
        (0..self.words.len())
            .map(|i| {
                g.heads.get(i) != p.heads.get(i)
                    || g.relations.get(i).map(|r| universal(r))
                        != p.relations.get(i).map(|r| universal(r))
            })
            .collect()
    }
}

/// Multilabel scores, with the whole baseline beside them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultilabelDetail {
    #[serde(flatten)]
    pub metrics: MultilabelMetrics,
    /// The label set the baseline predicts for every text.
    pub baseline_labels: Vec<String>,
    pub baseline: MultilabelMetrics,
}

/// Regression scores, with the training-mean baseline's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionDetail {
    #[serde(flatten)]
    pub metrics: RegressionMetrics,
    /// The training mean the baseline predicts for every text.
    pub baseline_mean: f64,
    pub baseline: RegressionMetrics,
}

/// Word-level scores of a token task, with what truncation did to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WordDetail {
    #[serde(flatten)]
    pub words: TaggingMetrics,
    /// Words the tokenizer cut off: scored as if the model had predicted the
    /// majority tag for them, so truncation costs score.
    pub truncated_words: u64,
    /// Words left out because no gold label could be found for them
    /// (truncated words whose split labels were not available).
    pub unscored_words: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanDetail {
    #[serde(flatten)]
    pub entities: SpanMetrics,
    #[serde(flatten)]
    pub words: WordDetail,
}

/// Name of the default headline metric of a task kind.
pub fn headline_metric(kind: TaskKind) -> &'static str {
    crate::metrics::headline::known_names(kind)[0]
}

fn kind_name(kind: TaskKind) -> &'static str {
    kind.name()
}

fn score(x: f64) -> String {
    format!("{x:.3}")
}

/// A score with its interval: `0.912 [0.897, 0.925]`.
pub fn score_ci(x: f64, ci: Option<[f64; 2]>) -> String {
    match ci {
        Some([lo, hi]) => format!("{x:.3} [{lo:.3}, {hi:.3}]"),
        None => score(x),
    }
}

/// The score table as rows of cells: header first.
fn table_rows(m: &Metrics) -> Vec<Vec<String>> {
    let splits = m.split_order();
    let mut header = vec!["task".to_string(), "kind".into(), "metric".into()];
    header.extend(splits.iter().cloned());
    header.push(format!("baseline ({})", m.headline_split));
    let mut rows = vec![header];
    for (name, t) in &m.tasks {
        let mut row = vec![name.clone(), kind_name(t.kind).into(), t.metric.clone()];
        for s in &splits {
            row.push(
                t.splits
                    .get(s)
                    .map_or_else(|| "-".into(), |sm| score_ci(sm.score, sm.ci)),
            );
        }
        row.push(score(t.baseline));
        rows.push(row);
    }
    rows
}

/// The plain-text score table `cargo xtask run` prints: one row per task,
/// one column per split (the headline score and its 95% bootstrap
/// interval), then the majority baseline; aligned columns.
pub fn render_table(metrics: &Metrics) -> String {
    aligned(&table_rows(metrics), 3)
}

/// Rows (header first) as aligned plain text: the first `text_cols` columns
/// left-aligned, the rest right-aligned so decimal points line up, a rule
/// under the header.
fn aligned(rows: &[Vec<String>], text_cols: usize) -> String {
    let ncol = rows[0].len();
    let widths: Vec<usize> = (0..ncol)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            if c < text_cols {
                let _ = write!(line, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(line, "{cell:>w$}", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i == 0 {
            let total = widths.iter().sum::<usize>() + 2 * (ncol - 1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn md_table(out: &mut String, header: &[String], rows: &[Vec<String>]) {
    let line = |cells: &[String]| {
        format!(
            "| {} |\n",
            cells
                .iter()
                .map(|c| md_cell(c))
                .collect::<Vec<_>>()
                .join(" | ")
        )
    };
    out.push_str(&line(header));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for r in rows {
        out.push_str(&line(r));
    }
}

/// `report.md` without single-task scores: [`render_markdown_with`].
pub fn render_markdown(m: &Metrics) -> String {
    render_markdown_with(m, None)
}

/// `report.md`: the score table, the comparison with single-task models
/// when there are single-task scores, then each task's detail per split.
pub fn render_markdown_with(m: &Metrics, single: Option<&SingleTaskScores>) -> String {
    let mut out = format!("# Evaluation: {}\n\n", m.pipeline);
    let rows = table_rows(m);
    md_table(&mut out, &rows[0], &rows[1..]);
    out.push_str(&format!(
        "\nScores are fractions in [0, 1], except correlations (in [-1, 1]) and regression errors \
         (target units, lower is better). Brackets hold the 95% percentile bootstrap interval \
         ({} resamples of the scored examples: texts, or sentences for token tasks; seeded, so \
         the same on every run). The baseline is scored \
         on the same rows ({} split) and predicts the same thing everywhere: the most frequent \
         training label; for multilabel tasks every label carried by at least half of the \
         labelled training texts (else the most frequent one); for regression the training mean \
         (whose correlation is undefined and shown as 0).\n",
        m.bootstrap
            .as_ref()
            .map_or(crate::metrics::bootstrap::RESAMPLES, |b| b.resamples),
        m.headline_split
    ));
    if let Some(single) = single {
        comparison_markdown(&mut out, &Comparison::new(m, single));
    }
    for (name, t) in &m.tasks {
        out.push_str(&format!(
            "\n## {name} ({}, headline `{}`)\n",
            kind_name(t.kind),
            t.metric
        ));
        for split in m.split_order() {
            let Some(sm) = t.splits.get(&split) else {
                continue;
            };
            out.push_str(&format!(
                "\n### {split}: {} {} (baseline {}), {} rows\n\n",
                t.metric,
                score_ci(sm.score, sm.ci),
                score(sm.baseline),
                sm.n
            ));
            match &sm.metrics {
                TaskDetail::Classification(c) => classification_detail(&mut out, c),
                TaskDetail::Spans(s) => {
                    span_detail(&mut out, &s.entities);
                    word_detail(&mut out, &s.words);
                }
                TaskDetail::Tagging(w) => word_detail(&mut out, w),
                TaskDetail::Multilabel(d) => multilabel_detail(&mut out, d),
                TaskDetail::Regression(d) => regression_detail(&mut out, d),
                TaskDetail::Dependency(d) => dependency_detail(&mut out, d),
            }
        }
    }
    out
}

/// UAS, LAS and CLAS, then one row per relation, most frequent first.
fn dependency_detail(out: &mut String, d: &DependencyDetail) {
    let a = &d.attachment;
    out.push_str(&format!(
        "UAS {}, LAS {}, CLAS {} (P {}, R {}) over {} words",
        score(a.uas),
        score(a.las),
        score(a.clas),
        score(a.clas_precision),
        score(a.clas_recall),
        thousands(a.n_words)
    ));
    if d.truncated_words > 0 {
        out.push_str(&format!(
            "; {} cut off by truncation and counted wrong",
            thousands(d.truncated_words)
        ));
    }
    out.push_str(".\n\n| relation | support | predicted | precision | recall | F1 (head and relation right) |\n|---|---:|---:|---:|---:|---:|\n");
    let mut rels: Vec<_> = a.per_relation.iter().collect();
    rels.sort_by(|x, y| y.1.support.cmp(&x.1.support).then(x.0.cmp(y.0)));
    for (rel, r) in rels {
        out.push_str(&format!(
            "| {rel} | {} | {} | {} | {} | {} |\n",
            r.support,
            r.predicted,
            score(r.precision),
            score(r.recall),
            score(r.f1)
        ));
    }
    if let Some(note) = &d.examples_note {
        out.push_str(&format!("\nNo parsed sentence drawn: {note}.\n"));
    }
    for s in &d.examples {
        out.push_str(&format!(
            "\nSentence `{}`, gold and predicted (✗: wrong head or relation):\n\n",
            s.id.replace('`', "'")
        ));
        let header: Vec<String> = [
            "#",
            "word",
            "gold head",
            "gold relation",
            "head",
            "relation",
            "",
        ]
        .map(String::from)
        .into();
        let cell = |v: Option<&String>| v.cloned().unwrap_or_default();
        let num = |v: Option<&usize>| v.map_or_else(String::new, usize::to_string);
        let rows: Vec<Vec<String>> = s
            .words
            .iter()
            .zip(s.wrong())
            .enumerate()
            .map(|(i, (w, wrong))| {
                vec![
                    (i + 1).to_string(),
                    w.clone(),
                    num(s.gold.heads.get(i)),
                    cell(s.gold.relations.get(i)),
                    num(s.predicted.heads.get(i)),
                    cell(s.predicted.relations.get(i)),
                    if wrong { "✗".into() } else { String::new() },
                ]
            })
            .collect();
        md_table(out, &header, &rows);
    }
}

/// `+1.23` (percent, signed), or `-` when undefined.
fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".into(), |v| format!("{v:+.2}"))
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The score comparison as rows of cells, header first: per split the
/// multi-task score, the single-task score and the relative gain in
/// percent, then a `Δp` row. Tasks that cannot be compared show `-`.
pub fn comparison_rows(c: &Comparison) -> Vec<Vec<String>> {
    let mut header = vec!["task".to_string(), "metric".into()];
    for s in &c.splits {
        header.extend([
            format!("{s} multi"),
            format!("{s} single"),
            format!("{s} Δ%"),
        ]);
    }
    let mut rows = vec![header];
    for t in &c.tasks {
        let mut row = vec![t.task.clone(), t.metric.clone()];
        for s in &c.splits {
            match t.splits.get(s) {
                Some((m, st, gain)) => row.extend([score(*m), score(*st), percent(*gain)]),
                None => row.extend(["-".into(), "-".into(), "-".into()]),
            }
        }
        rows.push(row);
    }
    let mut last = vec!["Δp".to_string(), "mean".into()];
    for s in &c.splits {
        let d = c.delta_p.get(s);
        last.extend([
            String::new(),
            d.map_or_else(String::new, |d| format!("{}/{} tasks", d.tasks, d.of)),
            percent(d.map(|d| d.value)),
        ]);
    }
    rows.push(last);
    rows
}

/// The cost comparison as rows of cells, header first: the k single-task
/// models together, the multi-task model, and multi-task / single-task.
pub fn cost_rows(c: &Comparison) -> Vec<Vec<String>> {
    let mut rows = vec![vec![
        "models".to_string(),
        "count".into(),
        "parameters".into(),
        "training (s)".into(),
        "inference (s)".into(),
        "examples predicted".into(),
    ]];
    let row = |name: &str, cost: &ModelCost| {
        vec![
            name.to_string(),
            cost.models.to_string(),
            thousands(cost.parameters),
            format!("{:.2}", cost.train_seconds),
            format!("{:.3}", cost.inference_seconds),
            thousands(cost.inference_examples),
        ]
    };
    if let Some(s) = &c.single_cost {
        rows.push(row("single-task", s));
    }
    if let Some(m) = &c.multi_cost {
        rows.push(row("multi-task", m));
    }
    if let (Some(s), Some(m)) = (&c.single_cost, &c.multi_cost) {
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}×", a / b)
            } else {
                "-".into()
            }
        };
        rows.push(vec![
            "multi / single".into(),
            String::new(),
            ratio(m.parameters as f64, s.parameters as f64),
            ratio(m.train_seconds, s.train_seconds),
            ratio(m.inference_seconds, s.inference_seconds),
            String::new(),
        ]);
    }
    rows
}

/// Why some tasks are left out of the comparison, one line each.
fn comparison_notes(c: &Comparison) -> Vec<String> {
    c.tasks
        .iter()
        .filter_map(|t| t.note.as_ref().map(|n| format!("{}: {n}", t.task)))
        .collect()
}

/// The multi-task vs single-task tables as aligned plain text, as
/// `cargo xtask run --baselines` prints them.
pub fn render_comparison(c: &Comparison) -> String {
    let mut out = aligned(&comparison_rows(c), 2);
    for n in comparison_notes(c) {
        out.push_str(&format!("  ({n})\n"));
    }
    let costs = cost_rows(c);
    if costs.len() > 1 {
        out.push('\n');
        out.push_str(&aligned(&costs, 1));
    }
    out
}

const DELTA_P_NOTE: &str = "Δ% is the relative gain of the multi-task model over the single-task \
    one, (M − S) / |S| × 100, negated for metrics where lower is better; Δp is its mean over \
    the tasks (LibMTL's multi-task gain). Positive means multi-task is better.";

fn comparison_markdown(out: &mut String, c: &Comparison) {
    out.push_str("\n## Multi-task vs single-task\n\n");
    if let Some(d) = &c.description {
        out.push_str(&format!("Single-task models: {d}\n\n"));
    }
    let rows = comparison_rows(c);
    md_table(out, &rows[0], &rows[1..]);
    out.push_str(&format!("\n{DELTA_P_NOTE}\n"));
    let notes = comparison_notes(c);
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&format!("- {n}\n"));
        }
    }
    let costs = cost_rows(c);
    if costs.len() > 1 {
        out.push_str("\n### Cost\n\n");
        md_table(out, &costs[0], &costs[1..]);
        out.push_str(
            "\nTraining is the wall time of the training loop; inference the wall time of the \
             forward passes over the eval splits, where each single-task model predicts every \
             example for its one task. Times depend on the machine and its load.\n",
        );
    }
}

fn classification_detail(out: &mut String, c: &ClassificationMetrics) {
    out.push_str(&format!(
        "accuracy {} · macro-F1 {} · micro-F1 {} · weighted-F1 {} · macro precision {} · \
         macro recall {}\n\n",
        score(c.accuracy),
        score(c.macro_f1),
        score(c.micro_f1),
        score(c.weighted_f1),
        score(c.macro_precision),
        score(c.macro_recall)
    ));
    let header: Vec<String> = ["class", "precision", "recall", "F1", "support", "predicted"]
        .map(String::from)
        .into();
    let rows: Vec<Vec<String>> = c
        .per_class
        .iter()
        .map(|k| {
            vec![
                k.label.clone(),
                score(k.precision),
                score(k.recall),
                score(k.f1),
                k.support.to_string(),
                k.predicted.to_string(),
            ]
        })
        .collect();
    md_table(out, &header, &rows);
    out.push_str("\nConfusion matrix (rows: gold, columns: predicted):\n\n");
    let mut header = vec!["gold \\ pred".to_string()];
    header.extend(c.per_class.iter().map(|k| k.label.clone()));
    let rows: Vec<Vec<String>> = c
        .confusion
        .iter()
        .zip(&c.per_class)
        .map(|(row, k)| {
            let mut r = vec![k.label.clone()];
            r.extend(row.iter().map(u64::to_string));
            r
        })
        .collect();
    md_table(out, &header, &rows);
}

fn multilabel_summary(m: &MultilabelMetrics) -> String {
    format!(
        "micro-F1 {} (P {}, R {}) · macro-F1 {} · samples-F1 {} · subset accuracy {} · \
         hamming loss {}",
        score(m.micro_f1),
        score(m.micro_precision),
        score(m.micro_recall),
        score(m.macro_f1),
        score(m.samples_f1),
        score(m.subset_accuracy),
        score(m.hamming_loss)
    )
}

fn multilabel_detail(out: &mut String, d: &MultilabelDetail) {
    out.push_str(&format!("{}\n\n", multilabel_summary(&d.metrics)));
    let set = if d.baseline_labels.is_empty() {
        "no label".to_string()
    } else {
        d.baseline_labels.join(", ")
    };
    out.push_str(&format!(
        "Baseline (always {set}): {}\n\n",
        multilabel_summary(&d.baseline)
    ));
    let header: Vec<String> = ["label", "precision", "recall", "F1", "support", "predicted"]
        .map(String::from)
        .into();
    let rows: Vec<Vec<String>> = d
        .metrics
        .per_label
        .iter()
        .map(|k| {
            vec![
                k.label.clone(),
                score(k.precision),
                score(k.recall),
                score(k.f1),
                k.support.to_string(),
                k.predicted.to_string(),
            ]
        })
        .collect();
    md_table(out, &header, &rows);
}

fn regression_detail(out: &mut String, d: &RegressionDetail) {
    let header: Vec<String> = ["", "pearson", "spearman", "MSE", "RMSE", "MAE"]
        .map(String::from)
        .into();
    let row = |name: String, m: &RegressionMetrics| {
        vec![
            name,
            score(m.pearson),
            score(m.spearman),
            score(m.mse),
            score(m.rmse),
            score(m.mae),
        ]
    };
    let rows = vec![
        row("model".into(), &d.metrics),
        row(
            format!("baseline (mean {})", score(d.baseline_mean)),
            &d.baseline,
        ),
    ];
    md_table(out, &header, &rows);
}

fn span_detail(out: &mut String, s: &SpanMetrics) {
    out.push_str(&format!(
        "entity precision {} · recall {} · F1 {} ({} correct of {} predicted, {} gold)\n\n",
        score(s.entity_precision),
        score(s.entity_recall),
        score(s.entity_f1),
        s.correct_entities,
        s.predicted_entities,
        s.gold_entities
    ));
    if s.per_type.is_empty() {
        return;
    }
    let header: Vec<String> = ["type", "precision", "recall", "F1", "support", "predicted"]
        .map(String::from)
        .into();
    let rows: Vec<Vec<String>> = s
        .per_type
        .iter()
        .map(|(k, t)| {
            vec![
                k.clone(),
                score(t.precision),
                score(t.recall),
                score(t.f1),
                t.support.to_string(),
                t.predicted.to_string(),
            ]
        })
        .collect();
    md_table(out, &header, &rows);
    out.push('\n');
}

fn word_detail(out: &mut String, w: &WordDetail) {
    out.push_str(&format!(
        "word accuracy {} ({} of {} words)\n",
        score(w.words.accuracy),
        w.words.correct_words,
        w.words.n_words
    ));
    if w.truncated_words > 0 {
        out.push_str(&format!(
            "\n{} word(s) were cut off by truncation; those with a known gold label are scored as \
             if the model had predicted the majority tag.\n",
            w.truncated_words
        ));
    }
    if w.unscored_words > 0 {
        out.push_str(&format!(
            "\n{} word(s) had no gold label available and were not scored.\n",
            w.unscored_words
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{
        classification::classification_metrics, multilabel::multilabel_metrics,
        regression::regression_metrics, spans::span_metrics, tagging::word_accuracy,
    };

    fn sample() -> Metrics {
        let labels = vec!["neg".to_string(), "pos|x".to_string()];
        let c = classification_metrics(&[0, 1, 1], &[0, 1, 0], &labels).unwrap();
        let words = WordDetail {
            words: word_accuracy(&[0, 1, 0], &[0, 1, 1]).unwrap(),
            truncated_words: 2,
            unscored_words: 0,
        };
        let spans = span_metrics(&[vec!["B-PER", "O", "O"]], &[vec!["B-PER", "O", "O"]]).unwrap();
        let split = |score: f64, baseline: f64, metrics: TaskDetail| SplitMetrics {
            n: 3,
            score,
            ci: Some([score - 0.05, (score + 0.05).min(1.0)]),
            baseline,
            metrics,
        };
        let mut tasks = BTreeMap::new();
        tasks.insert(
            "sentiment".to_string(),
            TaskMetrics {
                kind: TaskKind::Classification,
                metric: "macro_f1".into(),
                ci: None,
                score: 0.9123,
                baseline: 0.19,
                splits: [
                    (
                        "dev".to_string(),
                        split(0.9123, 0.19, TaskDetail::Classification(c.clone())),
                    ),
                    (
                        "test".to_string(),
                        split(0.5, 0.2, TaskDetail::Classification(c)),
                    ),
                ]
                .into(),
            },
        );
        tasks.insert(
            "ner".to_string(),
            TaskMetrics {
                kind: TaskKind::Spans,
                metric: "entity_f1".into(),
                ci: None,
                score: 1.0,
                baseline: 0.0,
                splits: [(
                    "dev".to_string(),
                    split(
                        1.0,
                        0.0,
                        TaskDetail::Spans(SpanDetail {
                            entities: spans,
                            words: words.clone(),
                        }),
                    ),
                )]
                .into(),
            },
        );
        tasks.insert(
            "pos".to_string(),
            TaskMetrics {
                kind: TaskKind::Tagging,
                metric: "accuracy".into(),
                ci: None,
                score: 2.0 / 3.0,
                baseline: 0.5,
                splits: [(
                    "dev".to_string(),
                    split(2.0 / 3.0, 0.5, TaskDetail::Tagging(words)),
                )]
                .into(),
            },
        );
        let topics = ["sports".to_string(), "tech".to_string()];
        let ml = multilabel_metrics(&[vec![0, 1], vec![]], &[vec![0], vec![]], &topics).unwrap();
        let ml_base =
            multilabel_metrics(&[vec![0, 1], vec![]], &[vec![0], vec![0]], &topics).unwrap();
        tasks.insert(
            "topics".to_string(),
            TaskMetrics {
                kind: TaskKind::Multilabel,
                metric: "micro_f1".into(),
                ci: None,
                score: ml.micro_f1,
                baseline: ml_base.micro_f1,
                splits: [(
                    "dev".to_string(),
                    split(
                        ml.micro_f1,
                        ml_base.micro_f1,
                        TaskDetail::Multilabel(MultilabelDetail {
                            metrics: ml,
                            baseline_labels: vec!["sports".into()],
                            baseline: ml_base,
                        }),
                    ),
                )]
                .into(),
            },
        );
        let r = regression_metrics(&[1.0, 2.0, 4.0], &[1.5, 2.0, 3.0]).unwrap();
        let r_base = regression_metrics(&[1.0, 2.0, 4.0], &[2.5; 3]).unwrap();
        tasks.insert(
            "stars".to_string(),
            TaskMetrics {
                kind: TaskKind::Regression,
                metric: "pearson".into(),
                ci: None,
                score: r.pearson,
                baseline: 0.0,
                splits: [(
                    "dev".to_string(),
                    split(
                        r.pearson,
                        0.0,
                        TaskDetail::Regression(RegressionDetail {
                            metrics: r,
                            baseline_mean: 2.5,
                            baseline: r_base,
                        }),
                    ),
                )]
                .into(),
            },
        );
        tasks.insert("deps".to_string(), deps_task());
        Metrics {
            pipeline: "sample".into(),
            headline_split: "dev".into(),
            splits: vec!["dev".into(), "test".into()],
            tasks,
            bootstrap: Some(BootstrapInfo::current()),
            cost: None,
        }
    }

    /// A dependency task: dev with one drawn sentence (its second word on
    /// the wrong head), test without.
    fn deps_task() -> TaskMetrics {
        use crate::metrics::dependency::DependencyScorer;
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let example = ParsedSentence {
            id: "ewt-1".into(),
            words: strings(&["Dogs", "b|ark", "."]),
            gold: ParsedTree {
                heads: vec![2, 0, 2],
                relations: strings(&["nsubj", "root", "punct"]),
            },
            predicted: ParsedTree {
                heads: vec![2, 3, 0],
                relations: strings(&["nsubj", "root", "punct"]),
            },
        };
        let mut scorer = DependencyScorer::new();
        let (g, p) = (&example.gold, &example.predicted);
        scorer
            .add(&g.heads, &g.relations, &p.heads, &p.relations)
            .unwrap();
        let detail = |examples: Vec<ParsedSentence>| {
            TaskDetail::Dependency(DependencyDetail {
                attachment: scorer.finish(),
                truncated_words: 0,
                examples,
                examples_note: None,
            })
        };
        let split = |metrics| SplitMetrics {
            n: 1,
            score: 1.0 / 3.0,
            ci: None,
            baseline: 0.0,
            metrics,
        };
        TaskMetrics {
            kind: TaskKind::Dependency,
            metric: "las".into(),
            score: 1.0 / 3.0,
            ci: None,
            baseline: 0.0,
            splits: [
                ("dev".to_string(), split(detail(vec![example]))),
                ("test".to_string(), split(detail(Vec::new()))),
            ]
            .into(),
        }
    }

    #[test]
    fn dependency_detail_round_trips_with_and_without_drawn_sentences() {
        let m = sample();
        let v = serde_json::to_value(&m).unwrap();
        let deps = &v["tasks"]["deps"]["splits"];
        assert_eq!(deps["dev"]["metrics"]["examples"][0]["words"][1], "b|ark");
        assert_eq!(
            deps["dev"]["metrics"]["examples"][0]["predicted"]["heads"],
            serde_json::json!([2, 3, 0])
        );
        let test = deps["test"]["metrics"].as_object().unwrap();
        assert!(!test.contains_key("examples") && !test.contains_key("examples_note"));
        let back: Metrics = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, m);
        // A file from before drawn sentences existed still reads as a
        // dependency detail; a note survives the trip.
        let mut old = v;
        let dev = old["tasks"]["deps"]["splits"]["dev"]["metrics"]
            .as_object_mut()
            .unwrap();
        dev.remove("examples");
        dev.insert("examples_note".into(), "no words".into());
        let back: Metrics = serde_json::from_value(old).unwrap();
        let TaskDetail::Dependency(d) = &back.tasks["deps"].splits["dev"].metrics else {
            panic!("{back:?}")
        };
        assert!(d.examples.is_empty());
        assert_eq!(d.examples_note.as_deref(), Some("no words"));
        let md = render_markdown(&back);
        assert!(md.contains("No parsed sentence drawn: no words."), "{md}");
    }

    #[test]
    fn markdown_lists_drawn_sentences_conllu_style() {
        let md = render_markdown(&sample());
        assert!(
            md.contains("Sentence `ewt-1`, gold and predicted (✗: wrong head or relation):"),
            "{md}"
        );
        assert!(
            md.contains("| # | word | gold head | gold relation | head | relation |  |"),
            "{md}"
        );
        assert!(
            md.contains("| 1 | Dogs | 2 | nsubj | 2 | nsubj |  |"),
            "{md}"
        );
        assert!(
            md.contains("| 2 | b\\|ark | 0 | root | 3 | root | ✗ |"),
            "{md}"
        );
        assert!(md.contains("| 3 | . | 2 | punct | 0 | punct | ✗ |"), "{md}");
        assert_eq!(md.matches("Sentence `").count(), 1, "test draws none");
    }

    #[test]
    fn json_round_trips_every_task_kind() {
        let m = sample();
        let text = serde_json::to_string_pretty(&m).unwrap();
        let back: Metrics = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["tasks"]["sentiment"]["splits"]["dev"]["metrics"]["macro_f1"],
            c_macro(&m)
        );
        assert_eq!(
            v["tasks"]["ner"]["splits"]["dev"]["metrics"]["entity_f1"],
            1.0
        );
        assert_eq!(
            v["tasks"]["ner"]["splits"]["dev"]["metrics"]["truncated_words"],
            2
        );
        assert!(matches!(
            back.tasks["pos"].splits["dev"].metrics,
            TaskDetail::Tagging(_)
        ));
        assert!(matches!(
            back.tasks["topics"].splits["dev"].metrics,
            TaskDetail::Multilabel(_)
        ));
        assert!(matches!(
            back.tasks["stars"].splits["dev"].metrics,
            TaskDetail::Regression(_)
        ));
        assert!(matches!(
            back.tasks["deps"].splits["dev"].metrics,
            TaskDetail::Dependency(_)
        ));
        let topics = &v["tasks"]["topics"]["splits"]["dev"]["metrics"];
        assert_eq!(topics["subset_accuracy"], 0.5);
        assert_eq!(topics["baseline_labels"], serde_json::json!(["sports"]));
        assert_eq!(topics["baseline"]["subset_accuracy"], 0.0);
        let stars = &v["tasks"]["stars"]["splits"]["dev"]["metrics"];
        assert_eq!(stars["baseline_mean"], 2.5);
        assert_eq!(stars["baseline"]["pearson"], 0.0);
        assert!(stars["rmse"].as_f64().unwrap() > 0.0);
    }

    fn c_macro(m: &Metrics) -> f64 {
        match &m.tasks["sentiment"].splits["dev"].metrics {
            TaskDetail::Classification(c) => c.macro_f1,
            _ => unreachable!(),
        }
    }

    #[test]
    fn table_is_aligned_with_one_column_per_split() {
        let t = render_table(&sample());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 8, "{t}");
        assert!(
            lines[0].starts_with("task") && lines[0].contains("dev") && lines[0].contains("test")
        );
        assert!(lines[0].ends_with("baseline (dev)"), "{t}");
        assert!(lines[1].chars().all(|c| c == '-'));
        let sent = lines.iter().find(|l| l.starts_with("sentiment")).unwrap();
        assert!(
            sent.contains("0.912") && sent.contains("0.500") && sent.ends_with("0.190"),
            "{t}"
        );
        // Every score column ends at the same offset.
        let ner = lines.iter().find(|l| l.starts_with("ner")).unwrap();
        assert_eq!(ner.len(), sent.len(), "{t}");
        assert!(ner.contains(" - "), "missing split shows as -: {t}");
    }

    #[test]
    fn markdown_has_table_and_details() {
        let md = render_markdown(&sample());
        assert!(
            md.contains("| task | kind | metric | dev | test | baseline (dev) |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| sentiment | classification | macro_f1 | 0.912 [0.862, 0.962] | 0.500 [0.450, 0.550] | 0.190 |"
            ),
            "{md}"
        );
        assert!(md.contains("pos\\|x"), "pipes in labels are escaped: {md}");
        assert!(md.contains("Confusion matrix"));
        assert!(
            md.contains("| PER | 1.000 | 1.000 | 1.000 | 1 | 1 |"),
            "{md}"
        );
        assert!(md.contains("2 word(s) were cut off by truncation"), "{md}");
        assert!(
            md.contains("## topics (multilabel, headline `micro_f1`)"),
            "{md}"
        );
        assert!(
            md.contains("| topics | multilabel | micro_f1 | 0.667 [0.617, 0.717] | - | 0.500 |"),
            "{md}"
        );
        assert!(
            md.contains("subset accuracy 0.500 · hamming loss 0.250"),
            "{md}"
        );
        assert!(md.contains("Baseline (always sports)"), "{md}");
        assert!(
            md.contains("| tech | 0.000 | 0.000 | 0.000 | 1 | 0 |"),
            "{md}"
        );
        assert!(md.contains("| stars | regression | pearson |"), "{md}");
        assert!(
            md.contains("| baseline (mean 2.500) | 0.000 | 0.000 | 1.583 |"),
            "{md}"
        );
    }

    #[test]
    fn split_order_falls_back_to_headline_first() {
        let mut m = sample();
        m.splits.clear();
        m.headline_split = "test".into();
        assert_eq!(m.split_order(), vec!["test".to_string(), "dev".to_string()]);
    }
}
