//! Reading the split stage's tables: ids, words, the features some head
//! uses and each task's labels.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtl_core::artifact::{self, col};
use mtl_core::{CoreError, LabelSet, TaskKind};
use polars::prelude::*;

use crate::error::{Error, Result};

/// A task's label column, one entry per row, `None` where the row does not
/// carry the task.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelColumn {
    Sentence(Vec<Option<String>>),
    Token(Vec<Option<Vec<String>>>),
    /// Any number of labels per row; an empty list is a labelled row.
    Multilabel(Vec<Option<Vec<String>>>),
    Regression(Vec<Option<f64>>),
}

/// The columns of one split table that tokenize uses.
#[derive(Debug, Clone)]
pub struct SplitTable {
    pub path: PathBuf,
    pub ids: Vec<String>,
    pub words: Vec<Vec<String>>,
    /// Raw values of the requested features (`feat_<name>`), in request
    /// order.
    pub features: Vec<(String, Vec<f32>)>,
    /// Keyed by task name, for every task in labels.json.
    pub labels: BTreeMap<String, LabelColumn>,
    /// The CoNLL-U HEAD column (per word, the head's 1-based word number,
    /// 0 for the root, `None` for `_`), read only when a dependency task
    /// needs it; `None` for rows that are not CoNLL-U sentences.
    pub heads: Option<Vec<Option<Vec<Option<u32>>>>>,
}

impl SplitTable {
    pub fn rows(&self) -> usize {
        self.ids.len()
    }
}

/// Reads one split table; `features` are the feature names whose
/// `feat_<name>` columns must be carried (f32, no nulls, finite).
pub fn read_split(path: &Path, labels: &LabelSet, features: &[&str]) -> Result<SplitTable> {
    let df = artifact::read_parquet(path)?;
    let polars_err = |source| Error::Polars {
        path: path.to_path_buf(),
        source,
    };
    let string_list = DataType::List(Box::new(DataType::String));

    let id_col = artifact::column(&df, path, col::ID, &DataType::String)?;
    let mut ids = Vec::with_capacity(df.height());
    for (row, id) in id_col.str().map_err(polars_err)?.iter().enumerate() {
        let id = id.ok_or_else(|| CoreError::Schema {
            path: path.to_path_buf(),
            column: col::ID.into(),
            message: format!("null id in row {row}"),
        })?;
        ids.push(id.to_string());
    }

    let words_col = artifact::column(&df, path, col::WORDS, &string_list)?;
    let words = read_string_lists(words_col, path, &ids, col::WORDS)?
        .into_iter()
        .enumerate()
        .map(|(row, w)| {
            w.ok_or_else(|| Error::Row {
                path: path.to_path_buf(),
                row,
                id: ids[row].clone(),
                message: format!("`{}` is null", col::WORDS),
            })
        })
        .collect::<Result<Vec<_>>>()?;

    let mut label_cols = BTreeMap::new();
    for (task, tl) in &labels.tasks {
        let name = col::label(task);
        let c = df.column(&name).map_err(|_| CoreError::Schema {
            path: path.to_path_buf(),
            column: name.clone(),
            message: format!("missing (labels.json has task `{task}`)"),
        })?;
        // A column that is null in every row may come back untyped.
        let all_null = c.dtype() == &DataType::Null;
        let column = match tl.kind {
            TaskKind::Tagging | TaskKind::Spans | TaskKind::Dependency | TaskKind::Multilabel => {
                let lists = if all_null {
                    vec![None; df.height()]
                } else {
                    let c = artifact::column(&df, path, &name, &string_list)?;
                    read_string_lists(c, path, &ids, &name)?
                };
                if tl.kind == TaskKind::Multilabel {
                    LabelColumn::Multilabel(lists)
                } else {
                    LabelColumn::Token(lists)
                }
            }
            TaskKind::Classification => {
                if all_null {
                    LabelColumn::Sentence(vec![None; df.height()])
                } else {
                    let c = artifact::column(&df, path, &name, &DataType::String)?;
                    let values = c.str().map_err(polars_err)?;
                    LabelColumn::Sentence(values.iter().map(|v| v.map(str::to_string)).collect())
                }
            }
            TaskKind::Regression => {
                if all_null {
                    LabelColumn::Regression(vec![None; df.height()])
                } else {
                    LabelColumn::Regression(read_floats(&df, path, &ids, &name, DataType::Float64)?)
                }
            }
        };
        label_cols.insert(task.clone(), column);
    }

    let mut feature_cols = Vec::with_capacity(features.len());
    for f in features {
        let name = col::feature(f);
        let values = read_floats(&df, path, &ids, &name, DataType::Float32)?;
        let values = values
            .into_iter()
            .enumerate()
            .map(|(row, v)| {
                v.map(|v| v as f32).ok_or_else(|| Error::Row {
                    path: path.to_path_buf(),
                    row,
                    id: ids[row].clone(),
                    message: format!("`{name}` is null"),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        feature_cols.push((f.to_string(), values));
    }

    let heads = if labels
        .tasks
        .values()
        .any(|t| t.kind == TaskKind::Dependency)
    {
        Some(read_heads(&df, path)?)
    } else {
        None
    };

    Ok(SplitTable {
        path: path.to_path_buf(),
        ids,
        words,
        features: feature_cols,
        labels: label_cols,
        heads,
    })
}

/// The `conllu_head` column: list[u32] with null items for `_`.
fn read_heads(df: &DataFrame, path: &Path) -> Result<Vec<Option<Vec<Option<u32>>>>> {
    let polars_err = |source| Error::Polars {
        path: path.to_path_buf(),
        source,
    };
    let c = df.column(col::CONLLU_HEAD).map_err(|_| CoreError::Schema {
        path: path.to_path_buf(),
        column: col::CONLLU_HEAD.into(),
        message: "missing (a dependency task reads its heads from it)".into(),
    })?;
    let c = c
        .cast(&DataType::List(Box::new(DataType::UInt32)))
        .map_err(polars_err)?;
    let mut out = Vec::with_capacity(c.len());
    for cell in c.list().map_err(polars_err)?.series_iter() {
        out.push(match cell {
            Some(s) => Some(s.u32().map_err(polars_err)?.iter().collect()),
            None => None,
        });
    }
    Ok(out)
}

/// A float column (`expected` is the contract's type; the other float
/// width is accepted too). Values must be finite; nulls stay `None`.
fn read_floats(
    df: &DataFrame,
    path: &Path,
    ids: &[String],
    name: &str,
    expected: DataType,
) -> Result<Vec<Option<f64>>> {
    let c = df.column(name).map_err(|_| CoreError::Schema {
        path: path.to_path_buf(),
        column: name.to_string(),
        message: "missing".into(),
    })?;
    if !matches!(c.dtype(), DataType::Float32 | DataType::Float64) {
        return Err(CoreError::Schema {
            path: path.to_path_buf(),
            column: name.to_string(),
            message: format!("expected {expected}, found {}", c.dtype()),
        }
        .into());
    }
    let c = c.cast(&DataType::Float64).map_err(|source| Error::Polars {
        path: path.to_path_buf(),
        source,
    })?;
    let values = c.f64().map_err(|source| Error::Polars {
        path: path.to_path_buf(),
        source,
    })?;
    values
        .iter()
        .enumerate()
        .map(|(row, v)| match v {
            Some(x) if !x.is_finite() => Err(Error::Row {
                path: path.to_path_buf(),
                row,
                id: ids[row].clone(),
                message: format!("`{name}` is {x}"),
            }),
            v => Ok(v),
        })
        .collect()
}

fn read_string_lists(
    c: &Column,
    path: &Path,
    ids: &[String],
    name: &str,
) -> Result<Vec<Option<Vec<String>>>> {
    let list = c.list().map_err(|source| Error::Polars {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::with_capacity(list.len());
    for (row, cell) in list.series_iter().enumerate() {
        let Some(series) = cell else {
            out.push(None);
            continue;
        };
        let strings = series.str().map_err(|source| Error::Polars {
            path: path.to_path_buf(),
            source,
        })?;
        let mut items = Vec::with_capacity(strings.len());
        for s in strings.iter() {
            items.push(
                s.ok_or_else(|| Error::Row {
                    path: path.to_path_buf(),
                    row,
                    id: ids[row].clone(),
                    message: format!("`{name}` holds a null item"),
                })?
                .to_string(),
            );
        }
        out.push(Some(items));
    }
    Ok(out)
}
