//! Fusion: datasets with different tasks become one table. Columns missing
//! from a dataset (other datasets' labels, say) are added as nulls of the
//! right type, so a null label is exactly "this row does not carry the task".
//! Dataset-specific extra columns (`conllu_lemma`, ...) pass through the same
//! way: null on the other datasets' rows. A dataset with several tasks
//! already has one row per input carrying all of its labels.

use mtl_core::PipelineConfig;
use mtl_core::artifact::col;
use polars::prelude::*;

pub fn diagonal(frames: Vec<DataFrame>, cfg: &PipelineConfig) -> PolarsResult<DataFrame> {
    // Column order: first appearance across datasets, task label columns in
    // config order, so the output layout is stable.
    let mut schema: Vec<(PlSmallStr, DataType)> = Vec::new();
    for df in &frames {
        for c in df.columns() {
            if !schema.iter().any(|(n, _)| n == c.name()) {
                schema.push((c.name().clone(), c.dtype().clone()));
            }
        }
    }
    for t in &cfg.tasks {
        let name: PlSmallStr = col::label(&t.name).into();
        let dtype = crate::cells::dtype(t.kind);
        match schema.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = dtype,
            None => schema.push((name, dtype)),
        }
    }
    let mut out: Option<DataFrame> = None;
    for df in frames {
        let height = df.height();
        let mut columns = Vec::with_capacity(schema.len());
        for (name, dtype) in &schema {
            let c = match df.column(name) {
                // A label column that was all-null may have come out of
                // Parquet as a different type; the cast unifies it.
                Ok(c) => c.cast(dtype)?,
                Err(_) => Column::full_null(name.clone(), height, dtype),
            };
            columns.push(c);
        }
        let df = DataFrame::new(height, columns)?;
        out = Some(match out {
            Some(mut acc) => {
                acc.vstack_mut(&df)?;
                acc
            }
            None => df,
        });
    }
    let mut out = out.unwrap_or_default();
    out.rechunk_mut();
    Ok(out)
}
