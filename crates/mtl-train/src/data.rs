//! Reading tokenized examples into memory, with each task's targets and the
//! raw side-input features.

use std::collections::BTreeMap;
use std::path::Path;

use mtl_core::artifact::{IGNORE_INDEX, NO_LABEL, col, read_parquet};
use mtl_core::{LabelSet, TaskKind};
use polars::prelude::*;

use crate::error::{Error, Result};

/// A row's gold for one task.
#[derive(Debug, Clone)]
pub enum RowTarget {
    Sentence(i32),
    /// Aligned to sub-tokens; -100 where not scored.
    Token(Vec<i32>),
    /// The label ids the row carries (possibly none).
    Multilabel(Vec<u32>),
    /// In the target's own units.
    Regression(f32),
}

#[derive(Debug, Clone)]
pub struct Example {
    pub input_ids: Vec<u32>,
    /// Only the tasks this row carries.
    pub targets: BTreeMap<String, RowTarget>,
    /// Raw values of the features some head takes (`feat_<name>`).
    pub features: BTreeMap<String, f32>,
}

/// Reads a tokenize table: ids, every task of `labels`, and the
/// `feat_<name>` column of each of `features`.
pub fn load(path: &Path, labels: &LabelSet, features: &[&str]) -> Result<Vec<Example>> {
    let df = read_parquet(path)?;
    let err = |source: PolarsError| Error::Polars {
        path: path.to_path_buf(),
        source,
    };
    let ids = df
        .column(col::INPUT_IDS)
        .map_err(err)?
        .list()
        .map_err(err)?;
    let mut out: Vec<Example> = Vec::with_capacity(df.height());
    for row in ids.series_iter() {
        let row = row.ok_or_else(|| Error::Data {
            path: path.to_path_buf(),
            message: "null input_ids".into(),
        })?;
        let ids: Vec<u32> = row
            .u32()
            .map_err(err)?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        out.push(Example {
            input_ids: ids,
            targets: BTreeMap::new(),
            features: BTreeMap::new(),
        });
    }
    let data_err = |row: usize, message: String| Error::Data {
        path: path.to_path_buf(),
        message: format!("row {row}: {message}"),
    };
    for f in features {
        let name = col::feature(f);
        let c = df.column(&name).map_err(err)?;
        let values = c.f32().map_err(err)?;
        for (row, (ex, v)) in out.iter_mut().zip(values.iter()).enumerate() {
            let v = v.ok_or_else(|| data_err(row, format!("`{name}` is null")))?;
            ex.features.insert(f.to_string(), v);
        }
    }
    for (task, tl) in &labels.tasks {
        let name = col::target(task);
        let c = df.column(&name).map_err(err)?;
        match tl.kind {
            TaskKind::Classification => {
                for (ex, y) in out.iter_mut().zip(c.i32().map_err(err)?.iter()) {
                    if let Some(y) = y.filter(|&y| y != NO_LABEL) {
                        ex.targets.insert(task.clone(), RowTarget::Sentence(y));
                    }
                }
            }
            TaskKind::Tagging | TaskKind::Spans => {
                for (ex, y) in out.iter_mut().zip(c.list().map_err(err)?.series_iter()) {
                    if let Some(y) = y {
                        let y: Vec<i32> = y
                            .i32()
                            .map_err(err)?
                            .iter()
                            .map(|v| v.unwrap_or(IGNORE_INDEX))
                            .collect();
                        ex.targets.insert(task.clone(), RowTarget::Token(y));
                    }
                }
            }
            TaskKind::Multilabel => {
                let n = tl.len();
                for (row, (ex, y)) in out
                    .iter_mut()
                    .zip(c.list().map_err(err)?.series_iter())
                    .enumerate()
                {
                    let Some(y) = y else { continue };
                    let mut ids = Vec::with_capacity(y.len());
                    for v in y.i32().map_err(err)?.iter() {
                        match v {
                            Some(v) if v >= 0 && (v as usize) < n => ids.push(v as u32),
                            v => {
                                return Err(data_err(
                                    row,
                                    format!(
                                        "`{name}` holds {v:?}, not a label id of task `{task}` ({n} labels)"
                                    ),
                                ));
                            }
                        }
                    }
                    ex.targets.insert(task.clone(), RowTarget::Multilabel(ids));
                }
            }
            TaskKind::Regression => {
                for (row, (ex, y)) in out.iter_mut().zip(c.f32().map_err(err)?.iter()).enumerate() {
                    let Some(y) = y else { continue };
                    if !y.is_finite() {
                        return Err(data_err(row, format!("`{name}` is {y}")));
                    }
                    ex.targets.insert(task.clone(), RowTarget::Regression(y));
                }
            }
        }
    }
    Ok(out)
}
