//! The numbers of one clean benchmark run: per tool, the row counts it
//! reported and what was measured; the side-by-side table; `results.json`.
//! Also what every benchmark's results share: reading a report, the table.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::measure::Measured;
use super::{MIB, PANDAS, cpus, os};

/// Reads the report at `path` with `parse`, naming the file in any error.
pub(crate) fn read_report<T>(path: &Path, parse: impl FnOnce(&str) -> Result<T>) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("reading {}", path.display()))
}

/// Left-aligned first column, the others right-aligned, a rule under the
/// header; a line each, every one ending in a newline.
pub(crate) fn table(header: &[impl AsRef<str>], rows: &[impl AsRef<[String]>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.as_ref().len()).collect();
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r.as_ref()) {
            *w = (*w).max(cell.len());
        }
    }
    let head = table_line(header.iter().map(AsRef::as_ref), &width);
    let mut out = head.clone();
    out.push_str(&"-".repeat(head.len() - 1));
    out.push('\n');
    for r in rows {
        out.push_str(&table_line(r.as_ref().iter().map(String::as_str), &width));
    }
    out
}

fn table_line<'a>(cells: impl Iterator<Item = &'a str>, width: &[usize]) -> String {
    let mut s = String::new();
    for (i, (c, &w)) in cells.zip(width).enumerate() {
        if i == 0 {
            s.push_str(&format!("{c:<w$}"));
        } else {
            s.push_str(&format!("  {c:>w$}"));
        }
    }
    s.push('\n');
    s
}

/// Rows read, kept and dropped by reason, summed over the datasets of a
/// clean `report.json` (mtl-clean's and the peer's have the same shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub read: u64,
    pub kept: u64,
    pub dropped: BTreeMap<String, u64>,
}

impl Counts {
    pub fn from_report(path: &Path) -> Result<Counts> {
        read_report(path, Self::from_report_str)
    }

    pub fn from_report_str(text: &str) -> Result<Counts> {
        #[derive(Deserialize)]
        struct Ds {
            read: u64,
            kept: u64,
            #[serde(default)]
            dropped: BTreeMap<String, u64>,
        }
        let report: BTreeMap<String, Ds> = serde_json::from_str(text)?;
        let mut c = Counts::default();
        for ds in report.into_values() {
            c.read += ds.read;
            c.kept += ds.kept;
            for (reason, n) in ds.dropped {
                *c.dropped.entry(reason).or_default() += n;
            }
        }
        Ok(c)
    }

    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// Where two tools' counts differ, one line each.
    pub fn differences(&self, other: &Counts, names: (&str, &str)) -> Vec<String> {
        let mut out = Vec::new();
        let mut line = |what: &str, a: u64, b: u64| {
            if a != b {
                out.push(format!("{what}: {} {a}, {} {b}", names.0, names.1));
            }
        };
        line("read", self.read, other.read);
        line("kept", self.kept, other.kept);
        let reasons: std::collections::BTreeSet<&String> =
            self.dropped.keys().chain(other.dropped.keys()).collect();
        for r in reasons {
            let get = |c: &Counts| c.dropped.get(r).copied().unwrap_or(0);
            line(&format!("dropped {r}"), get(self), get(other));
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    pub tool: String,
    pub counts: Counts,
    pub wall_s: f64,
    /// Rows read per second of wall time.
    pub rows_per_s: f64,
    /// Input MiB per second of wall time.
    pub mb_per_s: f64,
    pub peak_rss_mib: f64,
    /// The peer's wall time over this tool's; `None` without a peer run.
    pub speedup: Option<f64>,
}

impl ToolResult {
    pub fn new(tool: &str, counts: Counts, m: &Measured, input_bytes: u64) -> Self {
        let wall = m.wall.as_secs_f64().max(1e-9);
        ToolResult {
            tool: tool.into(),
            rows_per_s: counts.read as f64 / wall,
            mb_per_s: input_bytes as f64 / MIB / wall,
            counts,
            wall_s: wall,
            peak_rss_mib: m.peak_rss_mib(),
            speedup: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub input: String,
    pub input_bytes: u64,
    pub cpus: usize,
    pub os: String,
    pub tools: Vec<ToolResult>,
    /// Whether every tool read, kept and dropped (per reason) the same rows;
    /// `None` with one tool.
    pub counts_agree: Option<bool>,
    pub count_differences: Vec<String>,
}

impl Results {
    /// Fills in each tool's speed-up over the peer and compares counts.
    pub fn new(input: &Path, input_bytes: u64, mut tools: Vec<ToolResult>) -> Self {
        let peer = tools.iter().find(|t| t.tool == PANDAS).cloned();
        let mut differences = Vec::new();
        if let Some(peer) = &peer {
            for t in &mut tools {
                t.speedup = Some(peer.wall_s / t.wall_s);
                if t.tool != peer.tool {
                    differences.extend(
                        t.counts
                            .differences(&peer.counts, (t.tool.as_str(), peer.tool.as_str())),
                    );
                }
            }
        }
        Results {
            input: input.display().to_string(),
            input_bytes,
            cpus: cpus(),
            os: os(),
            counts_agree: peer.map(|_| differences.is_empty()),
            count_differences: differences,
            tools,
        }
    }

    /// The side-by-side table, then whether the counts agree.
    pub fn render(&self) -> String {
        let header = [
            "tool",
            "rows",
            "wall s",
            "rows/s",
            "MB/s",
            "peak RSS MiB",
            "speed-up",
        ];
        let rows: Vec<[String; 7]> = self
            .tools
            .iter()
            .map(|t| {
                [
                    t.tool.clone(),
                    t.counts.read.to_string(),
                    format!("{:.2}", t.wall_s),
                    format!("{:.0}", t.rows_per_s),
                    format!("{:.1}", t.mb_per_s),
                    format!("{:.0}", t.peak_rss_mib),
                    t.speedup
                        .map_or_else(|| "-".to_string(), |s| format!("{s:.1}x")),
                ]
            })
            .collect();
        let mut out = format!(
            "input: {} ({:.1} MiB), {} CPUs, {}\n\n",
            self.input,
            self.input_bytes as f64 / MIB,
            self.cpus,
            self.os
        );
        out.push_str(&table(&header, &rows));
        for t in &self.tools {
            out.push_str(&format!(
                "\n{}: read {}, kept {}, dropped {}",
                t.tool,
                t.counts.read,
                t.counts.kept,
                t.counts.dropped_total()
            ));
        }
        match self.counts_agree {
            Some(true) => out.push_str(
                "\n\ncounts agree: both tools read, kept and dropped (per reason) the same rows\n",
            ),
            Some(false) => {
                out.push_str("\n\ncounts DIFFER:\n");
                for d in &self.count_differences {
                    out.push_str(&format!("  {d}\n"));
                }
            }
            None => out.push('\n'),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"{"a": {"read": 10, "kept": 7, "dropped": {"duplicate": 2, "empty": 1},
        "kept_per_split": {"all": 7}, "labelled": {}, "conflicts": []},
        "b": {"read": 5, "kept": 5, "dropped": {}}}"#;

    #[test]
    fn counts_sum_over_datasets() {
        let c = Counts::from_report_str(REPORT).unwrap();
        assert_eq!((c.read, c.kept, c.dropped_total()), (15, 12, 3));
        assert_eq!(c.dropped["duplicate"], 2);
    }

    #[test]
    fn rates_speedup_and_count_check() {
        let counts = Counts::from_report_str(REPORT).unwrap();
        let mib = 30 << 20;
        let fast = ToolResult::new(
            "mtl-clean",
            counts.clone(),
            &Measured::succeeded(2_000, 100),
            mib,
        );
        assert_eq!(fast.rows_per_s, 7.5);
        assert_eq!(fast.mb_per_s, 15.0);
        assert_eq!(fast.peak_rss_mib, 100.0);
        let mut other = counts.clone();
        other.kept = 11;
        *other.dropped.entry("duplicate".into()).or_default() += 1;
        let slow = ToolResult::new(PANDAS, other, &Measured::succeeded(10_000, 900), mib);
        let r = Results::new(Path::new("in.jsonl"), mib, vec![fast, slow]);
        assert_eq!(r.tools[0].speedup, Some(5.0));
        assert_eq!(r.tools[1].speedup, Some(1.0));
        assert_eq!(r.counts_agree, Some(false));
        assert_eq!(
            r.count_differences,
            [
                "kept: mtl-clean 12, pandas 11",
                "dropped duplicate: mtl-clean 2, pandas 3"
            ]
        );
        let table = r.render();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[2].starts_with("tool"), "{table}");
        assert!(
            lines[4].starts_with("mtl-clean") && lines[4].ends_with("5.0x"),
            "{table}"
        );
        assert!(
            lines[5].starts_with("pandas") && lines[5].contains(" 900 "),
            "{table}"
        );
        assert!(table.contains("counts DIFFER"), "{table}");
    }

    #[test]
    fn without_a_peer_there_is_no_speedup() {
        let counts = Counts::from_report_str(REPORT).unwrap();
        let t = ToolResult::new("mtl-clean", counts, &Measured::succeeded(1_000, 1), 1 << 20);
        let r = Results::new(Path::new("x"), 1 << 20, vec![t]);
        assert_eq!(r.counts_agree, None);
        assert!(r.render().lines().nth(4).unwrap().ends_with('-'));
    }
}
