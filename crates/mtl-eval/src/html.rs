//! `report.html`: one self-contained file (inline CSS and SVG, no script,
//! no external resource) with the score table, a chart of every task's
//! headline score against its baselines, and per task its training curves,
//! its confusion matrix (classification), its label distribution and, for
//! a dependency task, a few parsed dev sentences drawn over their gold
//! trees.
//!
//! The number of charts is written to `<meta name="mtl-charts">` so that a
//! browser check (`cargo xtask check-report`) can compare it with the
//! `<svg>` elements it finds in the rendered DOM.

use std::fmt::Write;
use std::path::Path;

use mtl_core::{LabelSet, TaskKind, TaskLabels};

use crate::baselines::{Comparison, SingleTaskScores};
use crate::report::{Metrics, TaskDetail, TaskMetrics, comparison_rows, cost_rows, score_ci};
use crate::score::{DRAWN_WORDS, MAX_DRAWN_WORDS};
use crate::stage::DRAWN_SPLIT;
use crate::svg::{Bar, Line, Panel, WRONG_ARC, bar_chart, esc, heatmap, line_chart, parse_tree};
use crate::trainlog::{TrainLog, smooth};

/// Most labels a confusion matrix or a distribution shows; the rest are
/// left out (heatmap) or summed into one bar (distribution).
pub const TOP_LABELS: usize = 20;

const MULTI: &str = "#1f5fa8";
const SINGLE: &str = "#e08a1e";
const MAJORITY: &str = "#9a9a9a";
const GOLD: &str = "#3a9a5b";

/// Everything the HTML report shows.
pub struct HtmlInputs<'a> {
    pub metrics: &'a Metrics,
    pub log: &'a TrainLog,
    /// The model's label sets: training counts per label.
    pub labels: &'a LabelSet,
    pub single_task: Option<&'a SingleTaskScores>,
    /// Where single-task scores were looked for, to say so when absent.
    pub baselines_path: &'a Path,
}

const STYLE: &str = "body{font-family:sans-serif;margin:24px auto;max-width:1000px;color:#222;\
line-height:1.4}h1{font-size:22px}h2{font-size:18px;margin-top:36px;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:12px 0;font-size:13px}th,td{border:1px solid #ccc;\
padding:3px 8px;text-align:right}th:first-child,td:first-child{text-align:left}\
th{background:#f2f2f2}.note{color:#555;font-size:13px}.charts{display:flex;flex-wrap:wrap;\
gap:16px;align-items:flex-start}svg{background:#fff;border:1px solid #eee}\
.trees{overflow-x:auto}.trees svg{display:block;margin:8px 0}";

fn is_error_metric(name: &str) -> bool {
    matches!(name, "mse" | "rmse" | "mae")
}

/// Renders `report.html`.
pub fn render_html(inp: &HtmlInputs) -> String {
    let m = inp.metrics;
    let mut body = String::new();
    let mut charts = 0usize;
    let mut chart = |body: &mut String, svg: String| {
        charts += 1;
        body.push_str(&svg);
    };
    let _ = write!(body, "<h1>Evaluation: {}</h1>", esc(&m.pipeline));
    let _ = write!(
        body,
        "<p class=\"note\">Headline scores on the <b>{}</b> split with 95% percentile bootstrap \
         intervals ({} resamples of the scored examples: texts, or sentences for token tasks). \
         The majority baseline predicts the most frequent training label (multilabel: the \
         labels of at least half of the training texts; regression: the training mean).</p>",
        esc(&m.headline_split),
        m.bootstrap.as_ref().map_or(0, |b| b.resamples)
    );
    summary_table(&mut body, inp);

    // Scores against baselines, one chart per kind of scale.
    for errors in [false, true] {
        let rows = score_rows(inp, errors);
        if rows.is_empty() {
            continue;
        }
        let max = rows
            .iter()
            .flat_map(|(_, b)| b.iter())
            .flat_map(|b| std::iter::once(b.value).chain(b.ci.into_iter().flatten()))
            .fold(if errors { 0.0 } else { 1.0 }, f64::max);
        let min = rows
            .iter()
            .flat_map(|(_, b)| b.iter())
            .flat_map(|b| std::iter::once(b.value).chain(b.ci.into_iter().flatten()))
            .fold(0.0, f64::min);
        let title = if errors {
            format!(
                "Regression errors on {} (lower is better)",
                m.headline_split
            )
        } else {
            format!("Headline scores on {}", m.headline_split)
        };
        chart(
            &mut body,
            bar_chart(&title, "scores", "headline metric", &rows, (min, max)),
        );
    }
    if inp.single_task.is_none() {
        let _ = write!(
            body,
            "<p class=\"note\">No single-task scores ({} not found): multi-task is compared with \
             the majority baseline only.</p>",
            esc(&inp.baselines_path.display().to_string())
        );
    } else if let Some(d) = inp.single_task.and_then(|s| s.description.as_deref()) {
        let _ = write!(body, "<p class=\"note\">Single-task models: {}</p>", esc(d));
    }
    if let Some(single) = inp.single_task {
        comparison(&mut body, &Comparison::new(m, single));
    }
    if !inp.log.found {
        body.push_str("<p class=\"note\">No training log (train/log.jsonl) was found.</p>");
    } else if inp.log.bad_lines > 0 {
        let _ = write!(
            body,
            "<p class=\"note\">{} line(s) of the training log were not JSON and were skipped.</p>",
            inp.log.bad_lines
        );
    }

    for (name, t) in &m.tasks {
        let _ = write!(
            body,
            "<section id=\"task-{}\"><h2>{} <span class=\"note\">({}, {})</span></h2>",
            esc(name),
            esc(name),
            t.kind.name(),
            esc(&t.metric)
        );
        let _ = write!(
            body,
            "<p>{} {} on {} ({} baseline {:.3})</p><div class=\"charts\">",
            esc(&t.metric),
            esc(&score_ci(t.score, t.ci)),
            esc(&m.headline_split),
            if t.kind == TaskKind::Regression {
                "training-mean"
            } else {
                "majority"
            },
            t.baseline
        );
        if let Some(svg) = curves(name, inp.log) {
            chart(&mut body, svg);
        }
        if let Some(TaskDetail::Classification(c)) =
            t.splits.get(&m.headline_split).map(|s| &s.metrics)
        {
            let labels: Vec<String> = c.per_class.iter().map(|k| k.label.clone()).collect();
            let support: Vec<u64> = c.per_class.iter().map(|k| k.support).collect();
            let (keep, note) = top_labels(&support, &labels);
            let sub: Vec<Vec<u64>> = keep
                .iter()
                .map(|&g| keep.iter().map(|&p| c.confusion[g][p]).collect())
                .collect();
            let names: Vec<String> = keep.iter().map(|&i| labels[i].clone()).collect();
            chart(
                &mut body,
                heatmap(
                    &format!("{name}: confusion matrix ({})", m.headline_split),
                    &names,
                    &sub,
                    &note,
                ),
            );
        }
        if let Ok(labels) = inp.labels.get(name)
            && let Some(svg) = distribution(name, t.kind, labels, inp, &m.headline_split)
        {
            chart(&mut body, svg);
        }
        body.push_str("</div>");
        if t.kind == TaskKind::Dependency {
            let drawings = parsed_sentences(&mut body, name, t);
            if !drawings.is_empty() {
                body.push_str("<div class=\"trees\">");
                for svg in drawings {
                    chart(&mut body, svg);
                }
                body.push_str("</div>");
            }
        }
        body.push_str("</section>");
    }

    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"mtl-charts\" content=\"{charts}\"><title>Evaluation: {}</title>\
         <style>{STYLE}</style></head><body>{body}</body></html>\n",
        esc(&m.pipeline)
    )
}

/// The heading and caption of a dependency task's parsed dev sentences
/// (or why there are none) into `out`, and one drawing per sentence.
fn parsed_sentences(out: &mut String, task: &str, t: &TaskMetrics) -> Vec<String> {
    let _ = write!(out, "<h3>Parsed {DRAWN_SPLIT} sentences</h3>");
    let Some(split) = t.splits.get(DRAWN_SPLIT) else {
        let _ = write!(
            out,
            "<p class=\"note\">The {DRAWN_SPLIT} split was not scored (eval.splits), so no \
             parsed sentence is drawn.</p>"
        );
        return Vec::new();
    };
    let TaskDetail::Dependency(d) = &split.metrics else {
        return Vec::new();
    };
    if let Some(note) = &d.examples_note {
        let _ = write!(
            out,
            "<p class=\"note\">No sentence drawn: {}.</p>",
            esc(note)
        );
    }
    if d.examples.is_empty() {
        return Vec::new();
    }
    let _ = write!(
        out,
        "<p class=\"note\">The first {DRAWN_SPLIT} sentences of {} to {} words in table order \
         (shorter or longer ones up to {MAX_DRAWN_WORDS} words when too few), chosen without \
         looking at the predictions. Above the words the gold tree, below them the model&#39;s; \
         arrows point from head to dependent, a vertical arrow marks the root&#39;s child. \
         <b style=\"color:{WRONG_ARC}\">Red, dashed</b>: a predicted arc with the wrong head \
         or relation (relations compared on their universal part, as LAS does). Hover an arc \
         for its words.</p>",
        DRAWN_WORDS.start(),
        DRAWN_WORDS.end()
    );
    d.examples
        .iter()
        .map(|s| {
            let right = s.wrong().iter().filter(|w| !**w).count();
            let title = format!(
                "{task}: {DRAWN_SPLIT} sentence {} ({right} of {} arcs right)",
                s.id,
                s.words.len()
            );
            parse_tree(&title, s)
        })
        .collect()
}

/// Rows of cells, header first, as a table.
fn html_table(out: &mut String, rows: &[Vec<String>]) {
    out.push_str("<table>");
    for (i, row) in rows.iter().enumerate() {
        out.push_str("<tr>");
        for cell in row {
            let tag = if i == 0 { "th" } else { "td" };
            let _ = write!(out, "<{tag}>{}</{tag}>", esc(cell));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
}

/// Multi-task vs single-task per task and split, Δp, and the costs.
fn comparison(out: &mut String, c: &Comparison) {
    out.push_str("<section id=\"single-task\"><h2>Multi-task vs single-task</h2>");
    html_table(out, &comparison_rows(c));
    out.push_str(
        "<p class=\"note\">Δ% is the relative gain of the multi-task model over the \
         single-task one, (M − S) / |S| × 100, negated where lower is better; Δp is its mean \
         over the tasks (LibMTL's multi-task gain). Positive means multi-task is better.</p>",
    );
    for t in &c.tasks {
        if let Some(n) = &t.note {
            let _ = write!(out, "<p class=\"note\">{}: {}</p>", esc(&t.task), esc(n));
        }
    }
    let costs = cost_rows(c);
    if costs.len() > 1 {
        out.push_str("<h3>Cost</h3>");
        html_table(out, &costs);
        out.push_str(
            "<p class=\"note\">Training: wall time of the training loop. Inference: wall time \
             of the forward passes over the eval splits; each single-task model predicts every \
             example for its one task.</p>",
        );
    }
    out.push_str("</section>");
}

fn summary_table(out: &mut String, inp: &HtmlInputs) {
    let m = inp.metrics;
    let splits = m.split_order();
    out.push_str("<table><tr><th>task</th><th>kind</th><th>metric</th>");
    for s in &splits {
        let _ = write!(out, "<th>{}</th>", esc(s));
    }
    let _ = write!(
        out,
        "<th>majority ({})</th><th>single-task</th></tr>",
        esc(&m.headline_split)
    );
    for (name, t) in &m.tasks {
        let _ = write!(
            out,
            "<tr><td><a href=\"#task-{}\">{}</a></td><td>{}</td><td>{}</td>",
            esc(name),
            esc(name),
            t.kind.name(),
            esc(&t.metric)
        );
        for s in &splits {
            let cell = t
                .splits
                .get(s)
                .map_or_else(|| "-".to_string(), |sm| score_ci(sm.score, sm.ci));
            let _ = write!(out, "<td>{}</td>", esc(&cell));
        }
        let single = match inp
            .single_task
            .and_then(|st| st.comparable(name, &t.metric, &m.headline_split))
        {
            Some(Ok(s)) => score_ci(s.score, s.ci),
            Some(Err(why)) => why,
            None => "-".into(),
        };
        let _ = write!(
            out,
            "<td>{:.3}</td><td>{}</td></tr>",
            t.baseline,
            esc(&single)
        );
    }
    out.push_str("</table>");
}

/// Bars per task: multi-task (with its interval), single-task when
/// comparable, majority baseline. `errors` picks the lower-is-better
/// metrics, which get their own axis.
fn score_rows<'a>(inp: &'a HtmlInputs, errors: bool) -> Vec<(String, Vec<Bar<'a>>)> {
    let m = inp.metrics;
    let mut rows = Vec::new();
    for (name, t) in &m.tasks {
        if is_error_metric(&t.metric) != errors {
            continue;
        }
        let mut bars = vec![Bar {
            series: "multi-task",
            color: MULTI,
            value: t.score,
            ci: t.ci,
        }];
        if let Some(Ok(s)) = inp
            .single_task
            .and_then(|st| st.comparable(name, &t.metric, &m.headline_split))
        {
            bars.push(Bar {
                series: "single-task",
                color: SINGLE,
                value: s.score,
                ci: s.ci,
            });
        }
        bars.push(Bar {
            series: "majority baseline",
            color: MAJORITY,
            value: t.baseline,
            ci: None,
        });
        rows.push((format!("{name} ({})", t.metric), bars));
    }
    rows
}

/// Training loss (raw and smoothed) and dev score of one task over steps;
/// `None` when the log has neither.
fn curves(task: &str, log: &TrainLog) -> Option<String> {
    let loss = log.loss.get(task).filter(|c| !c.is_empty());
    let dev = log.dev.get(task).filter(|c| !c.is_empty());
    if loss.is_none() && dev.is_none() {
        return None;
    }
    let smoothed = loss.map(|c| smooth(c, (c.len() / 25).max(1)));
    let mut panels = Vec::new();
    if let (Some(raw), Some(sm)) = (loss, smoothed.as_ref()) {
        panels.push(Panel {
            y_label: "training loss".into(),
            lines: vec![
                Line {
                    label: "per batch".into(),
                    color: MULTI,
                    points: raw,
                    width: 1.0,
                    opacity: 0.25,
                    dots: false,
                },
                Line {
                    label: "moving average".into(),
                    color: MULTI,
                    points: sm,
                    width: 2.0,
                    opacity: 1.0,
                    dots: false,
                },
            ],
            y_range: None,
        });
    }
    if let Some(dev) = dev {
        let metric = log.dev_metric.get(task).map_or("score", String::as_str);
        panels.push(Panel {
            y_label: format!("dev {metric}"),
            lines: vec![Line {
                label: format!("dev {metric}"),
                color: GOLD,
                points: dev,
                width: 2.0,
                opacity: 1.0,
                dots: true,
            }],
            y_range: None,
        });
    }
    Some(line_chart(
        &format!("{task}: training curves"),
        "step",
        &panels,
    ))
}

/// The ids of the `TOP_LABELS` labels with the most `weight` (id order
/// kept), and a note when some were left out.
fn top_labels(weight: &[u64], labels: &[String]) -> (Vec<usize>, String) {
    if labels.len() <= TOP_LABELS {
        return ((0..labels.len()).collect(), String::new());
    }
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| weight[b].cmp(&weight[a]).then(a.cmp(&b)));
    let mut keep: Vec<usize> = order.into_iter().take(TOP_LABELS).collect();
    keep.sort_unstable();
    let note = format!("the {TOP_LABELS} most frequent of {} labels", labels.len());
    (keep, note)
}

/// Share of each label in training (`labels.json` counts) and, where the
/// metrics hold it, among the gold labels of the headline split.
fn distribution(
    task: &str,
    kind: TaskKind,
    labels: &TaskLabels,
    inp: &HtmlInputs,
    split: &str,
) -> Option<String> {
    if !kind.has_vocab() || labels.labels.is_empty() {
        return None;
    }
    let train = &labels.train_counts;
    let gold: Option<Vec<u64>> = inp
        .metrics
        .tasks
        .get(task)
        .and_then(|t| t.splits.get(split))
        .and_then(|s| match &s.metrics {
            TaskDetail::Classification(c) => Some(c.per_class.iter().map(|k| k.support).collect()),
            TaskDetail::Multilabel(d) => {
                Some(d.metrics.per_label.iter().map(|k| k.support).collect())
            }
            _ => None,
        })
        .filter(|g: &Vec<u64>| g.len() == labels.labels.len());
    let weight: Vec<u64> = (0..labels.labels.len())
        .map(|i| train.get(i).copied().unwrap_or(0))
        .collect();
    let (keep, _) = top_labels(&weight, &labels.labels);
    let share = |counts: &[u64], i: usize| {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            0.0
        } else {
            counts.get(i).copied().unwrap_or(0) as f64 / total as f64
        }
    };
    let mut rows: Vec<(String, Vec<Bar>)> = keep
        .iter()
        .map(|&i| {
            let mut bars = vec![Bar {
                series: "train",
                color: MULTI,
                value: share(&weight, i),
                ci: None,
            }];
            if let Some(g) = &gold {
                bars.push(Bar {
                    series: "gold (eval split)",
                    color: GOLD,
                    value: share(g, i),
                    ci: None,
                });
            }
            (labels.labels[i].clone(), bars)
        })
        .collect();
    if keep.len() < labels.labels.len() {
        let rest: Vec<usize> = (0..labels.labels.len())
            .filter(|i| !keep.contains(i))
            .collect();
        let sum = |counts: &[u64]| rest.iter().map(|&i| share(counts, i)).sum::<f64>();
        let mut bars = vec![Bar {
            series: "train",
            color: MULTI,
            value: sum(&weight),
            ci: None,
        }];
        if let Some(g) = &gold {
            bars.push(Bar {
                series: "gold (eval split)",
                color: GOLD,
                value: sum(g),
                ci: None,
            });
        }
        rows.push((format!("({} other labels)", rest.len()), bars));
    }
    let max = rows
        .iter()
        .flat_map(|(_, b)| b.iter().map(|b| b.value))
        .fold(0.0, f64::max);
    let what = if kind.is_token_level() {
        "tags (words)"
    } else {
        "labels"
    };
    Some(bar_chart(
        &format!("{task}: share of {what}"),
        "distribution",
        "share",
        &rows,
        (0.0, (max * 1.1).clamp(0.05, 1.0)),
    ))
}
