//! The table formats: `csv` and `tsv` through polars' `LazyCsvReader`, and
//! `parquet` through `scan_parquet`. Columns are found by name (the header,
//! the Parquet schema, or the config's `columns`); a configured column that
//! is missing stops the stage, naming the file and the column. Each record
//! then goes through [`read::parse_record`] like a JSON line, so a bad value
//! is quarantined with its line, not an error.
//!
//! CSV cells are all read as strings (no type inference), and converted per
//! row. With `header = false`, `columns` names the fields; with a header
//! and `columns`, the header line is skipped and `columns` (as many as the
//! header has fields) replaces its names. The line of a CSV record is the physical line it starts on, the
//! header being line 1 (blank lines count, a quoted field spanning lines
//! makes the next record start further down). polars does not report lines,
//! so a quote-aware scan of the bytes finds where each record starts, how
//! many fields it has and whether it is valid UTF-8; polars' rows are
//! matched to those records one for one. A record with too few or too many
//! fields is quarantined (`wrong_field_count`); blank records are skipped,
//! as blank JSON lines are. The line of a Parquet row is its 1-based row
//! number.

use std::path::Path;

use mtl_core::config::{DatasetConfig, DatasetFormat, TaskConfig};
use polars::prelude::*;
use serde_json::{Map, Value};

use crate::error::{Error, PolarsAt, Result};
use crate::read::{self, Parsed, Quarantined, SourceFile};
use crate::reason;

/// The single-byte delimiter and quote of a `csv`/`tsv` dataset, or the
/// reason they cannot be used (polars splits on bytes).
pub(crate) fn csv_bytes(
    ds: &DatasetConfig,
) -> std::result::Result<(u8, u8), (&'static str, String)> {
    let one = |key: &'static str, v: &Option<String>, default: u8| match v {
        None => Ok(default),
        Some(s) if s.len() == 1 && s.is_ascii() && s != "\n" && s != "\r" => Ok(s.as_bytes()[0]),
        Some(s) => Err((
            key,
            format!("`{s}` must be one ASCII character other than a line end"),
        )),
    };
    let default_delim = if ds.format == DatasetFormat::Tsv {
        b'\t'
    } else {
        b','
    };
    let delim = one("delimiter", &ds.delimiter, default_delim)?;
    let quote = one("quote", &ds.quote, b'"')?;
    if delim == quote {
        return Err(("quote", "must differ from the delimiter".into()));
    }
    Ok((delim, quote))
}

/// The columns a dataset reads, each with the config key that names it.
fn wanted(ds: &DatasetConfig, tasks: &[&TaskConfig]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![(ds.text.clone(), "text".into())];
    if let Some(id) = &ds.id {
        out.push((id.clone(), "id".into()));
    }
    if let Some(g) = &ds.group {
        out.push((g.clone(), "group".into()));
    }
    for t in tasks {
        out.push((t.column.clone(), format!("column of task `{}`", t.name)));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|(c, _)| seen.insert(c.clone()));
    out
}

/// Fails naming the first wanted column the schema lacks.
fn check_columns(path: &Path, schema: &Schema, wanted: &[(String, String)]) -> Result<()> {
    for (column, key) in wanted {
        if !schema.contains(column) {
            let available: Vec<String> = schema.iter_names().map(|n| format!("`{n}`")).collect();
            return Err(Error::MissingColumn {
                path: path.to_path_buf(),
                column: column.clone(),
                key: key.clone(),
                available: if available.is_empty() {
                    "no columns".into()
                } else {
                    available.join(", ")
                },
            });
        }
    }
    Ok(())
}

/// One CSV record as found in the bytes.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    /// The physical line it starts on, from 1.
    line: u64,
    /// Its bytes, line end excluded.
    start: usize,
    end: usize,
    fields: usize,
    /// Only spaces, tabs or nothing.
    blank: bool,
}

/// Splits CSV bytes into records the way polars does: a quote character
/// toggles quoting wherever it occurs (a doubled quote toggles twice), and
/// a line end or delimiter inside quotes is data. Fails on a quote that is
/// never closed, naming the line it opened on.
fn records(path: &Path, bytes: &[u8], delim: u8, quote: u8) -> Result<Vec<Record>> {
    let body = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let mut out = Vec::new();
    let (mut line, mut start, mut fields) = (1u64, body, 1usize);
    let (mut quoted, mut quote_line) = (false, 0u64);
    let mut push = |start: usize, end: usize, line: u64, fields: usize| {
        let mut end = end;
        if end > start && bytes[end - 1] == b'\r' {
            end -= 1;
        }
        let blank = bytes[start..end].iter().all(|b| matches!(b, b' ' | b'\t'));
        out.push(Record {
            line,
            start,
            end,
            fields,
            blank,
        });
    };
    let mut record_line = line;
    for (i, &b) in bytes.iter().enumerate().skip(body) {
        if b == quote {
            quoted = !quoted;
            if quoted {
                quote_line = line;
            }
        } else if b == b'\n' {
            line += 1;
            if !quoted {
                push(start, i, record_line, fields);
                (start, fields, record_line) = (i + 1, 1, line);
            }
        } else if b == delim && !quoted {
            fields += 1;
        }
    }
    if quoted {
        return Err(Error::Malformed {
            path: path.to_path_buf(),
            line: quote_line,
            detail: "a quoted field opened here is never closed".into(),
        });
    }
    if start < bytes.len() {
        push(start, bytes.len(), record_line, fields);
    }
    Ok(out)
}

/// Reads one CSV or TSV file, appending to `out`. `delim` and `quote` come
/// from [`csv_bytes`].
pub(crate) fn read_csv(
    ds: &DatasetConfig,
    tasks: &[&TaskConfig],
    src: &SourceFile,
    (delim, quote): (u8, u8),
    out: &mut Parsed,
) -> Result<()> {
    let path = &src.path;
    let bytes = read::read_bytes(path)?;
    let all = records(path, &bytes, delim, quote)?;
    // polars finds no header in leading blank lines; skipping them by line
    // count keeps its rows and the records in step either way.
    let leading = all.iter().take_while(|r| r.blank).count();
    let mut recs = &all[leading..];
    if recs.is_empty() {
        return Ok(());
    }
    let expected = if ds.header {
        let n = recs[0].fields;
        if !ds.columns.is_empty() && ds.columns.len() != n {
            return Err(Error::Malformed {
                path: path.clone(),
                line: recs[0].line,
                detail: format!(
                    "the header has {n} fields but `columns` names {}",
                    ds.columns.len()
                ),
            });
        }
        recs = &recs[1..];
        n
    } else {
        ds.columns.len()
    };

    let context = || format!("reading {}", path.display());
    let mut reader = LazyCsvReader::new(PlRefPath::try_from_path(path).ctx(context())?)
        .with_has_header(ds.header)
        .with_separator(delim)
        .with_quote_char(Some(quote))
        .with_skip_lines(leading)
        .with_infer_schema_length(Some(0))
        .with_truncate_ragged_lines(true)
        .with_encoding(CsvEncoding::LossyUtf8)
        .with_glob(false);
    if !ds.columns.is_empty() {
        let schema: Schema = ds
            .columns
            .iter()
            .map(|c| Field::new(c.as_str().into(), DataType::String))
            .collect();
        reader = reader.with_schema(Some(Arc::new(schema)));
    }
    let mut lf = reader.finish().ctx(context())?;
    let schema = lf.collect_schema().ctx(context())?;
    let wanted = wanted(ds, tasks);
    check_columns(path, &schema, &wanted)?;
    let df = lf
        .select(
            wanted
                .iter()
                .map(|(c, _)| col(c.as_str()))
                .collect::<Vec<_>>(),
        )
        .collect()
        .ctx(context())?;
    if df.height() != recs.len() {
        return Err(Error::Malformed {
            path: path.clone(),
            line: recs.first().map(|r| r.line).unwrap_or(1),
            detail: format!(
                "polars read {} records but the lines hold {}; check the quoting",
                df.height(),
                recs.len()
            ),
        });
    }
    let values: Vec<(&str, &StringChunked)> = wanted
        .iter()
        .map(|(c, _)| Ok((c.as_str(), df.column(c)?.str()?)))
        .collect::<PolarsResult<_>>()
        .ctx(context())?;
    for (i, rec) in recs.iter().enumerate() {
        if rec.blank {
            continue;
        }
        out.read += 1;
        let line = u32::try_from(rec.line).map_err(|_| Error::TooManyLines {
            path: path.clone(),
            line: rec.line,
        })?;
        let raw_bytes = &bytes[rec.start..rec.end];
        let raw = String::from_utf8_lossy(raw_bytes).into_owned();
        let quarantine = |reason, detail| Quarantined {
            file: src.index,
            line,
            reason,
            detail,
            raw: raw.clone(),
        };
        if let Err(e) = std::str::from_utf8(raw_bytes) {
            out.quarantined
                .push(quarantine(reason::INVALID_UTF8, e.to_string()));
            continue;
        }
        if rec.fields != expected {
            out.quarantined.push(quarantine(
                reason::WRONG_FIELD_COUNT,
                format!(
                    "line {line}: expected {expected} fields, found {}",
                    rec.fields
                ),
            ));
            continue;
        }
        let obj: Map<String, Value> = values
            .iter()
            .map(|(name, v)| {
                let v = v.get(i).map_or(Value::Null, Value::from);
                (name.to_string(), v)
            })
            .collect();
        match read::parse_record(ds, tasks, src, line, &obj, raw.clone()) {
            Ok(row) => out.rows.push(row),
            Err((reason, detail)) => out.quarantined.push(quarantine(reason, detail)),
        }
    }
    Ok(())
}

/// Reads one Parquet file, appending to `out`. Strings, numbers, booleans
/// and lists keep their JSON meaning; other values read as their text.
pub(crate) fn read_parquet(
    ds: &DatasetConfig,
    tasks: &[&TaskConfig],
    src: &SourceFile,
    out: &mut Parsed,
) -> Result<()> {
    let path = &src.path;
    let context = || format!("reading {}", path.display());
    let args = ScanArgsParquet {
        glob: false,
        ..ScanArgsParquet::default()
    };
    let mut lf = LazyFrame::scan_parquet(PlRefPath::try_from_path(path).ctx(context())?, args)
        .ctx(context())?;
    let schema = lf.collect_schema().ctx(context())?;
    let wanted = wanted(ds, tasks);
    check_columns(path, &schema, &wanted)?;
    let df = lf
        .select(
            wanted
                .iter()
                .map(|(c, _)| col(c.as_str()))
                .collect::<Vec<_>>(),
        )
        .collect()
        .ctx(context())?;
    let columns: Vec<(&str, &Column)> = wanted
        .iter()
        .map(|(c, _)| Ok((c.as_str(), df.column(c)?)))
        .collect::<PolarsResult<_>>()
        .ctx(context())?;
    for i in 0..df.height() {
        let line = read::line_number(path, i)?;
        out.read += 1;
        let mut obj = Map::new();
        for (name, c) in &columns {
            obj.insert(name.to_string(), to_json(c.get(i).ctx(context())?));
        }
        let raw = Value::Object(obj.clone()).to_string();
        match read::parse_record(ds, tasks, src, line, &obj, raw.clone()) {
            Ok(row) => out.rows.push(row),
            Err((reason, detail)) => out.quarantined.push(Quarantined {
                file: src.index,
                line,
                reason,
                detail,
                raw,
            }),
        }
    }
    Ok(())
}

fn to_json(v: AnyValue<'_>) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    if let Some(b) = v.extract_bool() {
        return Value::Bool(b);
    }
    if let Some(s) = v.extract_str() {
        return Value::from(s);
    }
    if v.is_signed_integer() {
        if let Some(x) = v.extract::<i64>() {
            return Value::from(x);
        }
    } else if v.is_unsigned_integer() {
        if let Some(x) = v.extract::<u64>() {
            return Value::from(x);
        }
    } else if v.is_float() {
        // A non-finite float has no JSON number: its text keeps it visible
        // (and makes a regression label fail as non-finite).
        if let Some(x) = v.extract::<f64>() {
            return serde_json::Number::from_f64(x)
                .map(Value::Number)
                .unwrap_or_else(|| Value::from(x.to_string()));
        }
    }
    if let AnyValue::List(s) = &v {
        return Value::Array(
            (0..s.len())
                .map(|i| s.get(i).map(|v| to_json(v)).unwrap_or(Value::Null))
                .collect(),
        );
    }
    Value::from(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(s: &str) -> Vec<(u64, usize, bool, String)> {
        let b = s.as_bytes();
        records(Path::new("x.csv"), b, b',', b'"')
            .unwrap()
            .into_iter()
            .map(|r| (r.line, r.fields, r.blank, s[r.start..r.end].to_string()))
            .collect()
    }

    #[test]
    fn records_follow_quotes_across_lines() {
        assert_eq!(
            recs("a,b\r\n\"x,\ny\",2\n\n\"q\"\"z\",3"),
            [
                (1, 2, false, "a,b".into()),
                (2, 2, false, "\"x,\ny\",2".into()),
                (4, 1, true, "".into()),
                (5, 2, false, "\"q\"\"z\",3".into()),
            ]
        );
        assert_eq!(recs("\u{feff}a\n"), [(1, 1, false, "a".into())]);
        let err = records(Path::new("x.csv"), b"a\n\"b,\nc\n", b',', b'"')
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.csv: line 2") && err.contains("never closed"),
            "{err}"
        );
    }
}
