//! Parquet tables written one chunk at a time: the kept rows of a dataset
//! and the quarantine grow on disk instead of in memory. Files go into the
//! stage's staging folder, so a failure part way leaves no table that
//! looks complete in the output folder.

use std::fs::File;
use std::path::{Path, PathBuf};

use mtl_core::artifact::col;
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;

use crate::error::{PolarsAt, Result};
use crate::read::{Quarantined, SourceFile};

/// One Parquet file, written as a row group per batch, compressed as
/// [`mtl_core::artifact::write_parquet`] compresses.
pub(crate) struct TableSink {
    path: PathBuf,
    schema: Schema,
    writer: BatchedWriter<File>,
    rows: u64,
}

impl TableSink {
    pub fn create(path: &Path, schema: Schema) -> Result<Self> {
        let context = || format!("writing {}", path.display());
        let file = File::create(path).map_err(|source| crate::Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let writer = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Zstd(None))
            .batched(&schema)
            .ctx(context())?;
        Ok(TableSink {
            path: path.to_path_buf(),
            schema,
            writer,
            rows: 0,
        })
    }

    /// Appends `df`, which must have the sink's schema.
    pub fn write(&mut self, df: &mut DataFrame) -> Result<()> {
        let context = || format!("writing {}", self.path.display());
        if df.schema().as_ref() != &self.schema {
            return Err(polars_err!(
                SchemaMismatch: "a chunk has columns {:?}, the table {:?}",
                df.schema(),
                self.schema
            ))
            .ctx(context());
        }
        if df.height() == 0 {
            return Ok(());
        }
        // The writer needs every column cut into the same chunks.
        df.rechunk_mut_par();
        self.writer.write_batch(df).ctx(context())?;
        self.rows += df.height() as u64;
        Ok(())
    }

    /// Writes the footer; returns the rows written.
    pub fn finish(self) -> Result<u64> {
        self.writer
            .finish()
            .ctx(format!("writing {}", self.path.display()))?;
        Ok(self.rows)
    }
}

/// `clean/quarantine.parquet`, every dataset's quarantined lines in
/// dataset, file and line order.
pub(crate) struct QuarantineSink(TableSink);

impl QuarantineSink {
    pub fn create(path: &Path) -> Result<Self> {
        let schema: Schema = [
            (col::DATASET, DataType::String),
            (col::SOURCE_FILE, DataType::String),
            (col::SOURCE_LINE, DataType::UInt32),
            (col::REASON, DataType::String),
            (col::DETAIL, DataType::String),
            (col::RAW, DataType::String),
        ]
        .into_iter()
        .map(|(name, dtype)| Field::new(name.into(), dtype))
        .collect();
        Ok(QuarantineSink(TableSink::create(path, schema)?))
    }

    /// Appends one chunk's lines of `dataset`, which must be sorted by
    /// file and line and come after everything written before.
    pub fn write(
        &mut self,
        dataset: &str,
        files: &[SourceFile],
        rows: &[Quarantined],
    ) -> Result<()> {
        let n = rows.len();
        let given = |q: &Quarantined| {
            files
                .get(q.file as usize)
                .map(|f| f.given.as_str())
                .unwrap_or_default()
        };
        let mut df = DataFrame::new(
            n,
            vec![
                Column::new(col::DATASET.into(), vec![dataset; n]),
                Column::new(
                    col::SOURCE_FILE.into(),
                    rows.iter().map(given).collect::<Vec<_>>(),
                ),
                Column::new(
                    col::SOURCE_LINE.into(),
                    rows.iter().map(|q| q.line).collect::<Vec<u32>>(),
                ),
                Column::new(
                    col::REASON.into(),
                    rows.iter().map(|q| q.reason).collect::<Vec<_>>(),
                ),
                Column::new(
                    col::DETAIL.into(),
                    rows.iter().map(|q| q.detail.as_str()).collect::<Vec<_>>(),
                ),
                Column::new(
                    col::RAW.into(),
                    rows.iter().map(|q| q.raw.as_str()).collect::<Vec<_>>(),
                ),
            ],
        )
        .ctx("building the quarantine table")?;
        self.0.write(&mut df)
    }

    pub fn finish(self) -> Result<u64> {
        self.0.finish()
    }
}
