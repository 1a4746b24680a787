//! A task's labels as plain values, so that vocabularies, the unknown-label
//! policy, reports and mutual information work on one representation
//! whatever the task's column type (see the clean schema in
//! `mtl_core::artifact`).

use std::path::Path;

use mtl_core::TaskKind;
use mtl_core::artifact::PolarsAt;
use polars::prelude::*;

use crate::error::Result;

/// One row's label for one task; `None` (outside) = the row does not carry
/// the task.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Classification.
    One(String),
    /// Tagging and spans (one per word), multilabel (any number).
    Many(Vec<String>),
    /// Regression.
    Num(f64),
}

impl Cell {
    /// The label strings of a cell (none for a number).
    pub fn labels(&self) -> &[String] {
        match self {
            Cell::One(l) => std::slice::from_ref(l),
            Cell::Many(ls) => ls,
            Cell::Num(_) => &[],
        }
    }
}

/// The column type of a task's labels in clean and split tables.
pub fn dtype(kind: TaskKind) -> DataType {
    match kind {
        TaskKind::Classification => DataType::String,
        TaskKind::Tagging | TaskKind::Spans | TaskKind::Dependency | TaskKind::Multilabel => {
            DataType::List(Box::new(DataType::String))
        }
        TaskKind::Regression => DataType::Float64,
    }
}

/// Whether a clean column of type `found` can hold a task's labels: the
/// documented type, an all-null column, or (regression) any number.
pub fn accepts(kind: TaskKind, found: &DataType) -> bool {
    *found == DataType::Null
        || *found == dtype(kind)
        || (kind == TaskKind::Regression && found.is_primitive_numeric())
}

pub fn read(c: &Column, kind: TaskKind, path: &Path) -> Result<Vec<Option<Cell>>> {
    let c = c.cast(&dtype(kind)).at(path)?;
    let mut out = Vec::with_capacity(c.len());
    match kind {
        TaskKind::Classification => {
            for l in c.str().at(path)?.iter() {
                out.push(l.map(|l| Cell::One(l.to_string())));
            }
        }
        TaskKind::Regression => {
            for v in c.f64().at(path)?.iter() {
                out.push(v.map(Cell::Num));
            }
        }
        TaskKind::Tagging | TaskKind::Spans | TaskKind::Dependency | TaskKind::Multilabel => {
            for row in c.list().at(path)?.series_iter() {
                out.push(match row {
                    None => None,
                    // A null tag cannot be scored: it becomes the empty
                    // label, which no vocabulary holds, so the
                    // unknown-label policy decides.
                    Some(s) => Some(Cell::Many(
                        s.str()
                            .at(path)?
                            .iter()
                            .map(|l| l.unwrap_or("").to_string())
                            .collect(),
                    )),
                });
            }
        }
    }
    Ok(out)
}

/// The table column for `cells`, of the task's documented type.
pub fn column(name: &str, kind: TaskKind, cells: &[Option<Cell>]) -> PolarsResult<Column> {
    Ok(match kind {
        TaskKind::Classification => StringChunked::from_iter_options(
            name.into(),
            cells.iter().map(|c| match c {
                Some(Cell::One(l)) => Some(l.as_str()),
                _ => None,
            }),
        )
        .into_column(),
        TaskKind::Regression => Float64Chunked::from_iter_options(
            name.into(),
            cells.iter().map(|c| match c {
                Some(Cell::Num(v)) => Some(*v),
                _ => None,
            }),
        )
        .into_column(),
        TaskKind::Tagging | TaskKind::Spans | TaskKind::Dependency | TaskKind::Multilabel => {
            let rows: Vec<Option<Series>> = cells
                .iter()
                .map(|c| match c {
                    Some(Cell::Many(ls)) => Some(Series::new("".into(), ls.as_slice())),
                    _ => None,
                })
                .collect();
            let mut ca: ListChunked = rows.into_iter().collect();
            ca.rename(name.into());
            // An empty list or an all-null column has no inner type yet.
            ca.cast(&dtype(kind))?.into_column()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip_through_columns() {
        let p = Path::new("t.parquet");
        for (kind, cells) in [
            (
                TaskKind::Classification,
                vec![Some(Cell::One("a".into())), None],
            ),
            (TaskKind::Regression, vec![None, Some(Cell::Num(1.5))]),
            (
                TaskKind::Multilabel,
                vec![
                    Some(Cell::Many(vec!["x".into(), "y".into()])),
                    Some(Cell::Many(vec![])),
                    None,
                ],
            ),
        ] {
            let c = column("label_t", kind, &cells).unwrap();
            assert_eq!(c.dtype(), &dtype(kind));
            assert_eq!(read(&c, kind, p).unwrap(), cells);
        }
    }
}
