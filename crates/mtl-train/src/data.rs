//! Reading tokenized examples into memory, with each task's targets.

use std::collections::BTreeMap;
use std::path::Path;

use mtl_core::artifact::{NO_LABEL, col, read_parquet};
use mtl_core::{LabelSet, TaskKind};
use polars::prelude::*;

use crate::error::{Error, Result};

/// A row's gold for one task.
#[derive(Debug, Clone)]
pub enum RowTarget {
    Sentence(i32),
    /// Aligned to sub-tokens; -100 where not scored.
    Token(Vec<i32>),
}

#[derive(Debug, Clone)]
pub struct Example {
    pub input_ids: Vec<u32>,
    /// Only the tasks this row carries.
    pub targets: BTreeMap<String, RowTarget>,
}

pub fn load(path: &Path, labels: &LabelSet) -> Result<Vec<Example>> {
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
        });
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
                            .map(|v| v.unwrap_or(-100))
                            .collect();
                        ex.targets.insert(task.clone(), RowTarget::Token(y));
                    }
                }
            }
            TaskKind::Multilabel | TaskKind::Regression => {
                return Err(Error::Data {
                    path: path.to_path_buf(),
                    message: format!(
                        "task `{task}` is {}, which train does not support yet",
                        tl.kind.name()
                    ),
                });
            }
        }
    }
    Ok(out)
}
