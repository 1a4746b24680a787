//! Reading the clean tables: each dataset's table, checked against the
//! clean schema where split depends on it (its tasks' label columns, the
//! `feat_*` columns), with every row's split attached.

use std::path::Path;

use mtl_core::CoreError;
use mtl_core::PipelineConfig;
use mtl_core::artifact::{FEATURES, PolarsAt, col, read_parquet};
use mtl_core::config::DatasetConfig;
use polars::prelude::*;

use crate::assign;
use crate::cells;
use crate::error::{Error, Result};
use crate::report::CarvedDev;

/// One dataset's clean table and the split of each of its rows.
pub struct Loaded {
    pub name: String,
    pub df: DataFrame,
    pub splits: Vec<usize>,
    /// The dev set carved out of its train rows, when it brought none.
    pub carved: Option<CarvedDev>,
}

pub fn load(cfg: &PipelineConfig, clean_dir: &Path) -> Result<Vec<Loaded>> {
    let mut out = Vec::with_capacity(cfg.datasets.len());
    for d in &cfg.datasets {
        let path = clean_dir.join(format!("{}.parquet", d.name));
        let df = read_parquet(&path)?;
        check(cfg, d, &df, &path)?;
        let a = assign::assign_splits(cfg, &df, &path)?;
        out.push(Loaded {
            name: d.name.clone(),
            df,
            splits: a.splits,
            carved: a.carved,
        });
    }
    Ok(out)
}

fn check(cfg: &PipelineConfig, d: &DatasetConfig, df: &DataFrame, path: &Path) -> Result<()> {
    let missing: Vec<String> = FEATURES
        .iter()
        .map(|f| col::feature(f))
        .filter(|c| df.column(c).is_err())
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingFeatures {
            path: path.display().to_string(),
            missing: missing.join(", "),
        });
    }
    for f in FEATURES {
        let name = col::feature(f);
        let c = df.column(&name).at(path)?;
        if !c.dtype().is_primitive_numeric() {
            return Err(schema(path, &name, format!("expected f32, found {}", c.dtype())).into());
        }
    }
    for t in cfg.tasks_of(&d.name) {
        let name = col::label(&t.name);
        let c = df
            .column(&name)
            .map_err(|_| schema(path, &name, format!("missing (task `{}`)", t.name)))?;
        if !cells::accepts(t.kind, c.dtype()) {
            return Err(schema(
                path,
                &name,
                format!(
                    "a {} task needs {}, found {}",
                    t.kind.name(),
                    cells::dtype(t.kind),
                    c.dtype()
                ),
            )
            .into());
        }
    }
    Ok(())
}

fn schema(path: &Path, column: &str, message: String) -> CoreError {
    CoreError::Schema {
        path: path.to_path_buf(),
        column: column.to_string(),
        message,
    }
}
