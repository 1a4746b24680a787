//! Duplicates and repeated ids over a whole dataset, one chunk at a time.
//!
//! Rows are decided in file order, exactly as one pass over the whole
//! dataset would: a row whose near-duplicate key was seen before is
//! dropped as a duplicate, near-duplicate or conflicting duplicate of the
//! first row with that key (the group's leader); a row that survives and
//! whose id an earlier kept row already has is dropped as `duplicate_id`.
//! A leader stays the leader even when its own id was taken, as before.
//! The chunk size therefore never changes which rows are kept or why, only
//! the wording of messages about a row of an earlier chunk, whose text and
//! labels are no longer in memory (see [`crate::dedup_index`]).

use mtl_core::artifact::col;
use mtl_core::config::TaskConfig;
use polars::prelude::*;

use crate::dedup_index::{DedupIndex, Entry, Keyed, Match, NO_LABEL, hash32, hash64};
use crate::read::{Label, Row, SourceFile};
use crate::reason;
use crate::report::Conflict;
use crate::rules::{Dropped, KEY};
use crate::table::ROW;

/// What [`Deduper::chunk`] decided for a chunk's valid rows.
pub(crate) struct Decided {
    /// One per valid row: kept or not.
    pub keep: BooleanChunked,
    pub dropped: Vec<Dropped>,
    pub conflicts: Vec<Conflict>,
}

pub(crate) struct Deduper<'a> {
    tasks: &'a [&'a TaskConfig],
    files: &'a [SourceFile],
    dedup: bool,
    index: DedupIndex,
}

impl<'a> Deduper<'a> {
    pub fn new(tasks: &'a [&'a TaskConfig], files: &'a [SourceFile], dedup: bool) -> Self {
        Deduper {
            tasks,
            files,
            dedup,
            index: DedupIndex::new(tasks.len()),
        }
    }

    /// Decides the `valid` rows of a chunk (from [`crate::rules::check`],
    /// with `_row` indexing `rows`) against every earlier row of the
    /// dataset, and remembers the rows it keeps.
    pub fn chunk(&mut self, valid: &DataFrame, rows: &[Row]) -> PolarsResult<Decided> {
        let row_index = valid.column(ROW)?.idx()?;
        let texts = valid.column(col::TEXT)?.str()?;
        let keys = if self.dedup {
            Some(valid.column(KEY)?.str()?)
        } else {
            None
        };
        let chunk_start = self.index.len();
        // Valid-row position of each entry made in this chunk.
        let mut leaders: Vec<usize> = Vec::new();
        let mut keep = Vec::with_capacity(valid.height());
        let mut dropped = Vec::new();
        let mut conflicts = Vec::new();
        let mut labels = vec![NO_LABEL; self.tasks.len()];
        let mut buf = Vec::new();
        // Without deduplication there are no keys: every row gets `None`.
        let mut key_iter = keys.map(|k| k.iter());
        let columns = row_index.iter().zip(texts.iter()).enumerate();
        for (p, (i, text)) in columns {
            let i = i.ok_or_else(|| polars_err!(ComputeError: "null row index"))? as usize;
            let row = rows
                .get(i)
                .ok_or_else(|| polars_err!(ComputeError: "row index {i} out of range"))?;
            let key = key_iter.as_mut().and_then(Iterator::next);
            let mut entry = None;
            if self.dedup {
                let (Some(Some(key)), Some(text)) = (key, text) else {
                    return Err(polars_err!(ComputeError: "null text or key at row {i}"));
                };
                label_hashes(row, &mut labels, &mut buf);
                let keyed = Keyed {
                    key: hash64(key.as_bytes()),
                    text: hash32(text.as_bytes()),
                    labels: &labels,
                };
                if let Some(e) = self.index.find_key(keyed.key) {
                    let m = self.index.compare(e, &keyed);
                    let local = (e as usize).checked_sub(chunk_start).map(|n| leaders[n]);
                    let (reason, detail) = match local {
                        Some(k) => {
                            let k_row = row_index.get(k).unwrap_or_default() as usize;
                            let kept = rows.get(k_row).ok_or_else(
                                || polars_err!(ComputeError: "row index {k_row} out of range"),
                            )?;
                            let kept_text = texts.get(k).unwrap_or_default();
                            self.local(&m, kept, kept_text, row, &mut conflicts)
                        }
                        None => self.earlier(&m, e, row, &mut conflicts),
                    };
                    dropped.push(Dropped {
                        row: i,
                        reason,
                        detail,
                    });
                    keep.push(false);
                    continue;
                }
                let e = self.index.push(&row.id, row.file, row.line, Some(&keyed));
                self.index.insert_key(e);
                leaders.push(p);
                entry = Some(e);
            }
            // Ids key predictions and splits; a second row with a known id
            // would make both ambiguous.
            let id_hash = hash64(row.id.as_bytes());
            if let Some(first) = self.index.find_id(&row.id, id_hash) {
                dropped.push(Dropped {
                    row: i,
                    reason: reason::DUPLICATE_ID,
                    detail: format!("id already used at {}", self.place(first)),
                });
                keep.push(false);
                continue;
            }
            let e = match entry {
                Some(e) => e,
                None => self.index.push(&row.id, row.file, row.line, None),
            };
            self.index.insert_id(e, id_hash);
            keep.push(true);
        }
        Ok(Decided {
            keep: BooleanChunked::from_slice("keep".into(), &keep),
            dropped,
            conflicts,
        })
    }

    /// `file:line` of an entry's row.
    fn place(&self, e: Entry) -> String {
        let (file, line) = self.index.at(e);
        let given = self
            .files
            .get(file as usize)
            .map(|f| f.given.as_str())
            .unwrap_or_default();
        format!("{given}:{line}")
    }

    /// Reason and detail against a leader of this chunk, whose text and
    /// labels are at hand.
    fn local(
        &self,
        m: &Match,
        kept: &Row,
        kept_text: &str,
        row: &Row,
        conflicts: &mut Vec<Conflict>,
    ) -> (&'static str, String) {
        let note = self.note(m);
        if !m.compatible {
            let detail = conflict_detail(self.tasks, kept, row, conflicts);
            return (reason::CONFLICTING_DUPLICATE, detail);
        }
        if m.same_text {
            (reason::DUPLICATE, format!("duplicate of {}{note}", kept.id))
        } else {
            (
                reason::NEAR_DUPLICATE,
                format!("near-duplicate of {}: `{kept_text}`{note}", kept.id),
            )
        }
    }

    /// Reason and detail against a leader of an earlier chunk: its id and
    /// place stand in for its text, and its labels are known by hash only.
    fn earlier(
        &self,
        m: &Match,
        e: Entry,
        row: &Row,
        conflicts: &mut Vec<Conflict>,
    ) -> (&'static str, String) {
        let kept_id = self.index.id(e);
        let place = self.place(e);
        if !m.compatible {
            let mut parts = Vec::new();
            for &t in &m.differing {
                let (Some(task), Some(label)) = (self.tasks.get(t), row.labels.get(t)) else {
                    continue;
                };
                parts.push(format!(
                    "task `{}` disagrees: this row has {}",
                    task.name,
                    label.display()
                ));
                conflicts.push(Conflict {
                    kept_id: kept_id.to_string(),
                    dropped_id: row.id.clone(),
                    task: task.name.clone(),
                    kept_label: serde_json::Value::Null,
                    dropped_label: label.to_json(),
                });
            }
            let detail = format!(
                "near-duplicate of {kept_id} ({place}) with other labels: {}",
                parts.join("; ")
            );
            return (reason::CONFLICTING_DUPLICATE, detail);
        }
        let note = self.note(m);
        if m.same_text {
            (
                reason::DUPLICATE,
                format!("duplicate of {kept_id} ({place}){note}"),
            )
        } else {
            (
                reason::NEAR_DUPLICATE,
                format!("near-duplicate of {kept_id} ({place}){note}"),
            )
        }
    }

    /// ` (labels agree; only one of the two rows has `a` `b`)` when the
    /// labels agree without being identical.
    fn note(&self, m: &Match) -> String {
        if m.identical || m.one_sided.is_empty() {
            return String::new();
        }
        let names: String = m
            .one_sided
            .iter()
            .filter_map(|t| self.tasks.get(*t))
            .map(|t| format!(" `{}`", t.name))
            .collect();
        format!(" (labels agree; only one of the two rows has{names})")
    }
}

/// One hash per task of the row's label into `out`, [`NO_LABEL`] where it
/// has none. Equal labels hash equal: lists hash as their items joined by
/// `\x01` and numbers by value, as the rules compared them. `buf` is
/// scratch space.
fn label_hashes(row: &Row, out: &mut [u32], buf: &mut Vec<u8>) {
    for (i, h) in out.iter_mut().enumerate() {
        *h = match row.labels.get(i) {
            Some(Label::Sentence(Some(s))) => hash32(s.as_bytes()),
            Some(Label::Tokens(Some(items)) | Label::Multi(Some(items))) => {
                buf.clear();
                for (j, item) in items.iter().enumerate() {
                    if j > 0 {
                        buf.push(1);
                    }
                    buf.extend_from_slice(item.as_bytes());
                }
                hash32(buf)
            }
            Some(Label::Number(Some(x))) => hash32(&x.to_bits().to_le_bytes()),
            _ => NO_LABEL,
        };
    }
}

/// `near-duplicate of rev-1 with other labels: task `topic` disagrees:
/// `price` vs `battery``, recording one [`Conflict`] per task where both
/// rows have a label and they differ.
fn conflict_detail(
    tasks: &[&TaskConfig],
    kept: &Row,
    dropped: &Row,
    out: &mut Vec<Conflict>,
) -> String {
    let mut parts = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let (Some(k), Some(d)) = (kept.labels.get(i), dropped.labels.get(i)) else {
            continue;
        };
        // Only labels on both rows can disagree; a missing one is "not annotated".
        if k == d || !k.is_present() || !d.is_present() {
            continue;
        }
        parts.push(format!(
            "task `{}` disagrees: {} vs {}",
            t.name,
            k.display(),
            d.display()
        ));
        out.push(Conflict {
            kept_id: kept.id.clone(),
            dropped_id: dropped.id.clone(),
            task: t.name.clone(),
            kept_label: k.to_json(),
            dropped_label: d.to_json(),
        });
    }
    format!(
        "near-duplicate of {} with other labels: {}",
        kept.id,
        parts.join("; ")
    )
}
