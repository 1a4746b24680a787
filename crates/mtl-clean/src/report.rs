//! `clean/report.json`: what happened to every dataset's rows.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Per dataset, keyed by dataset name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Report {
    pub datasets: BTreeMap<String, DatasetReport>,
}

impl Report {
    pub const FILE: &'static str = "report.json";

    /// Reads `report.json` from a clean output folder.
    pub fn read(dir: &Path) -> mtl_core::Result<Report> {
        mtl_core::fsio::read_json(&dir.join(Self::FILE))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DatasetReport {
    /// Records read: non-blank lines, CSV records, Parquet rows or
    /// sentences, by format. Always `kept + sum(dropped)`.
    pub read: u64,
    pub kept: u64,
    /// Quarantined rows by reason code (see [`crate::reason`]).
    pub dropped: BTreeMap<String, u64>,
    /// Kept rows by source split (`all` for a single file).
    pub kept_per_split: BTreeMap<String, u64>,
    /// Kept rows carrying a label, per task.
    pub labelled: BTreeMap<String, u64>,
    /// Near-duplicates whose labels disagree, one entry per task that differs.
    pub conflicts: Vec<Conflict>,
}

impl DatasetReport {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }

    /// `read 60, kept 45, dropped 15 (duplicate 3, empty 2)`.
    pub fn summary(&self) -> String {
        let reasons: Vec<String> = self
            .dropped
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        let mut s = format!(
            "read {}, kept {}, dropped {}",
            self.read,
            self.kept,
            self.dropped_total()
        );
        if !reasons.is_empty() {
            s.push_str(&format!(" ({})", reasons.join(", ")));
        }
        s
    }
}

/// A near-duplicate dropped because one task's labels disagree with the
/// kept row's (both rows labelled, differently).
///
/// The stage streams: when the kept row was read in an earlier chunk than
/// the dropped one (datasets larger than a chunk), only hashes of its labels
/// are still in memory, so `kept_label` is null and the quarantine detail
/// names the kept row's file and line instead. Ids and tasks are always
/// given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub kept_id: String,
    pub dropped_id: String,
    pub task: String,
    /// A string, an array of tags or labels, or a number; null when the
    /// kept row was in an earlier chunk (see above).
    pub kept_label: serde_json::Value,
    pub dropped_label: serde_json::Value,
}
