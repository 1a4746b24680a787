//! Parsed rows as a polars DataFrame: the input of the cleaning rules.

use mtl_core::artifact::col;
use mtl_core::config::TaskConfig;
use polars::prelude::*;

use crate::read::{Label, Row, SourceFile};

/// Index of the row in [`crate::read::Parsed::rows`]: how rule results find
/// their way back to the raw line, and the file order of the table.
pub(crate) const ROW: &str = "_row";
/// The raw text split on whitespace, before cleaning.
pub(crate) const RAW_WORDS: &str = "_raw_words";

/// `_row`, the clean identity columns, `_raw_words` and one `label_<task>`
/// column per task (String, or List(String) for token tasks). Types are
/// fixed even when there are no rows, so empty outputs keep the schema.
pub(crate) fn rows_table(
    dataset: &str,
    files: &[SourceFile],
    tasks: &[&TaskConfig],
    rows: &[Row],
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
        list_column(RAW_WORDS, n, rows.iter().map(|r| Some(&r.raw_words))),
    ];
    for (i, task) in tasks.iter().enumerate() {
        let name = col::label(&task.name);
        let labels = rows.iter().map(|r| r.labels.get(i));
        columns.push(if task.kind.is_token_level() {
            list_column(
                &name,
                n,
                labels.map(|l| match l {
                    Some(Label::Tokens(t)) => t.as_ref(),
                    _ => None,
                }),
            )
        } else {
            let values: Vec<Option<&str>> = labels
                .map(|l| match l {
                    Some(Label::Sentence(s)) => s.as_deref(),
                    _ => None,
                })
                .collect();
            Column::new(name.into(), values)
        });
    }
    DataFrame::new(n, columns)
}

fn list_column<'a>(
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
