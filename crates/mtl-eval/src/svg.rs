//! Hand-written SVG charts for the HTML report: line panels, horizontal
//! bars with interval whiskers, a heatmap, and dependency trees. Every chart is a complete
//! `<svg>` element with a `data-chart` kind and a `<title>`; every piece of
//! text goes through [`esc`], so labels from the data cannot break the
//! markup. No scripts, fonts or other external resources.

use std::fmt::Write;

use crate::report::ParsedSentence;

/// Escapes text for HTML/SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Shortens a label for an axis, marking the cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{head}…")
    }
}

/// A number in an SVG attribute: short, and never NaN or infinite.
fn n(x: f64) -> String {
    let x = if x.is_finite() { x } else { 0.0 };
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The `<svg>` element of a `w`×`h` chart, with its title as tooltip and
/// as the bold heading every chart starts with.
fn open(w: f64, h: f64, kind: &str, title: &str) -> String {
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{t}\" data-chart=\"{kind}\" \
         font-family=\"sans-serif\" font-size=\"11\"><title>{t}</title>",
        w = n(w),
        h = n(h),
        t = esc(title),
        kind = esc(kind)
    );
    text(
        &mut out,
        w / 2.0,
        16.0,
        "middle",
        " font-size=\"13\" font-weight=\"bold\"",
        title,
    );
    out
}

fn text(out: &mut String, x: f64, y: f64, anchor: &str, extra: &str, s: &str) {
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\"{extra}>{}</text>",
        n(x),
        n(y),
        esc(s)
    );
}

/// About `count` round tick values covering `lo..=hi`.
pub fn ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / count.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let mut out = Vec::new();
    let mut v = (lo / step).ceil() * step;
    while v <= hi + step * 1e-9 {
        // Avoid "-0" and float dust such as 0.30000000000000004.
        out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    out
}

fn tick_label(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "-0" { "0".into() } else { s.into() }
    }
}

/// One line of a [`line_chart`].
pub struct Line<'a> {
    pub label: String,
    pub color: &'a str,
    pub points: &'a [(f64, f64)],
    pub width: f64,
    pub opacity: f64,
    /// Dots on the points (sparse series such as dev scores).
    pub dots: bool,
}

/// One panel of a [`line_chart`]: its lines share a y axis.
pub struct Panel<'a> {
    pub y_label: String,
    pub lines: Vec<Line<'a>>,
    /// Fixed y range, else the data's.
    pub y_range: Option<(f64, f64)>,
}

const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;

/// Panels stacked on a shared x axis (`x_label`), each with a legend.
pub fn line_chart(title: &str, x_label: &str, panels: &[Panel]) -> String {
    let (w, panel_h, top) = (640.0, 150.0, 44.0);
    let gap = 48.0;
    let h = top + panels.len() as f64 * (panel_h + gap) - gap + 40.0;
    let mut out = open(w, h, "curve", title);
    let all = panels
        .iter()
        .flat_map(|p| p.lines.iter())
        .flat_map(|l| l.points.iter());
    let (mut x_lo, mut x_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &(x, _) in all {
        x_lo = x_lo.min(x);
        x_hi = x_hi.max(x);
    }
    if !x_lo.is_finite() {
        (x_lo, x_hi) = (0.0, 1.0);
    }
    if x_hi <= x_lo {
        x_hi = x_lo + 1.0;
    }
    let plot_w = w - LEFT - RIGHT;
    let sx = |x: f64| LEFT + (x - x_lo) / (x_hi - x_lo) * plot_w;
    for (i, p) in panels.iter().enumerate() {
        let y0 = top + i as f64 * (panel_h + gap);
        let (mut lo, mut hi) = p.y_range.unwrap_or((f64::INFINITY, f64::NEG_INFINITY));
        if p.y_range.is_none() {
            for &(_, y) in p.lines.iter().flat_map(|l| l.points.iter()) {
                lo = lo.min(y);
                hi = hi.max(y);
            }
            if !lo.is_finite() {
                (lo, hi) = (0.0, 1.0);
            }
            let pad = ((hi - lo) * 0.05).max(1e-6);
            (lo, hi) = (lo - pad, hi + pad);
        }
        let sy = |y: f64| y0 + panel_h - (y - lo) / (hi - lo) * panel_h;
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" stroke=\"#ccc\"/>",
            n(LEFT),
            n(y0),
            n(plot_w),
            n(panel_h)
        );
        for t in ticks(lo, hi, 4) {
            let y = sy(t);
            let _ = write!(
                out,
                "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#e4e4e4\"/>",
                n(LEFT),
                n(LEFT + plot_w),
                y = n(y)
            );
            text(&mut out, LEFT - 4.0, y + 4.0, "end", "", &tick_label(t));
        }
        text(
            &mut out,
            14.0,
            y0 + panel_h / 2.0,
            "middle",
            &format!(" transform=\"rotate(-90 14 {})\"", n(y0 + panel_h / 2.0)),
            &p.y_label,
        );
        for l in &p.lines {
            if l.points.is_empty() {
                continue;
            }
            let pts: Vec<String> = l
                .points
                .iter()
                .map(|&(x, y)| format!("{},{}", n(sx(x)), n(sy(y.clamp(lo, hi)))))
                .collect();
            let _ = write!(
                out,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-opacity=\"{}\" \
                 points=\"{}\"/>",
                esc(l.color),
                n(l.width),
                n(l.opacity),
                pts.join(" ")
            );
            if l.dots {
                for &(x, y) in l.points {
                    let _ = write!(
                        out,
                        "<circle cx=\"{}\" cy=\"{}\" r=\"2.5\" fill=\"{}\"/>",
                        n(sx(x)),
                        n(sy(y.clamp(lo, hi))),
                        esc(l.color)
                    );
                }
            }
        }
        // Legend, right-aligned just above the panel, clear of the data.
        let mut lx = LEFT + plot_w;
        for l in p.lines.iter().rev().filter(|l| !l.label.is_empty()) {
            let width = 7.0 * l.label.chars().count() as f64 + 22.0;
            lx -= width;
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"3\" fill=\"{}\" fill-opacity=\"{}\"/>",
                n(lx),
                n(y0 - 9.0),
                esc(l.color),
                n(l.opacity.max(0.6))
            );
            text(&mut out, lx + 15.0, y0 - 5.0, "start", "", &l.label);
        }
        for t in ticks(x_lo, x_hi, 6) {
            let x = sx(t);
            let _ = write!(
                out,
                "<line x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\" stroke=\"#999\"/>",
                n(y0 + panel_h),
                n(y0 + panel_h + 4.0),
                x = n(x)
            );
            text(
                &mut out,
                x,
                y0 + panel_h + 15.0,
                "middle",
                "",
                &tick_label(t),
            );
        }
    }
    text(
        &mut out,
        LEFT + plot_w / 2.0,
        h - 4.0,
        "middle",
        "",
        x_label,
    );
    out.push_str("</svg>");
    out
}

/// One bar of a [`bar_chart`] group.
pub struct Bar<'a> {
    pub series: &'a str,
    pub color: &'a str,
    pub value: f64,
    pub ci: Option<[f64; 2]>,
}

/// Horizontal bars, one group per row (`(label, bars)`), on a shared axis
/// `range`; whiskers show intervals; the value is printed after each bar.
pub fn bar_chart(
    title: &str,
    kind: &str,
    axis: &str,
    rows: &[(String, Vec<Bar>)],
    range: (f64, f64),
) -> String {
    let label_w = 170.0;
    let (w, bar_h, top) = (700.0, 13.0, 46.0);
    let group_h = |bars: usize| bars as f64 * (bar_h + 2.0) + 10.0;
    let body: f64 = rows.iter().map(|(_, b)| group_h(b.len())).sum();
    let h = top + body + 34.0;
    let plot_w = w - label_w - 60.0;
    let (lo, hi) = if range.1 > range.0 { range } else { (0.0, 1.0) };
    let sx = |v: f64| label_w + (v.clamp(lo, hi) - lo) / (hi - lo) * plot_w;
    let mut out = open(w, h, kind, title);
    // Legend: every series once, in first-seen order.
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for b in rows.iter().flat_map(|(_, b)| b) {
        if !seen.iter().any(|(s, _)| *s == b.series) {
            seen.push((b.series, b.color));
        }
    }
    let mut lx = label_w;
    for (s, c) in &seen {
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"26\" width=\"12\" height=\"10\" fill=\"{}\"/>",
            n(lx),
            esc(c)
        );
        text(&mut out, lx + 16.0, 35.0, "start", "", s);
        lx += 7.0 * s.chars().count() as f64 + 36.0;
    }
    let bottom = top + body;
    for t in ticks(lo, hi, 5) {
        let x = sx(t);
        let _ = write!(
            out,
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\"/>",
            n(top - 4.0),
            n(bottom),
            if t == 0.0 { "#888" } else { "#e4e4e4" },
            x = n(x)
        );
        text(&mut out, x, bottom + 14.0, "middle", "", &tick_label(t));
    }
    text(
        &mut out,
        label_w + plot_w / 2.0,
        h - 4.0,
        "middle",
        "",
        axis,
    );
    let mut y = top;
    for (label, bars) in rows {
        let gh = group_h(bars.len());
        text(
            &mut out,
            label_w - 8.0,
            y + gh / 2.0,
            "end",
            "",
            &clip(label, 26),
        );
        let mut by = y + 4.0;
        for b in bars {
            let (x0, x1) = (sx(0.0f64.max(lo)), sx(b.value));
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
                n(x0.min(x1)),
                n(by),
                n((x1 - x0).abs().max(0.5)),
                n(bar_h),
                esc(b.color),
                esc(&format!("{}: {}", b.series, tick_label(b.value)))
            );
            let mut end = x1.max(x0);
            if let Some([a, c]) = b.ci {
                let (xa, xc, ym) = (sx(a), sx(c), by + bar_h / 2.0);
                let _ = write!(
                    out,
                    "<path d=\"M{xa} {y1}V{y2}M{xa} {ym}H{xc}M{xc} {y1}V{y2}\" stroke=\"#222\" \
                     fill=\"none\"/>",
                    xa = n(xa),
                    xc = n(xc),
                    ym = n(ym),
                    y1 = n(by + 2.0),
                    y2 = n(by + bar_h - 2.0)
                );
                end = end.max(xc);
            }
            text(
                &mut out,
                end + 4.0,
                by + bar_h - 3.0,
                "start",
                "",
                &format!("{:.3}", b.value),
            );
            by += bar_h + 2.0;
        }
        y += gh;
    }
    out.push_str("</svg>");
    out
}

/// Colour of a share in `0..=1`: white to deep blue.
fn blue(t: f64) -> String {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        mix(255.0, 16.0),
        mix(255.0, 72.0),
        mix(255.0, 150.0)
    )
}

/// A confusion-matrix heatmap: `matrix[gold][pred]` counts over `labels`
/// (same order both ways), each cell shaded by its share of its gold row
/// (the row's recall on the diagonal) and printed as a count.
pub fn heatmap(title: &str, labels: &[String], matrix: &[Vec<u64>], note: &str) -> String {
    let k = labels.len();
    let cell = if k <= 6 {
        44.0
    } else if k <= 12 {
        32.0
    } else {
        24.0
    };
    let label_w = 130.0;
    // Room for the rotated column labels (at most 18 characters).
    let longest = labels
        .iter()
        .map(|l| l.chars().count().min(18))
        .max()
        .unwrap_or(1);
    let top = 50.0 + 6.0 * longest as f64;
    let w = (label_w + cell * k as f64 + 20.0).max(360.0);
    let h = top + cell * k as f64 + 44.0;
    let mut out = open(w, h, "confusion", title);
    if !note.is_empty() {
        text(&mut out, w / 2.0, 32.0, "middle", " fill=\"#555\"", note);
    }
    for (j, l) in labels.iter().enumerate() {
        let x = label_w + cell * (j as f64 + 0.5);
        let y = top - 6.0;
        text(
            &mut out,
            x,
            y,
            "start",
            &format!(" transform=\"rotate(-60 {} {})\"", n(x), n(y)),
            &clip(l, 18),
        );
    }
    for (i, row) in matrix.iter().enumerate().take(k) {
        let total: u64 = row.iter().sum();
        let y = top + cell * i as f64;
        text(
            &mut out,
            label_w - 6.0,
            y + cell / 2.0 + 4.0,
            "end",
            "",
            &clip(&labels[i], 18),
        );
        for (j, &c) in row.iter().enumerate().take(k) {
            let share = if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            };
            let x = label_w + cell * j as f64;
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{c_}\" height=\"{c_}\" fill=\"{}\" stroke=\"#fff\">\
                 <title>{}</title></rect>",
                n(x),
                n(y),
                blue(share),
                esc(&format!(
                    "gold {} → predicted {}: {c} ({:.1}% of the row)",
                    labels[i],
                    labels[j],
                    100.0 * share
                )),
                c_ = n(cell)
            );
            if c > 0 {
                let fill = if share > 0.5 { "#fff" } else { "#222" };
                text(
                    &mut out,
                    x + cell / 2.0,
                    y + cell / 2.0 + 4.0,
                    "middle",
                    &format!(
                        " fill=\"{fill}\" font-size=\"{}\"",
                        if cell < 30.0 { 9 } else { 11 }
                    ),
                    &c.to_string(),
                );
            }
        }
    }
    let bottom = top + cell * k as f64;
    text(
        &mut out,
        label_w + cell * k as f64 / 2.0,
        bottom + 16.0,
        "middle",
        "",
        "predicted",
    );
    text(
        &mut out,
        label_w + cell * k as f64 / 2.0,
        bottom + 32.0,
        "middle",
        " fill=\"#555\"",
        "rows: gold; shade: share of the gold row",
    );
    out.push_str("</svg>");
    out
}

/// Arc colours of [`parse_tree`]: gold, a right prediction, a wrong one.
pub const GOLD_ARC: &str = "#3a7d4f";
pub const RIGHT_ARC: &str = "#1f5fa8";
pub const WRONG_ARC: &str = "#c62828";

/// One sentence's words in a row with its gold tree above them and the
/// predicted tree below, arcs from head to dependent (arrow at the
/// dependent) labelled with the relation, the root's child marked by a
/// vertical arrow. A predicted arc with the wrong head or relation
/// ([`ParsedSentence::wrong`]) is red and dashed, so it reads without
/// colour too. An arc covering more words is drawn higher; the same span
/// gets the same height above and below, so a right arc mirrors its gold
/// one. Each arc is a `<g data-arc="gold|right|wrong">` with a tooltip.
pub fn parse_tree(title: &str, s: &ParsedSentence) -> String {
    let n_words = s.words.len();
    let wrong = s.wrong();
    // One column per word, wide enough for the word and for the label of
    // an arc between neighbours.
    let widths: Vec<f64> = s
        .words
        .iter()
        .map(|w| (7.2 * w.chars().count() as f64 + 18.0).max(60.0))
        .collect();
    let margin = 20.0;
    let mut centers = Vec::with_capacity(n_words);
    let mut x = margin;
    for w in &widths {
        centers.push(x + w / 2.0);
        x += w;
    }
    let w = (x + margin).max(560.0);
    // Word number k (1-based, as heads are; 0 is the root) is at
    // centers[k - 1].
    let at = |k: usize| k.checked_sub(1).and_then(|i| centers.get(i)).copied();

    let trees = [&s.gold, &s.predicted];
    let mut spans: Vec<usize> = trees
        .iter()
        .flat_map(|t| t.heads.iter().enumerate())
        .filter(|&(_, &h)| h != 0)
        .map(|(d, &h)| (d + 1).abs_diff(h))
        .collect();
    spans.sort_unstable();
    spans.dedup();
    let levels = spans.len() + 1;
    let step = (220.0 / levels as f64).clamp(10.0, 22.0);
    let height = |span: usize| match spans.binary_search(&span) {
        Ok(i) => step * (i + 1) as f64,
        Err(_) => step * levels as f64,
    };
    let area = step * levels as f64 + 16.0;

    let top = 48.0;
    let words_y = top + area + 14.0;
    let gold_base = words_y - 15.0;
    let pred_base = words_y + 6.0;
    let h = pred_base + area + 12.0;
    let mut out = open(w, h, "parse", title);

    // Legend: a short stroke of each kind of arc.
    let mut lx = margin;
    for (label, color, dashed) in [
        ("gold tree (above)", GOLD_ARC, false),
        ("predicted, right (below)", RIGHT_ARC, false),
        ("predicted, wrong head or relation", WRONG_ARC, true),
    ] {
        let _ = write!(
            out,
            "<line x1=\"{}\" x2=\"{}\" y1=\"31\" y2=\"31\" stroke=\"{color}\" \
             stroke-width=\"2\"{}/>",
            n(lx),
            n(lx + 18.0),
            if dashed {
                " stroke-dasharray=\"4 2\""
            } else {
                ""
            }
        );
        text(&mut out, lx + 22.0, 35.0, "start", "", label);
        lx += 6.2 * label.chars().count() as f64 + 42.0;
    }

    for (k, word) in s.words.iter().enumerate() {
        text(
            &mut out,
            centers[k],
            words_y,
            "middle",
            " font-size=\"12\"",
            word,
        );
    }

    let word_name = |k: usize| match k {
        0 => "the root".to_string(),
        k => format!("{k} {}", s.words.get(k - 1).map_or("?", String::as_str)),
    };
    for (t, tree) in trees.iter().enumerate() {
        let above = t == 0;
        // Above, heights grow upwards; below, downwards.
        let dir = if above { -1.0 } else { 1.0 };
        let base = if above { gold_base } else { pred_base };
        for (d, (&head, rel)) in tree.heads.iter().zip(&tree.relations).enumerate() {
            let Some(xd) = at(d + 1) else { continue };
            let (kind, color) = match (above, wrong.get(d).copied().unwrap_or(true)) {
                (true, _) => ("gold", GOLD_ARC),
                (false, false) => ("right", RIGHT_ARC),
                (false, true) => ("wrong", WRONG_ARC),
            };
            let mut tip = format!(
                "{}: {} is the {rel} of {}",
                if above { "gold" } else { "predicted" },
                word_name(d + 1),
                word_name(head)
            );
            if kind == "wrong" {
                let _ = write!(
                    tip,
                    "; gold: the {} of {}",
                    s.gold.relations.get(d).map_or("?", String::as_str),
                    word_name(s.gold.heads.get(d).copied().unwrap_or(0))
                );
            }
            let _ = write!(out, "<g data-arc=\"{kind}\"><title>{}</title>", esc(&tip));
            let dash = if kind == "wrong" {
                " stroke-dasharray=\"4 2\" stroke-width=\"2\""
            } else {
                " stroke-width=\"1.5\""
            };
            let (label_x, label_y) = match at(head) {
                // The root, or a head outside the sentence (which the
                // metrics would have refused): a straight arrow from afar.
                None => {
                    let y = base + dir * step * levels as f64;
                    let _ = write!(
                        out,
                        "<path d=\"M{x} {}V{}\" fill=\"none\" stroke=\"{color}\"{dash}/>",
                        n(y),
                        n(base),
                        x = n(xd)
                    );
                    (xd, y + dir * 4.0)
                }
                Some(xh) => {
                    let lift = height((d + 1).abs_diff(head));
                    // The arc leaves its head a little to the dependent's
                    // side, so that it does not start where the head's own
                    // incoming arrow ends.
                    let xh = xh + if xd > xh { 4.0 } else { -4.0 };
                    let y = base + dir * lift;
                    let _ = write!(
                        out,
                        "<path d=\"M{} {b}C{} {y} {} {y} {} {b}\" fill=\"none\" \
                         stroke=\"{color}\"{dash}/>",
                        n(xh),
                        n(xh),
                        n(xd),
                        n(xd),
                        b = n(base),
                        y = n(y)
                    );
                    // The apex of that curve is three quarters of the way up.
                    ((xh + xd) / 2.0, base + dir * lift * 0.75)
                }
            };
            let tip_y = base - dir * 0.5;
            let back = base + dir * 6.0;
            let _ = write!(
                out,
                "<path d=\"M{} {}L{} {}L{} {}Z\" fill=\"{color}\"/>",
                n(xd - 3.5),
                n(back),
                n(xd + 3.5),
                n(back),
                n(xd),
                n(tip_y)
            );
            // A white box under the label keeps it readable across the
            // arcs it crosses (a box, not a text halo: `paint-order` is not
            // drawn by every SVG renderer).
            let label_w = 6.0 * rel.chars().count() as f64 + 6.0;
            let _ = write!(
                out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"12\" fill=\"#fff\"/>",
                n(label_x - label_w / 2.0),
                n(label_y - 6.0),
                n(label_w)
            );
            text(
                &mut out,
                label_x,
                label_y + 3.5,
                "middle",
                &format!(" font-size=\"10\" fill=\"{color}\""),
                rel,
            );
            out.push_str("</g>");
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ParsedTree;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<b a="x">&'</b>"#),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;&lt;/b&gt;"
        );
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(
            ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(ticks(0.0, 400.0, 4), vec![0.0, 100.0, 200.0, 300.0, 400.0]);
        assert_eq!(ticks(3.0, 3.0, 4), vec![3.0]);
        assert_eq!(tick_label(0.6000000000000001), "0.6");
        assert_eq!(tick_label(-0.0), "0");
    }

    #[test]
    fn charts_are_single_svg_elements_with_escaped_text() {
        let pts = [(0.0, 1.0), (1.0, f64::NAN), (2.0, 0.5)];
        let svg = line_chart(
            "loss <a>",
            "step",
            &[Panel {
                y_label: "loss".into(),
                lines: vec![Line {
                    label: "x&y".into(),
                    color: "#123456",
                    points: &pts,
                    width: 1.0,
                    opacity: 1.0,
                    dots: true,
                }],
                y_range: None,
            }],
        );
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.contains("loss &lt;a&gt;") && svg.contains("x&amp;y"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");

        let bars = bar_chart(
            "scores",
            "scores",
            "macro_f1",
            &[(
                "t\"1".into(),
                vec![Bar {
                    series: "multi-task",
                    color: "#1f5fa8",
                    value: 0.8,
                    ci: Some([0.7, 0.9]),
                }],
            )],
            (0.0, 1.0),
        );
        assert!(bars.contains("data-chart=\"scores\"") && bars.contains("t&quot;1"));
        assert!(bars.contains("0.800"));

        let labels = vec!["a<".to_string(), "b".to_string()];
        let hm = heatmap("cm", &labels, &[vec![3, 1], vec![0, 2]], "");
        assert_eq!(hm.matches("<rect").count(), 4);
        assert!(hm.contains("a&lt;") && hm.contains("75.0% of the row"));
    }

    fn sentence() -> ParsedSentence {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ParsedSentence {
            id: "s<1>".into(),
            words: strings(&["<b>", "Tom&Jerry", "\"q\"", "a>b", "ran", "today"]),
            gold: ParsedTree {
                heads: vec![2, 5, 5, 5, 0, 5],
                relations: strings(&["det", "nsubj", "punct", "obj", "root", "obl:tmod"]),
            },
            // Word 3 on the wrong head, word 4 with the wrong relation,
            // word 6 with only the subtype missing (right, as LAS counts).
            predicted: ParsedTree {
                heads: vec![2, 5, 4, 5, 0, 5],
                relations: strings(&["det", "nsubj", "punct", "iobj", "root", "obl"]),
            },
        }
    }

    #[test]
    fn a_parse_shows_each_word_once_escaped_with_wrong_arcs_marked() {
        let s = sentence();
        assert_eq!(s.wrong(), [false, false, true, true, false, false]);
        let svg = parse_tree("deps: dev sentence s<1>", &s);
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.contains("data-chart=\"parse\"") && svg.contains("sentence s&lt;1&gt;"));
        for (raw, escaped) in [
            ("<b>", "&lt;b&gt;"),
            ("Tom&Jerry", "Tom&amp;Jerry"),
            ("\"q\"", "&quot;q&quot;"),
            ("a>b", "a&gt;b"),
            ("ran", "ran"),
            ("today", "today"),
        ] {
            // Drawn once, in the row of words both trees share.
            assert_eq!(
                svg.matches(&format!(">{escaped}</text>")).count(),
                1,
                "{raw}: {svg}"
            );
        }
        assert!(!svg.contains("<b>") && !svg.contains("Tom&J") && !svg.contains("\"q\""));
        assert_eq!(svg.matches("data-arc=\"gold\"").count(), 6);
        assert_eq!(svg.matches("data-arc=\"right\"").count(), 4);
        assert_eq!(svg.matches("data-arc=\"wrong\"").count(), 2);
        // Each wrong arc is red and dashed, and says what gold has.
        for g in svg.split("<g data-arc=\"wrong\">").skip(1) {
            let g = &g[..g.find("</g>").unwrap()];
            assert!(
                g.contains(WRONG_ARC) && g.contains("stroke-dasharray"),
                "{g}"
            );
            assert!(g.contains("; gold: the "), "{g}");
        }
        for g in svg.split("<g data-arc=\"right\">").skip(1) {
            let g = &g[..g.find("</g>").unwrap()];
            assert!(
                !g.contains(WRONG_ARC) && !g.contains("stroke-dasharray"),
                "{g}"
            );
        }
        assert!(
            svg.contains("is the iobj of 5 ran; gold: the obj of 5 ran"),
            "{svg}"
        );
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn shades_run_from_white_to_blue() {
        assert_eq!(blue(0.0), "#ffffff");
        assert_eq!(blue(1.0), "#104896");
        assert_eq!(blue(f64::NAN), "#ffffff");
    }
}
