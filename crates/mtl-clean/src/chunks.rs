//! A dataset's files as a sequence of [`Parsed`] chunks of at most a
//! fixed number of rows, in file and line order, so the stage's memory does
//! not grow with the input. JSON Lines (the format of big files) is read
//! incrementally; the other formats are parsed a whole file at a time and
//! then handed out in slices, so their cleaning is bounded the same way.
//!
//! Each chunk carries the lines quarantined while reading it, all of which
//! come before the next chunk's first row: the quarantine stays in file and
//! line order when chunks are written one after the other.

use mtl_core::config::{DatasetConfig, DatasetFormat, TaskConfig};

use crate::error::Result;
use crate::read::{JsonlFile, Parsed, Quarantined, Row, SourceFile};
use crate::{conll, conllu, lines, tabular};

/// Rows per chunk. Two chunks are in memory at a time (one read while one
/// is cleaned), at roughly 5 KB per row of the sample with everything
/// polars builds; past about 25,000 rows larger chunks only cost memory
/// (on a 200 MB file: 50,000 rows ran as fast with 260 MB more peak RSS).
pub(crate) const CHUNK_ROWS: usize = 25_000;

pub(crate) struct Chunks<'a> {
    ds: &'a DatasetConfig,
    tasks: &'a [&'a TaskConfig],
    files: &'a [SourceFile],
    /// Delimiter and quote of a CSV or TSV dataset.
    csv: Option<(u8, u8)>,
    size: usize,
    next_file: usize,
    jsonl: Option<JsonlFile<'a>>,
    whole: Option<Slices>,
}

/// A whole file's rows, handed out a slice at a time.
struct Slices {
    /// Not yet counted in a chunk.
    read: u64,
    rows: std::vec::IntoIter<Row>,
    /// Sorted by line.
    quarantined: std::iter::Peekable<std::vec::IntoIter<Quarantined>>,
}

impl<'a> Chunks<'a> {
    /// `size` rows at most per chunk (at least one).
    pub fn new(
        ds: &'a DatasetConfig,
        tasks: &'a [&'a TaskConfig],
        files: &'a [SourceFile],
        csv: Option<(u8, u8)>,
        size: usize,
    ) -> Self {
        Chunks {
            ds,
            tasks,
            files,
            csv,
            size: size.max(1),
            next_file: 0,
            jsonl: None,
            whole: None,
        }
    }

    /// The next chunk, or `None` when every file has been read. A chunk
    /// may hold no rows (only quarantined lines); none is empty.
    pub fn next_chunk(&mut self) -> Result<Option<Parsed>> {
        if self.ds.format == DatasetFormat::Jsonl {
            self.next_jsonl()
        } else {
            self.next_slice()
        }
    }

    /// JSON Lines chunks run across file ends: only the row count bounds
    /// them.
    fn next_jsonl(&mut self) -> Result<Option<Parsed>> {
        let mut out = Parsed::default();
        while out.rows.len() < self.size {
            let file = match &mut self.jsonl {
                Some(f) => f,
                None => {
                    let Some(src) = self.files.get(self.next_file) else {
                        break;
                    };
                    self.next_file += 1;
                    self.jsonl.insert(JsonlFile::open(src)?)
                }
            };
            if !file.read_into(self.ds, self.tasks, &mut out, self.size)? {
                self.jsonl = None;
            }
        }
        Ok(non_empty(out))
    }

    fn next_slice(&mut self) -> Result<Option<Parsed>> {
        loop {
            if let Some(s) = &mut self.whole {
                let rows: Vec<Row> = s.rows.by_ref().take(self.size).collect();
                // Lines quarantined before the next row belong to this chunk.
                let next = s.rows.as_slice().first().map(|r| (r.file, r.line));
                let mut quarantined = Vec::new();
                while let Some(q) = s
                    .quarantined
                    .next_if(|q| next.is_none_or(|n| (q.file, q.line) < n))
                {
                    quarantined.push(q);
                }
                let out = Parsed {
                    read: std::mem::take(&mut s.read),
                    rows,
                    quarantined,
                };
                if next.is_none() {
                    self.whole = None;
                }
                if let Some(out) = non_empty(out) {
                    return Ok(Some(out));
                }
                continue;
            }
            let Some(src) = self.files.get(self.next_file) else {
                return Ok(None);
            };
            self.next_file += 1;
            let mut parsed = Parsed::default();
            let (ds, tasks) = (self.ds, self.tasks);
            match ds.format {
                DatasetFormat::Jsonl => {
                    let mut f = JsonlFile::open(src)?;
                    while f.read_into(ds, tasks, &mut parsed, usize::MAX)? {}
                }
                DatasetFormat::Csv | DatasetFormat::Tsv => {
                    // The stage checked the options before reading.
                    let bytes = self.csv.unwrap_or((b',', b'"'));
                    tabular::read_csv(ds, tasks, src, bytes, &mut parsed)?
                }
                DatasetFormat::Parquet => tabular::read_parquet(ds, tasks, src, &mut parsed)?,
                DatasetFormat::Lines => lines::read_lines(ds, tasks, src, &mut parsed)?,
                DatasetFormat::Conllu => conllu::read_conllu(ds, tasks, src, &mut parsed)?,
                DatasetFormat::Conll => conll::read_conll(ds, tasks, src, &mut parsed)?,
            }
            parsed.quarantined.sort_by_key(|q| (q.file, q.line));
            self.whole = Some(Slices {
                read: parsed.read,
                rows: parsed.rows.into_iter(),
                quarantined: parsed.quarantined.into_iter().peekable(),
            });
        }
    }
}

fn non_empty(p: Parsed) -> Option<Parsed> {
    (p.read > 0 || !p.rows.is_empty() || !p.quarantined.is_empty()).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::PipelineConfig;

    fn config(format: &str, file: &str) -> PipelineConfig {
        let text = format!(
            "[pipeline]\nname = \"t\"\n[[datasets]]\nname = \"d\"\nformat = \"{format}\"\nfiles = {{ all = \"{file}\" }}\n\
             [[tasks]]\nname = \"s\"\ndataset = \"d\"\ncolumn = \"s\"\ntype = \"classification\"\n"
        );
        PipelineConfig::from_toml_str(&text, std::path::Path::new("t.toml")).unwrap()
    }

    /// `(rows' lines, quarantined lines, read)` of every chunk.
    fn chunk_lines(
        format: &str,
        name: &str,
        body: &str,
        size: usize,
    ) -> Vec<(Vec<u32>, Vec<u32>, u64)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let cfg = config(format, name);
        let ds = &cfg.datasets[0];
        let tasks: Vec<_> = cfg.tasks_of(&ds.name).collect();
        let files = [SourceFile {
            index: 0,
            split: None,
            given: name.into(),
            path,
        }];
        let mut chunks = Chunks::new(ds, &tasks, &files, Some((b',', b'"')), size);
        let mut out = Vec::new();
        while let Some(c) = chunks.next_chunk().unwrap() {
            assert!(c.rows.len() <= size);
            out.push((
                c.rows.iter().map(|r| r.line).collect(),
                c.quarantined.iter().map(|q| q.line).collect(),
                c.read,
            ));
        }
        out
    }

    #[test]
    fn jsonl_chunks_keep_their_quarantined_lines() {
        let body = "{\"text\":\"a\"}\nbad\n{\"text\":\"b\"}\n\n{\"text\":\"c\"}\nbad\n";
        assert_eq!(
            chunk_lines("jsonl", "d.jsonl", body, 2),
            [(vec![1, 3], vec![2], 3), (vec![5], vec![6], 2)]
        );
        assert_eq!(chunk_lines("jsonl", "d.jsonl", "\n \n", 2), []);
    }

    #[test]
    fn whole_files_are_sliced_in_line_order() {
        let body = "text,s\na,x\n\"b\",y,z\nc,x\nd,x\n\"e\",1,2\n";
        let got = chunk_lines("csv", "d.csv", body, 2);
        // The whole file's count comes with its first chunk.
        assert_eq!(got, [(vec![2, 4], vec![3], 5), (vec![5], vec![6], 0)]);
    }
}
