//! Parsed rows as a polars DataFrame: the input of the cleaning rules.

use mtl_core::TaskKind;
use mtl_core::artifact::col;
use mtl_core::config::{CleanOptions, TaskConfig};
use polars::prelude::*;

use crate::read::{Label, Row, SourceFile};

/// Index of the row in [`crate::read::Parsed::rows`]: how rule results find
/// their way back to the raw line, and the file order of the table.
pub(crate) const ROW: &str = "_row";
/// `_row`, the clean identity columns, the cleaned words and their counts
/// ([`crate::words::cleaned_columns`]), one `label_<task>` column per task
/// (String for classification, List(String) for token and multilabel
/// tasks, Float64 for regression) and, with `conllu`, the
/// [`crate::conllu::COLUMNS`]. Types are fixed even when there are no rows,
/// so empty outputs keep the schema.
pub(crate) fn rows_table(
    dataset: &str,
    files: &[SourceFile],
    tasks: &[&TaskConfig],
    rows: &[Row],
    conllu: bool,
    opts: &CleanOptions,
) -> PolarsResult<DataFrame> {
    let n = rows.len();
    let file = |r: &Row| &files[r.file as usize];
    let row_index = (0..n)
        .map(|i| IdxSize::try_from(i).map_err(|_| polars_err!(ComputeError: "too many rows: {n}")))
        .collect::<PolarsResult<Vec<IdxSize>>>()?;
    let mut columns = vec![
        Column::new(ROW.into(), row_index),
        Column::new(
            col::ID.into(),
            rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ),
        Column::new(col::DATASET.into(), vec![dataset; n]),
        Column::new(
            col::SOURCE_SPLIT.into(),
            rows.iter()
                .map(|r| file(r).split)
                .collect::<Vec<Option<&str>>>(),
        ),
        Column::new(
            col::SOURCE_FILE.into(),
            rows.iter()
                .map(|r| file(r).given.as_str())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            col::SOURCE_LINE.into(),
            rows.iter().map(|r| r.line).collect::<Vec<u32>>(),
        ),
        Column::new(
            col::GROUP.into(),
            rows.iter()
                .map(|r| r.group.as_deref())
                .collect::<Vec<Option<&str>>>(),
        ),
    ];
    columns.extend(crate::words::cleaned_columns(rows, opts)?);
    for (i, task) in tasks.iter().enumerate() {
        let name = col::label(&task.name);
        let labels = rows.iter().map(|r| r.labels.get(i));
        columns.push(match task.kind {
            TaskKind::Tagging | TaskKind::Spans | TaskKind::Dependency | TaskKind::Multilabel => {
                list_column(
                    &name,
                    n,
                    labels.map(|l| match l {
                        Some(Label::Tokens(t) | Label::Multi(t)) => t.as_ref(),
                        _ => None,
                    }),
                )
            }
            TaskKind::Regression => {
                let values: Vec<Option<f64>> = labels
                    .map(|l| match l {
                        Some(Label::Number(x)) => *x,
                        _ => None,
                    })
                    .collect();
                Column::new(name.into(), values)
            }
            TaskKind::Classification => {
                let values: Vec<Option<&str>> = labels
                    .map(|l| match l {
                        Some(Label::Sentence(s)) => s.as_deref(),
                        _ => None,
                    })
                    .collect();
                Column::new(name.into(), values)
            }
        });
    }
    if conllu {
        columns.extend(crate::conllu::columns(rows));
    }
    DataFrame::new(n, columns)
}

pub(crate) fn list_column<'a>(
    name: &str,
    n: usize,
    values: impl Iterator<Item = Option<&'a Vec<String>>>,
) -> Column {
    let mut b = ListStringChunkedBuilder::new(name.into(), n, n * 16);
    for v in values {
        match v {
            Some(v) => b.append_values_iter(v.iter().map(String::as_str)),
            None => b.append_null(),
        }
    }
    b.finish().into_column()
}
