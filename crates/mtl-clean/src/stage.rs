//! The stage itself: resolve and fingerprint the raw files, read and clean
//! each dataset a chunk at a time, stream the tables and the quarantine
//! into a staging folder, write the report and the manifest, and commit it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use mtl_core::artifact::col;
use mtl_core::config::{DatasetConfig, DatasetFormat, TaskConfig};
use mtl_core::manifest::fingerprint;
use mtl_core::{
    InputRef, Manifest, ManifestBuilder, Outcome, PipelineConfig, Stage, StagingDir, TaskKind,
};

use crate::chunks::{CHUNK_ROWS, Chunks};
use crate::dedup::Deduper;
use crate::error::{Error, PolarsAt, Result};
use crate::read::{Parsed, Quarantined, Row, SourceFile};
use crate::report::{DatasetReport, Report};
use crate::sink::{QuarantineSink, TableSink};
use crate::{STAGE_VERSION, conllu, lines, rules, table, tabular};

/// The quarantine table's file name.
pub const QUARANTINE_FILE: &str = "quarantine.parquet";
/// The manifest row count of all quarantined rows.
const QUARANTINED: &str = "quarantined";

/// Runs the clean stage of `cfg` into `out_dir`. Returns
/// [`Outcome::Cached`] without reading anything but the raw files' hashes
/// when `out_dir` already holds the output for the same files and config.
pub fn run(cfg: &PipelineConfig, out_dir: &Path, force: bool) -> Result<Outcome> {
    run_chunked(cfg, out_dir, force, CHUNK_ROWS)
}

/// [`run`] reading at most `chunk_rows` rows of a dataset at a time. The
/// output does not depend on it, except for the wording of messages about
/// duplicates of rows in earlier chunks.
pub(crate) fn run_chunked(
    cfg: &PipelineConfig,
    out_dir: &Path,
    force: bool,
    chunk_rows: usize,
) -> Result<Outcome> {
    check_datasets(cfg)?;
    let sources = resolve_sources(cfg)?;
    let mut inputs = Vec::new();
    for (ds, files) in cfg.datasets.iter().zip(&sources) {
        let mut mappings = Vec::new();
        for f in files {
            let split = f.split.unwrap_or("all");
            inputs.push(InputRef {
                name: format!("{}/{split}", ds.name),
                fingerprint: mtl_core::hash::sha256_file(&f.path)?,
            });
            // The labels and the mapping are read too, so they are inputs.
            if ds.format == DatasetFormat::Lines {
                let c = lines::companions(&f.path)?;
                inputs.push(InputRef {
                    name: format!("{}/{split}/labels", ds.name),
                    fingerprint: mtl_core::hash::sha256_file(&c.labels)?,
                });
                if !mappings.contains(&c.mapping) {
                    inputs.push(InputRef {
                        name: format!("{}/mapping/{}", ds.name, mappings.len()),
                        fingerprint: mtl_core::hash::sha256_file(&c.mapping)?,
                    });
                    mappings.push(c.mapping);
                }
            }
        }
    }
    let fp = fingerprint(Stage::Clean, STAGE_VERSION, cfg, &inputs);
    let fresh = if force {
        None
    } else {
        Manifest::fresh(out_dir, &fp)
    };
    if let Some(m) = fresh {
        return Ok(Outcome::Cached(m));
    }

    let staging = StagingDir::begin(out_dir)?;
    let mut manifest = ManifestBuilder::new(Stage::Clean, STAGE_VERSION, fp, inputs);
    let mut file_rows = BTreeMap::new();
    let mut report = Report::default();
    let mut quarantine = QuarantineSink::create(&staging.path(QUARANTINE_FILE))?;
    let started = Instant::now();
    for (i, (ds, files)) in cfg.datasets.iter().zip(&sources).enumerate() {
        let csv = match ds.format {
            DatasetFormat::Csv | DatasetFormat::Tsv => Some(csv_options(cfg, i, ds)?),
            _ => None,
        };
        let name = format!("{}.parquet", ds.name);
        let input = Input {
            cfg,
            ds,
            files,
            csv,
        };
        let ds_report = clean_dataset(&input, &staging.path(&name), &mut quarantine, chunk_rows)?;
        file_rows.insert(name, ds_report.kept);
        manifest.rows(&ds.name, ds_report.kept);
        report.datasets.insert(ds.name.clone(), ds_report);
    }
    manifest.timing("clean", started);

    let n_quarantined = quarantine.finish()?;
    file_rows.insert(QUARANTINE_FILE.to_string(), n_quarantined);
    manifest.rows(QUARANTINED, n_quarantined);
    mtl_core::fsio::write_json(&staging.path(Report::FILE), &report)?;

    let m = manifest.finish(&staging, &file_rows)?;
    staging.commit()?;
    Ok(Outcome::Ran(m))
}

/// Problems with the config that this stage, not mtl-core, rejects.
fn check_datasets(cfg: &PipelineConfig) -> Result<()> {
    for (i, ds) in cfg.datasets.iter().enumerate() {
        let file_stem = ds.name.to_ascii_lowercase();
        if file_stem == "quarantine" || file_stem == QUARANTINED {
            return Err(Error::ReservedName {
                config: cfg.source.path.clone(),
                index: i,
                name: ds.name.clone(),
            });
        }
        if matches!(ds.format, DatasetFormat::Csv | DatasetFormat::Tsv) {
            csv_options(cfg, i, ds)?;
        }
        if ds.format == DatasetFormat::Conll && !ds.columns.contains(&ds.text) {
            return Err(Error::BadDataset {
                config: cfg.source.path.clone(),
                key: format!("datasets[{i}].text"),
                detail: format!(
                    "`{}` is not one of the columns ({}); set `text` to the word column",
                    ds.text,
                    ds.columns.join(", ")
                ),
            });
        }
        check_tasks(cfg, ds)?;
    }
    Ok(())
}

/// The delimiter and quote bytes of the `i`-th dataset, a csv or tsv one.
fn csv_options(cfg: &PipelineConfig, i: usize, ds: &DatasetConfig) -> Result<(u8, u8)> {
    tabular::csv_bytes(ds).map_err(|(key, detail)| Error::BadDataset {
        config: cfg.source.path.clone(),
        key: format!("datasets[{i}].{key}"),
        detail,
    })
}

/// The tasks a dataset's format can feed. Word-level tasks need words
/// given by the file with their tags (`jsonl` and `parquet` lists,
/// `conllu`, `conll`); `conllu` and `conll` have nothing but word columns;
/// `lines` has one label (or, for multilabel, one list of labels) per line;
/// a multilabel task over string cells needs its `separator`.
fn check_tasks(cfg: &PipelineConfig, ds: &DatasetConfig) -> Result<()> {
    let bad = |key: String, detail: String| Error::BadTask {
        config: cfg.source.path.clone(),
        key,
        detail,
    };
    let format = serde_json::to_value(ds.format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{:?}", ds.format));
    let tasks: Vec<(usize, &TaskConfig)> = cfg
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.dataset == ds.name)
        .collect();
    if ds.format == DatasetFormat::Lines && tasks.len() != 1 {
        return Err(bad(
            "tasks".into(),
            format!(
                "`lines` dataset `{}` has one label per line, so it needs exactly one task, found {}",
                ds.name,
                tasks.len()
            ),
        ));
    }
    for (i, t) in tasks {
        let word_level = matches!(ds.format, DatasetFormat::Conllu | DatasetFormat::Conll);
        let fits = match ds.format {
            DatasetFormat::Conllu | DatasetFormat::Conll => t.kind.is_token_level(),
            DatasetFormat::Csv | DatasetFormat::Tsv => !t.kind.is_token_level(),
            DatasetFormat::Lines => {
                matches!(t.kind, TaskKind::Classification | TaskKind::Multilabel)
            }
            DatasetFormat::Jsonl | DatasetFormat::Parquet => true,
        };
        if !fits {
            let detail = if word_level {
                format!(
                    "`{format}` dataset `{}` only has per-word columns; use a token task (tagging or spans)",
                    ds.name
                )
            } else if t.kind.is_token_level() {
                format!(
                    "a {} task needs words given with their tags: use a token-level format (jsonl, parquet, conllu or conll), not `{format}`",
                    t.kind.name()
                )
            } else {
                format!(
                    "`lines` dataset `{}` maps label ids to names: use a classification or multilabel task, not {}",
                    ds.name,
                    t.kind.name()
                )
            };
            return Err(bad(format!("tasks[{i}].type"), detail));
        }
        if t.kind == TaskKind::Multilabel
            && t.separator.is_none()
            && matches!(
                ds.format,
                DatasetFormat::Csv | DatasetFormat::Tsv | DatasetFormat::Lines
            )
        {
            return Err(bad(
                format!("tasks[{i}].separator"),
                format!(
                    "multilabel task `{}` reads strings from a `{format}` file: set `separator` (e.g. \",\")",
                    t.name
                ),
            ));
        }
        if ds.format == DatasetFormat::Conllu && conllu::column_index(&t.column).is_none() {
            let known: Vec<&str> = conllu::TASK_COLUMNS.iter().map(|(n, _)| *n).collect();
            return Err(bad(
                format!("tasks[{i}].column"),
                format!(
                    "`{}` is not a CoNLL-U column; use one of {}",
                    t.column,
                    known.join(", ")
                ),
            ));
        }
        if ds.format == DatasetFormat::Conll
            && (!ds.columns.contains(&t.column) || t.column == ds.text)
        {
            return Err(bad(
                format!("tasks[{i}].column"),
                format!(
                    "`{}` is not a tag column of dataset `{}`; use one of {}",
                    t.column,
                    ds.name,
                    ds.columns
                        .iter()
                        .filter(|c| **c != ds.text)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Every dataset's files, resolved and checked to exist.
fn resolve_sources(cfg: &PipelineConfig) -> Result<Vec<Vec<SourceFile>>> {
    let mut out = Vec::new();
    for (i, ds) in cfg.datasets.iter().enumerate() {
        let mut files = Vec::new();
        for (index, (split, given)) in (0u32..).zip(ds.files.entries()) {
            let key = format!("datasets[{i}].files.{}", split.unwrap_or("all"));
            let path = cfg.resolve_path(&key, given)?;
            if !path.is_file() {
                return Err(Error::MissingInput {
                    config: cfg.source.path.clone(),
                    key,
                    path,
                });
            }
            files.push(SourceFile {
                index,
                split,
                given: given.to_string(),
                path,
            });
        }
        out.push(files);
    }
    Ok(out)
}

/// One dataset and where its rows come from.
struct Input<'a> {
    cfg: &'a PipelineConfig,
    ds: &'a DatasetConfig,
    files: &'a [SourceFile],
    /// Delimiter and quote of a CSV or TSV dataset.
    csv: Option<(u8, u8)>,
}

/// Reads, cleans and accounts for one dataset a chunk at a time, writing
/// its kept rows to `table` and its quarantined lines to `quarantine` as
/// it goes. The next chunk is read while the current one is cleaned.
fn clean_dataset(
    input: &Input,
    table: &Path,
    quarantine: &mut QuarantineSink,
    chunk_rows: usize,
) -> Result<DatasetReport> {
    let ds = input.ds;
    let tasks: Vec<&TaskConfig> = input.cfg.tasks_of(&ds.name).collect();
    let mut state = DatasetState {
        input,
        tasks: &tasks,
        deduper: Deduper::new(&tasks, input.files, ds.clean.dedup),
        path: table,
        table: None,
        quarantine,
        report: DatasetReport::default(),
        labelled: vec![0; tasks.len()],
    };
    std::thread::scope(|scope| -> Result<()> {
        // The next chunk is read while this one is cleaned, and no further:
        // two chunks in memory at most.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Parsed>>(0);
        // Cleaned rows go back to be freed where they were allocated, off
        // the cleaning thread (the busier one).
        let (done_tx, done_rx) = std::sync::mpsc::channel::<Vec<Row>>();
        let tasks = &tasks;
        scope.spawn(move || {
            let mut chunks = Chunks::new(ds, tasks, input.files, input.csv, chunk_rows);
            loop {
                done_rx.try_iter().for_each(drop);
                let next = chunks.next_chunk().transpose();
                let stop = !matches!(next, Some(Ok(_)));
                // A closed channel means the stage failed and stopped listening.
                if next.is_some_and(|c| tx.send(c).is_err()) || stop {
                    break;
                }
            }
        });
        let mut any = false;
        for chunk in rx {
            // Once reading is over, nobody takes them back: they drop here.
            let _ = done_tx.send(state.chunk(chunk?)?);
            any = true;
        }
        if !any {
            // Still a typed, empty table.
            state.chunk(Parsed::default())?;
        }
        Ok(())
    })?;
    state.finish()
}

/// What a dataset has written and counted so far.
struct DatasetState<'a> {
    input: &'a Input<'a>,
    tasks: &'a [&'a TaskConfig],
    deduper: Deduper<'a>,
    path: &'a Path,
    /// Opened with the first chunk's schema.
    table: Option<TableSink>,
    quarantine: &'a mut QuarantineSink,
    report: DatasetReport,
    labelled: Vec<u64>,
}

impl DatasetState<'_> {
    /// Cleans, writes and counts one chunk; gives its rows back.
    fn chunk(&mut self, parsed: Parsed) -> Result<Vec<Row>> {
        let Input { ds, files, .. } = *self.input;
        let context = || format!("dataset `{}`", ds.name);
        let is_conllu = ds.format == DatasetFormat::Conllu;
        let Parsed {
            read,
            rows,
            mut quarantined,
        } = parsed;
        self.report.read += read;
        let table = table::rows_table(&ds.name, files, self.tasks, &rows, is_conllu, &ds.clean)
            .ctx(context())?;
        let checked = rules::check(table, self.tasks, &ds.clean).ctx(context())?;
        let decided = self.deduper.chunk(&checked.valid, &rows).ctx(context())?;
        let extra: &[&str] = if is_conllu { &conllu::COLUMNS } else { &[] };
        let mut kept =
            rules::finish(&checked.valid, &decided.keep, self.tasks, extra).ctx(context())?;

        for d in checked.dropped.into_iter().chain(decided.dropped) {
            let row = &rows[d.row];
            quarantined.push(Quarantined {
                file: row.file,
                line: row.line,
                reason: d.reason,
                detail: d.detail,
                raw: row.raw.clone(),
            });
        }
        // Chunks follow each other in file order, so sorting each one
        // keeps the whole quarantine in file and line order.
        quarantined.sort_by_key(|q| (q.file, q.line));
        self.quarantine.write(&ds.name, files, &quarantined)?;
        for q in &quarantined {
            *self.report.dropped.entry(q.reason.to_string()).or_default() += 1;
        }
        self.report.conflicts.extend(decided.conflicts);

        self.report.kept += kept.height() as u64;
        let splits = kept
            .column(col::SOURCE_SPLIT)
            .and_then(|c| c.str())
            .ctx(context())?;
        for split in splits.iter() {
            let split = split.unwrap_or("all");
            match self.report.kept_per_split.get_mut(split) {
                Some(n) => *n += 1,
                None => {
                    self.report.kept_per_split.insert(split.to_string(), 1);
                }
            }
        }
        for (n, t) in self.labelled.iter_mut().zip(self.tasks) {
            let c = kept.column(&col::label(&t.name)).ctx(context())?;
            *n += (c.len() - c.null_count()) as u64;
        }
        let sink = match &mut self.table {
            Some(sink) => sink,
            None => self.table.insert(TableSink::create(
                self.path,
                kept.schema().as_ref().clone(),
            )?),
        };
        sink.write(&mut kept)?;
        Ok(rows)
    }

    /// Closes the table and checks that every row read is accounted for.
    fn finish(self) -> Result<DatasetReport> {
        let mut report = self.report;
        if let Some(sink) = self.table {
            sink.finish()?;
        }
        for (t, n) in self.tasks.iter().zip(self.labelled) {
            report.labelled.insert(t.name.clone(), n);
        }
        if report.read != report.kept + report.dropped_total() {
            return Err(Error::Accounting {
                dataset: self.input.ds.name.clone(),
                read: report.read,
                kept: report.kept,
                dropped: report.dropped_total(),
            });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Conflict;
    use mtl_core::artifact::read_parquet;
    use polars::prelude::*;
    use std::path::PathBuf;

    const TASKS: &str = r#"
[[tasks]]
name = "sentiment"
dataset = "d"
column = "sentiment"
type = "classification"

[[tasks]]
name = "ner"
dataset = "d"
column = "ner"
type = "spans"
"#;

    /// A config `t.toml` in `dir` with one dataset `d` (id column `id`
    /// unless `dataset_extra` says otherwise) and the tasks above.
    fn config(dir: &Path, files: &str, dataset_extra: &str) -> PipelineConfig {
        let text = format!(
            "[pipeline]\nname = \"t\"\n\n[[datasets]]\nname = \"d\"\nformat = \"jsonl\"\nfiles = {files}\n{dataset_extra}\n{TASKS}"
        );
        let path = dir.join("t.toml");
        std::fs::write(&path, text).unwrap();
        PipelineConfig::load(&path, None).unwrap()
    }

    fn write_lines(path: &Path, lines: &[&str]) {
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    fn strs(df: &DataFrame, name: &str) -> Vec<Option<String>> {
        df.column(name)
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|s| s.map(str::to_string))
            .collect()
    }

    fn words(df: &DataFrame) -> Vec<Vec<String>> {
        let c = df.column(col::WORDS).unwrap().list().unwrap();
        (0..c.len())
            .map(|i| {
                let s = c.get_as_series(i).unwrap();
                s.str()
                    .unwrap()
                    .iter()
                    .map(|w| w.unwrap().to_string())
                    .collect()
            })
            .collect()
    }

    /// Report invariant plus: the quarantine holds exactly the dropped rows,
    /// each with its dataset, file and line.
    fn check_accounting(out: &Path) -> (Report, DataFrame) {
        let report = Report::read(out).unwrap();
        let q = read_parquet(&out.join(QUARANTINE_FILE)).unwrap();
        let mut dropped_total = 0;
        for (name, ds) in &report.datasets {
            assert_eq!(ds.read, ds.kept + ds.dropped_total(), "{name}: {ds:?}");
            let kept = read_parquet(&out.join(format!("{name}.parquet"))).unwrap();
            assert_eq!(kept.height() as u64, ds.kept);
            assert_eq!(ds.kept_per_split.values().sum::<u64>(), ds.kept);
            dropped_total += ds.dropped_total();
        }
        assert_eq!(q.height() as u64, dropped_total);
        for f in strs(&q, col::SOURCE_FILE) {
            assert!(!f.unwrap().is_empty());
        }
        let lines = q.column(col::SOURCE_LINE).unwrap().u32().unwrap();
        assert!(lines.iter().all(|l| l.unwrap() >= 1));
        (report, q)
    }

    /// `(line, reason)` of every quarantined row.
    fn reasons(q: &DataFrame) -> Vec<(u32, String)> {
        let lines = q.column(col::SOURCE_LINE).unwrap().u32().unwrap();
        lines
            .iter()
            .map(Option::unwrap)
            .zip(strs(q, col::REASON).into_iter().map(Option::unwrap))
            .collect()
    }

    const MIXED: &[&str] = &[
        r#"{"id":"a","text":"Great &amp; <b>cheap</b> phone","sentiment":"pos","ner":["O","O","O","O"]}"#,
        r#"{"id":"b","text":"Bad screen here","sentiment":"neg","ner":["O","O"]}"#,
        r#"{"id":"c","text":"Nice <br/> camera","sentiment":"pos","ner":["O","O","O"]}"#,
        r#"{"id":"d","text":"Nice <br/> battery\u200b","sentiment":"pos"}"#,
        r#"{"id":"e","text":"  <br/> \u200b ","sentiment":"pos"}"#,
        r#"{"id":"f","text":"no labels here"}"#,
        r#"{"id":"g","text": "#,
        r#"{"id":"h","text":"Great &amp;   cheap  phone","sentiment":"pos","ner":["O","O","O","O"]}"#,
        r#"{"id":"i","text":"great & cheap phone!!","sentiment":"pos","ner":["O","O","O","O"]}"#,
        r#"{"id":"j","text":"GREAT & CHEAP PHONE","sentiment":"neg","ner":["O","O","O","O"]}"#,
        "",
        r#"{"id":"a","text":"Another text entirely","sentiment":"neu"}"#,
        r#"{"id":"k","text":"Only tags here","ner":["B-X","O","O"]}"#,
    ];

    #[test]
    fn every_rule_quarantines_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(&dir.path().join("d.jsonl"), MIXED);
        let cfg = config(dir.path(), r#"{ all = "d.jsonl" }"#, "id = \"id\"");
        let out = dir.path().join("clean");
        let outcome = run(&cfg, &out, false).unwrap();
        assert!(matches!(outcome, Outcome::Ran(_)));

        let (report, q) = check_accounting(&out);
        let kept = read_parquet(&out.join("d.parquet")).unwrap();
        assert_eq!(
            strs(&kept, col::ID),
            [Some("a".into()), Some("d".into()), Some("k".into())]
        );
        assert_eq!(
            reasons(&q),
            [
                (2, "tag_count_mismatch".into()),
                (3, "token_emptied".into()),
                (5, "empty".into()),
                (6, "no_labels".into()),
                (7, "unparseable".into()),
                (8, "duplicate".into()),
                (9, "near_duplicate".into()),
                (10, "conflicting_duplicate".into()),
                (12, "duplicate_id".into()),
            ]
        );
        let detail = strs(&q, col::DETAIL);
        assert_eq!(detail[0].as_deref(), Some("task `ner`: 2 tags for 3 words"));
        let emptied = detail[1].as_deref().unwrap();
        assert!(
            emptied.contains("`<br/>`") && emptied.contains("position 1"),
            "{emptied}"
        );
        assert!(
            detail[4].as_deref().unwrap().contains("EOF"),
            "{:?}",
            detail[4]
        );
        assert_eq!(detail[5].as_deref(), Some("duplicate of a"));
        assert!(
            detail[6]
                .as_deref()
                .unwrap()
                .starts_with("near-duplicate of a"),
            "{:?}",
            detail[6]
        );
        let conflict = detail[7].as_deref().unwrap();
        assert!(
            conflict.contains("`sentiment`") && conflict.contains("`pos` vs `neg`"),
            "{conflict}"
        );
        assert!(!conflict.contains("`ner`"), "ner agrees: {conflict}");
        assert_eq!(strs(&q, col::RAW)[4].as_deref(), Some(MIXED[6]));
        assert!(
            strs(&q, col::DATASET)
                .iter()
                .all(|d| d.as_deref() == Some("d"))
        );

        let d = &report.datasets["d"];
        assert_eq!((d.read, d.kept), (12, 3));
        assert_eq!(d.dropped["duplicate"], 1);
        assert_eq!(d.kept_per_split, BTreeMap::from([("all".to_string(), 3)]));
        assert_eq!(
            d.labelled,
            BTreeMap::from([("sentiment".to_string(), 2), ("ner".to_string(), 2)])
        );
        assert_eq!(
            d.conflicts,
            [Conflict {
                kept_id: "a".into(),
                dropped_id: "j".into(),
                task: "sentiment".into(),
                kept_label: "pos".into(),
                dropped_label: "neg".into(),
            }]
        );
    }

    #[test]
    fn kept_rows_are_cleaned_in_the_clean_schema() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(&dir.path().join("d.jsonl"), MIXED);
        let cfg = config(
            dir.path(),
            r#"{ all = "d.jsonl" }"#,
            "id = \"id\"\ngroup = \"sentiment\"",
        );
        let out = dir.path().join("clean");
        run(&cfg, &out, false).unwrap();
        let kept = read_parquet(&out.join("d.parquet")).unwrap();

        let names: Vec<&str> = kept
            .get_column_names()
            .into_iter()
            .map(|n| n.as_str())
            .collect();
        let mut expected = vec![
            "id",
            "dataset",
            "source_split",
            "source_file",
            "source_line",
            "group",
            "text",
            "words",
            "n_chars",
            "n_words",
            "label_sentiment",
            "label_ner",
        ];
        let features: Vec<String> = crate::FEATURES.iter().map(|f| col::feature(f)).collect();
        expected.extend(features.iter().map(String::as_str));
        assert_eq!(names, expected);
        let list_str = DataType::List(Box::new(DataType::String));
        for (name, dtype) in [
            (col::SOURCE_SPLIT, DataType::String),
            (col::GROUP, DataType::String),
            (col::SOURCE_LINE, DataType::UInt32),
            (col::N_CHARS, DataType::UInt32),
            (col::N_WORDS, DataType::UInt32),
            (col::WORDS, list_str.clone()),
            ("label_sentiment", DataType::String),
            ("label_ner", list_str),
            ("feat_upper_ratio", DataType::Float32),
        ] {
            assert_eq!(kept.column(name).unwrap().dtype(), &dtype, "{name}");
        }

        assert_eq!(
            strs(&kept, col::TEXT),
            [
                Some("Great & cheap phone".into()),
                Some("Nice battery".into()),
                Some("Only tags here".into())
            ]
        );
        assert_eq!(words(&kept)[1], ["Nice", "battery"]);
        assert_eq!(strs(&kept, col::SOURCE_SPLIT), [None, None, None]);
        assert_eq!(strs(&kept, col::SOURCE_FILE)[0].as_deref(), Some("d.jsonl"));
        assert_eq!(strs(&kept, col::GROUP)[2], None);
        let lines: Vec<_> = kept
            .column(col::SOURCE_LINE)
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(lines, [1, 4, 13]);
        let n_chars: Vec<_> = kept
            .column(col::N_CHARS)
            .unwrap()
            .u32()
            .unwrap()
            .iter()
            .flatten()
            .collect();
        assert_eq!(n_chars, [19, 12, 14]);
        assert_eq!(strs(&kept, "label_sentiment")[2], None);
        let ner = kept.column("label_ner").unwrap().list().unwrap();
        assert_eq!(ner.get_as_series(1), None);
        assert_eq!(ner.get_as_series(2).unwrap().len(), 3);
        let mean = kept
            .column("feat_mean_word_len")
            .unwrap()
            .f32()
            .unwrap()
            .get(1)
            .unwrap();
        assert!((mean - 5.5).abs() < 1e-6, "{mean}");
    }

    #[test]
    fn per_split_files_dedup_within_their_split_only() {
        let dir = tempfile::tempdir().unwrap();
        let line = r#"{"text":"same text","sentiment":"pos"}"#;
        write_lines(&dir.path().join("train.jsonl"), &[line, line]);
        write_lines(&dir.path().join("dev.jsonl"), &[line]);
        let cfg = config(
            dir.path(),
            r#"{ train = "train.jsonl", dev = "dev.jsonl" }"#,
            "",
        );
        let out = dir.path().join("clean");
        let m = run(&cfg, &out, false).unwrap().manifest().clone();
        let inputs: Vec<_> = m.inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(inputs, ["d/train", "d/dev"]);
        assert_eq!(m.rows["d"], 2);
        assert_eq!(m.rows["quarantined"], 1);
        assert_eq!(m.outputs["d.parquet"].rows, Some(2));
        assert_eq!(m.outputs["quarantine.parquet"].rows, Some(1));

        let (report, q) = check_accounting(&out);
        let kept = read_parquet(&out.join("d.parquet")).unwrap();
        assert_eq!(
            strs(&kept, col::ID),
            [Some("d:train.jsonl:1".into()), Some("d:dev.jsonl:1".into())]
        );
        assert_eq!(
            strs(&kept, col::SOURCE_SPLIT),
            [Some("train".into()), Some("dev".into())]
        );
        assert_eq!(reasons(&q), [(2, "duplicate".into())]);
        assert_eq!(
            strs(&q, col::DETAIL)[0].as_deref(),
            Some("duplicate of d:train.jsonl:1")
        );
        let d = &report.datasets["d"];
        assert_eq!(
            d.kept_per_split,
            BTreeMap::from([("train".into(), 1), ("dev".into(), 1)])
        );
    }

    #[test]
    fn a_missing_label_is_not_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(
            &dir.path().join("d.jsonl"),
            &[
                r#"{"text":"Good value","sentiment":"pos"}"#,
                r#"{"text":"good value.","sentiment":"pos","ner":["O","O"]}"#,
                r#"{"text":"Good value","ner":["O","O"]}"#,
                r#"{"text":"GOOD VALUE","sentiment":"neg","ner":["O","O"]}"#,
            ],
        );
        let cfg = config(dir.path(), r#"{ all = "d.jsonl" }"#, "");
        let out = dir.path().join("clean");
        run(&cfg, &out, false).unwrap();
        let (report, q) = check_accounting(&out);
        assert_eq!(
            reasons(&q),
            [
                (2, "near_duplicate".into()),
                (3, "duplicate".into()),
                (4, "conflicting_duplicate".into())
            ]
        );
        let detail = strs(&q, col::DETAIL);
        assert!(
            detail[0]
                .as_deref()
                .unwrap()
                .contains("only one of the two rows has `ner`"),
            "{detail:?}"
        );
        assert!(
            detail[1].as_deref().unwrap().contains("`sentiment` `ner`"),
            "both tasks are one-sided: {detail:?}"
        );
        let conflicts = &report.datasets["d"].conflicts;
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(
            (conflicts[0].task.as_str(), conflicts[0].dropped_id.as_str()),
            ("sentiment", "d:d.jsonl:4")
        );
    }

    #[test]
    fn dedup_off_keeps_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let line = r#"{"text":"same text","sentiment":"pos"}"#;
        write_lines(&dir.path().join("d.jsonl"), &[line, line]);
        let cfg = config(
            dir.path(),
            r#"{ all = "d.jsonl" }"#,
            "[datasets.clean]\ndedup = false",
        );
        let out = dir.path().join("clean");
        run(&cfg, &out, false).unwrap();
        let (report, _) = check_accounting(&out);
        assert_eq!(report.datasets["d"].kept, 2);
    }

    #[test]
    fn length_limits_apply_to_the_cleaned_text() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(
            &dir.path().join("d.jsonl"),
            &[
                r#"{"text":"ok <b>x</b>","sentiment":"pos"}"#,
                r#"{"text":"just right","sentiment":"pos"}"#,
                r#"{"text":"this one is far too long","sentiment":"pos"}"#,
            ],
        );
        let cfg = config(
            dir.path(),
            r#"{ all = "d.jsonl" }"#,
            "[datasets.clean]\nmin_chars = 5\nmax_chars = 12",
        );
        let out = dir.path().join("clean");
        run(&cfg, &out, false).unwrap();
        let (_, q) = check_accounting(&out);
        assert_eq!(
            reasons(&q),
            [(1, "too_short".into()), (3, "too_long".into())]
        );
        assert_eq!(
            strs(&q, col::DETAIL)[0].as_deref(),
            Some("4 chars < min_chars = 5")
        );
    }

    #[test]
    fn clean_options_reach_the_table() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(
            &dir.path().join("d.jsonl"),
            &[
                r#"{"text":"See https://x.com/a. Mail bob@x.org @Ann cafe\u0301","sentiment":"pos","ner":["O","O","O","O","O","O"]}"#,
            ],
        );
        let cfg = config(
            dir.path(),
            r#"{ all = "d.jsonl" }"#,
            "[datasets.clean]\nmask_urls = true\nmask_emails = true\nmask_users = true\nlowercase = true",
        );
        let out = dir.path().join("clean");
        run(&cfg, &out, false).unwrap();
        let kept = read_parquet(&out.join("d.parquet")).unwrap();
        let text = strs(&kept, col::TEXT)[0].clone().unwrap();
        assert_eq!(text, "see <url>. mail <email> @user caf\u{e9}");
        // The stage and the inference path agree word for word.
        let raw = "See https://x.com/a. Mail bob@x.org @Ann cafe\u{301}";
        assert_eq!(
            words(&kept)[0],
            crate::clean_words(raw, &cfg.datasets[0].clean)
        );
        let urls = kept.column("feat_n_urls").unwrap().f32().unwrap().get(0);
        assert_eq!(urls, Some(1.0));
    }

    #[test]
    fn second_run_is_cached_until_input_or_options_change() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d.jsonl");
        write_lines(&data, &[r#"{"text":"one","sentiment":"pos"}"#]);
        let out = dir.path().join("clean");
        let cfg = config(dir.path(), r#"{ all = "d.jsonl" }"#, "");
        assert!(matches!(run(&cfg, &out, false).unwrap(), Outcome::Ran(_)));
        assert!(matches!(
            run(&cfg, &out, false).unwrap(),
            Outcome::Cached(_)
        ));
        assert!(
            matches!(run(&cfg, &out, true).unwrap(), Outcome::Ran(_)),
            "--force reruns"
        );

        write_lines(
            &data,
            &[
                r#"{"text":"one","sentiment":"pos"}"#,
                r#"{"text":"two","sentiment":"neg"}"#,
            ],
        );
        assert!(
            matches!(run(&cfg, &out, false).unwrap(), Outcome::Ran(_)),
            "new content"
        );
        assert_eq!(Report::read(&out).unwrap().datasets["d"].kept, 2);
        assert!(matches!(
            run(&cfg, &out, false).unwrap(),
            Outcome::Cached(_)
        ));

        let lower = config(
            dir.path(),
            r#"{ all = "d.jsonl" }"#,
            "[datasets.clean]\nlowercase = true",
        );
        assert!(
            matches!(run(&lower, &out, false).unwrap(), Outcome::Ran(_)),
            "new options"
        );
        assert!(matches!(
            run(&lower, &out, false).unwrap(),
            Outcome::Cached(_)
        ));
    }

    #[test]
    fn empty_input_writes_empty_typed_tables() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.jsonl"), "\n  \n").unwrap();
        let cfg = config(dir.path(), r#"{ all = "d.jsonl" }"#, "");
        let out = dir.path().join("clean");
        run(&cfg, &out, false).unwrap();
        let (report, q) = check_accounting(&out);
        assert_eq!(report.datasets["d"].read, 0);
        assert_eq!(q.height(), 0);
        assert_eq!(
            q.column(col::SOURCE_LINE).unwrap().dtype(),
            &DataType::UInt32
        );
        let kept = read_parquet(&out.join("d.parquet")).unwrap();
        assert_eq!(kept.height(), 0);
        assert_eq!(
            kept.column("label_ner").unwrap().dtype(),
            &DataType::List(Box::new(DataType::String))
        );
        assert_eq!(kept.column(col::GROUP).unwrap().dtype(), &DataType::String);
    }

    #[test]
    fn config_problems_name_the_key_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), r#"{ all = "missing.jsonl" }"#, "");
        let out = dir.path().join("clean");
        let err = run(&cfg, &out, false).unwrap_err().to_string();
        assert!(
            err.contains("datasets[0].files.all") && err.contains("missing.jsonl"),
            "{err}"
        );
        assert!(!out.exists());

        let mut cfg = config(dir.path(), r#"{ all = "missing.jsonl" }"#, "");
        cfg.datasets[0].format = DatasetFormat::Csv;
        cfg.datasets[0].delimiter = Some("\u{e9}".into());
        let err = run(&cfg, &out, false).unwrap_err().to_string();
        assert!(
            err.contains("datasets[0].delimiter") && err.contains("one ASCII character"),
            "{err}"
        );

        std::fs::write(dir.path().join("d.jsonl"), "{}\n").unwrap();
        let mut cfg = config(dir.path(), r#"{ all = "d.jsonl" }"#, "");
        cfg.datasets[0].name = "quarantine".into();
        let err = run(&cfg, &out, false).unwrap_err().to_string();
        assert!(err.contains("reserved"), "{err}");
    }

    #[test]
    fn labels_are_kept_aligned_to_words() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(
            &dir.path().join("d.jsonl"),
            &[
                r#"{"text":"Apple\u200b  <i>Watch</i>   is &quot;great&quot;","ner":["B-BRAND","B-PRODUCT","O","O"]}"#,
            ],
        );
        let cfg = config(dir.path(), r#"{ all = "d.jsonl" }"#, "");
        let out = dir.path().join("clean");
        run(&cfg, &out, false).unwrap();
        let kept = read_parquet(&out.join("d.parquet")).unwrap();
        assert_eq!(words(&kept)[0], ["Apple", "Watch", "is", "\"great\""]);
        let ner = kept
            .column("label_ner")
            .unwrap()
            .list()
            .unwrap()
            .get_as_series(0)
            .unwrap();
        assert_eq!(ner.len(), 4);
        let n_words = kept.column(col::N_WORDS).unwrap().u32().unwrap().get(0);
        assert_eq!(n_words, Some(4));
    }

    fn load(dir: &Path, text: &str) -> PipelineConfig {
        let path = dir.join("t.toml");
        std::fs::write(&path, format!("[pipeline]\nname = \"t\"\n{text}")).unwrap();
        PipelineConfig::load(&path, None).unwrap()
    }

    const LINES: &str = "[[datasets]]\nname = \"hate\"\nformat = \"lines\"\n\
        files = { train = \"h/train_text.txt\", test = \"h/test_text.txt\" }\n\
        [datasets.clean]\nmask_users = true\n\
        [[tasks]]\nname = \"hate\"\ndataset = \"hate\"\ncolumn = \"label\"\ntype = \"classification\"\n";

    #[test]
    fn lines_dataset_is_cleaned_with_mapped_labels() {
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path().join("h");
        std::fs::create_dir(&h).unwrap();
        std::fs::write(h.join("mapping.txt"), "0\tnot-hate\n1\thate").unwrap();
        std::fs::write(h.join("train_text.txt"), "@bob you  rock \n\nwho knows \n").unwrap();
        std::fs::write(h.join("train_labels.txt"), "0\n1\n2\n").unwrap();
        std::fs::write(h.join("test_text.txt"), "awful people").unwrap();
        std::fs::write(h.join("test_labels.txt"), "1").unwrap();
        let cfg = load(dir.path(), LINES);
        let out = dir.path().join("clean");
        let m = run(&cfg, &out, false).unwrap().manifest().clone();
        let inputs: Vec<_> = m.inputs.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            inputs,
            [
                "hate/train",
                "hate/train/labels",
                "hate/mapping/0",
                "hate/test",
                "hate/test/labels"
            ]
        );
        let (report, q) = check_accounting(&out);
        assert_eq!(reasons(&q), [(2, "empty".into()), (3, "bad_label".into())]);
        let kept = read_parquet(&out.join("hate.parquet")).unwrap();
        assert_eq!(
            strs(&kept, col::ID),
            [
                Some("hate:train_text.txt:1".into()),
                Some("hate:test_text.txt:1".into())
            ]
        );
        assert_eq!(
            strs(&kept, col::TEXT),
            [Some("@user you rock".into()), Some("awful people".into())]
        );
        assert_eq!(
            strs(&kept, "label_hate"),
            [Some("not-hate".into()), Some("hate".into())]
        );
        let d = &report.datasets["hate"];
        assert_eq!(d.read, 4);
        assert_eq!(
            d.kept_per_split,
            BTreeMap::from([("train".into(), 1), ("test".into(), 1)])
        );

        // The labels file is an input: changing it reruns the stage.
        std::fs::write(h.join("test_labels.txt"), "0").unwrap();
        assert!(matches!(run(&cfg, &out, false).unwrap(), Outcome::Ran(_)));
        std::fs::write(h.join("test_labels.txt"), "0\n0\n").unwrap();
        let err = run(&cfg, &out, true).unwrap_err().to_string();
        assert!(
            err.contains("test_text.txt has 1 lines") && err.contains("test_labels.txt has 2"),
            "{err}"
        );
    }

    const CONLLU: &str = "[[datasets]]\nname = \"ud\"\nformat = \"conllu\"\n\
        files = { train = \"ud.conllu\" }\n[datasets.clean]\ndedup = false\n\
        [[tasks]]\nname = \"upos\"\ndataset = \"ud\"\ncolumn = \"upos\"\ntype = \"tagging\"\n\
        [[tasks]]\nname = \"ufeats\"\ndataset = \"ud\"\ncolumn = \"feats\"\ntype = \"tagging\"\n";

    #[test]
    fn conllu_words_are_given_and_cleaned_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let w = |id: &str, form: &str, upos: &str| {
            format!("{id}\t{form}\t_\t{upos}\t_\t_\t0\troot\t_\t_\n")
        };
        let mut f = String::from("# newdoc id = d1\n# sent_id = a\n# text = 10 000 &amp; more\n");
        f += &(w("1", "10 000", "NUM") + &w("2", "&amp;", "CCONJ") + &w("3", "more", "ADJ"));
        f += &format!(
            "\n# sent_id = b\n{}{}",
            w("1", "<br/>", "X"),
            w("2", "ok", "INTJ")
        );
        f += &format!("\n# sent_id = c\n{}\n", w("1", "Same", "ADJ"));
        f += &format!("# newdoc id = d2\n# sent_id = d\n{}", w("1", "Same", "ADJ"));
        std::fs::write(dir.path().join("ud.conllu"), f).unwrap();
        let cfg = load(dir.path(), CONLLU);
        let out = dir.path().join("clean");
        run(&cfg, &out, false).unwrap();
        let (report, q) = check_accounting(&out);
        assert_eq!(reasons(&q), [(8, "token_emptied".into())]);
        let kept = read_parquet(&out.join("ud.parquet")).unwrap();
        assert_eq!(
            strs(&kept, col::ID),
            [Some("a".into()), Some("c".into()), Some("d".into())]
        );
        // One word, one tag: the space inside a given FORM never splits it.
        assert_eq!(words(&kept)[0], ["10000", "&", "more"]);
        let n_words = kept.column(col::N_WORDS).unwrap().u32().unwrap().get(0);
        assert_eq!(n_words, Some(3));
        assert_eq!(
            strs(&kept, col::GROUP),
            [Some("d1".into()), Some("d1".into()), Some("d2".into())]
        );
        let upos = kept.column("label_upos").unwrap().list().unwrap();
        assert_eq!(upos.get_as_series(0).unwrap().len(), 3);
        assert_eq!(report.datasets["ud"].kept, 3, "dedup off keeps repeats");
    }

    #[test]
    fn tasks_must_fit_the_format() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ud.conllu"), "").unwrap();
        let out = dir.path().join("clean");
        let cfg = load(dir.path(), &CONLLU.replace("\"feats\"", "\"misc\""));
        let err = run(&cfg, &out, false).unwrap_err().to_string();
        assert!(
            err.contains("tasks[1].column") && err.contains("`misc`"),
            "{err}"
        );
        let two = format!(
            "{LINES}[[tasks]]\nname = \"other\"\ndataset = \"hate\"\ncolumn = \"label\"\ntype = \"classification\"\n"
        );
        let err = run(&load(dir.path(), &two), &out, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly one task, found 2"), "{err}");

        // Token tasks need a token-level format; CoNLL tasks name a tag column.
        let csv = "[[datasets]]\nname = \"c\"\nformat = \"csv\"\nfiles = { all = \"c.csv\" }\n\
            [[tasks]]\nname = \"t\"\ndataset = \"c\"\ncolumn = \"tags\"\ntype = \"tagging\"\n";
        std::fs::write(dir.path().join("c.csv"), "text,tags\n").unwrap();
        let err = run(&load(dir.path(), csv), &out, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tasks[0].type") && err.contains("token-level format"),
            "{err}"
        );
        let multi = csv.replace("\"tagging\"", "\"multilabel\"");
        let err = run(&load(dir.path(), &multi), &out, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("tasks[0].separator"), "{err}");
        let regression = LINES.replace("\"classification\"", "\"regression\"");
        let err = run(&load(dir.path(), &regression), &out, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not regression"), "{err}");
        let conll = "[[datasets]]\nname = \"k\"\nformat = \"conll\"\nfiles = { all = \"k.txt\" }\n\
            columns = [\"word\", \"ner\"]\ntext = \"word\"\n\
            [[tasks]]\nname = \"ner\"\ndataset = \"k\"\ncolumn = \"pos\"\ntype = \"spans\"\n";
        std::fs::write(dir.path().join("k.txt"), "").unwrap();
        let err = run(&load(dir.path(), conll), &out, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tasks[0].column") && err.contains("use one of ner"),
            "{err}"
        );
        let err = run(
            &load(dir.path(), &conll.replace("text = \"word\"", "")),
            &out,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("datasets[0].text"), "{err}");
        let sentence = conll.replace("\"spans\"", "\"classification\"");
        let err = run(&load(dir.path(), &sentence), &out, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("only has per-word columns"), "{err}");
    }

    /// Duplicates, near duplicates, conflicts and repeated ids whose first
    /// row sits in another chunk when chunks hold three rows.
    const ACROSS: &[&str] = &[
        r#"{"id":"a","text":"Good value","sentiment":"pos"}"#,
        r#"{"id":"b","text":"Other text one","sentiment":"neg"}"#,
        r#"{"id":"c","text":"Third text","sentiment":"pos"}"#,
        r#"{"id":"d","text":"good value.","sentiment":"pos","ner":["O","O"]}"#,
        r#"{"id":"e","text":"Good value","sentiment":"pos"}"#,
        r#"{"id":"f","text":"GOOD VALUE","sentiment":"neg"}"#,
        r#"{"id":"b","text":"Brand new text","sentiment":"pos"}"#,
        r#"{"id":"g","text":"Other text one!","sentiment":"neg"}"#,
        r#"{"id":"h","text":"Fresh words","sentiment":"pos"}"#,
        r#"{"id":"x","text": "#,
        r#"{"id":"i","text":"fresh words","sentiment":"neu"}"#,
        r#"{"id":"c","text":"Unique leader","sentiment":"pos"}"#,
        r#"{"id":"j","text":"unique leader!","sentiment":"pos"}"#,
        r#"{"id":"k","text":"Last one","ner":["O","O","O"]}"#,
    ];

    fn run_with_chunks(dir: &Path, rows: usize) -> (PathBuf, Report, DataFrame) {
        let cfg = config(dir, r#"{ all = "d.jsonl" }"#, "id = \"id\"");
        let out = dir.join(format!("clean-{rows}"));
        run_chunked(&cfg, &out, false, rows).unwrap();
        let (report, q) = check_accounting(&out);
        (out, report, q)
    }

    #[test]
    fn chunk_size_never_changes_what_is_kept_or_why() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(&dir.path().join("d.jsonl"), ACROSS);
        let (small_out, small, small_q) = run_with_chunks(dir.path(), 3);
        let (big_out, big, big_q) = run_with_chunks(dir.path(), CHUNK_ROWS);

        let expected = [
            (4, "near_duplicate".to_string()),
            (5, "duplicate".into()),
            (6, "conflicting_duplicate".into()),
            (7, "duplicate_id".into()),
            (8, "near_duplicate".into()),
            (10, "unparseable".into()),
            (11, "conflicting_duplicate".into()),
            (12, "duplicate_id".into()),
            (13, "near_duplicate".into()),
            (14, "tag_count_mismatch".into()),
        ];
        assert_eq!(reasons(&big_q), expected);
        assert_eq!(reasons(&small_q), expected);
        let small_kept = read_parquet(&small_out.join("d.parquet")).unwrap();
        let big_kept = read_parquet(&big_out.join("d.parquet")).unwrap();
        assert_eq!(
            strs(&big_kept, col::ID),
            ["a", "b", "c", "h"].map(|s| Some(s.to_string()))
        );
        assert!(small_kept.equals_missing(&big_kept));
        for c in [col::DATASET, col::SOURCE_FILE, col::RAW] {
            assert_eq!(strs(&small_q, c), strs(&big_q, c), "{c}");
        }

        let (s, b) = (&small.datasets["d"], &big.datasets["d"]);
        assert_eq!(
            (s.read, s.kept, &s.dropped, &s.kept_per_split, &s.labelled),
            (b.read, b.kept, &b.dropped, &b.kept_per_split, &b.labelled)
        );
        let who = |r: &DatasetReport| -> Vec<(String, String, String, serde_json::Value)> {
            r.conflicts
                .iter()
                .map(|c| {
                    let c = c.clone();
                    (c.kept_id, c.dropped_id, c.task, c.dropped_label)
                })
                .collect()
        };
        assert_eq!(who(s), who(b));
        assert_eq!(
            who(b),
            [
                ("a".into(), "f".into(), "sentiment".into(), "neg".into()),
                ("h".into(), "i".into(), "sentiment".into(), "neu".into()),
            ]
        );
        // A kept row of an earlier chunk is named by id and place; its
        // label is no longer known.
        assert_eq!(b.conflicts[0].kept_label, "pos");
        assert_eq!(s.conflicts[0].kept_label, serde_json::Value::Null);

        let small_detail = strs(&small_q, col::DETAIL);
        let big_detail = strs(&big_q, col::DETAIL);
        assert_eq!(big_detail[1].as_deref(), Some("duplicate of a"));
        assert_eq!(
            small_detail[1].as_deref(),
            Some("duplicate of a (d.jsonl:1)")
        );
        assert_eq!(
            small_detail[0].as_deref(),
            Some(
                "near-duplicate of a (d.jsonl:1) (labels agree; only one of the two rows has `ner`)"
            )
        );
        assert_eq!(
            small_detail[2].as_deref(),
            Some(
                "near-duplicate of a (d.jsonl:1) with other labels: task `sentiment` disagrees: this row has `neg`"
            )
        );
        for d in [&small_detail, &big_detail] {
            assert_eq!(d[3].as_deref(), Some("id already used at d.jsonl:2"));
            // The leader of a group stays its leader when its id was taken.
            assert_eq!(d[7].as_deref(), Some("id already used at d.jsonl:3"));
        }
        // Row 13's leader (row 12) is in its own chunk either way.
        assert_eq!(
            small_detail[8].as_deref(),
            Some("near-duplicate of c: `Unique leader`")
        );
        assert_eq!(small_detail[8], big_detail[8]);
    }

    #[test]
    fn dedup_off_still_checks_ids_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(&dir.path().join("d.jsonl"), ACROSS);
        let cfg = config(
            dir.path(),
            r#"{ all = "d.jsonl" }"#,
            "id = \"id\"\n[datasets.clean]\ndedup = false",
        );
        let out = dir.path().join("clean");
        run_chunked(&cfg, &out, false, 2).unwrap();
        let (_, q) = check_accounting(&out);
        assert_eq!(
            reasons(&q),
            [
                (7, "duplicate_id".into()),
                (10, "unparseable".into()),
                (12, "duplicate_id".into()),
                (14, "tag_count_mismatch".into()),
            ]
        );
    }

    #[test]
    fn a_failure_part_way_leaves_the_old_output_or_none() {
        let dir = tempfile::tempdir().unwrap();
        write_lines(&dir.path().join("d.jsonl"), ACROSS);
        std::fs::write(
            dir.path().join("train.csv"),
            "text,sentiment\none,pos\ntwo,neg\nthree,pos\nfour,neg\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("dev.csv"), "text,sentiment\nfive,pos\n").unwrap();
        let text = format!(
            "[pipeline]\nname = \"t\"\n\n[[datasets]]\nname = \"d\"\nformat = \"jsonl\"\n\
             files = {{ all = \"d.jsonl\" }}\n{TASKS}\n\
             [[datasets]]\nname = \"e\"\nformat = \"csv\"\n\
             files = {{ train = \"train.csv\", dev = \"dev.csv\" }}\n\
             [[tasks]]\nname = \"s\"\ndataset = \"e\"\ncolumn = \"sentiment\"\ntype = \"classification\"\n"
        );
        let path = dir.path().join("t.toml");
        std::fs::write(&path, text).unwrap();
        let cfg = PipelineConfig::load(&path, None).unwrap();
        let out = dir.path().join("runs").join("clean");
        let listing = |d: &Path| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };

        // dataset `d` and the first file of `e` are written before `dev.csv`
        // fails.
        std::fs::write(dir.path().join("dev.csv"), "text,sentiment\n\"five,pos\n").unwrap();
        let err = run_chunked(&cfg, &out, true, 3).unwrap_err().to_string();
        assert!(
            err.contains("dev.csv") && err.contains("never closed"),
            "{err}"
        );
        assert!(!out.exists());
        assert!(listing(out.parent().unwrap()).is_empty());

        std::fs::write(dir.path().join("dev.csv"), "text,sentiment\nfive,pos\n").unwrap();
        run_chunked(&cfg, &out, true, 3).unwrap();
        let before = listing(&out);
        assert_eq!(
            before,
            [
                "d.parquet",
                "e.parquet",
                "manifest.json",
                "quarantine.parquet",
                "report.json"
            ]
        );
        let table = std::fs::read(out.join("e.parquet")).unwrap();
        assert_eq!(Report::read(&out).unwrap().datasets["e"].kept, 5);

        std::fs::write(dir.path().join("dev.csv"), "text,sentiment\n\"five,pos\n").unwrap();
        run_chunked(&cfg, &out, true, 3).unwrap_err();
        assert_eq!(listing(&out), before);
        assert_eq!(std::fs::read(out.join("e.parquet")).unwrap(), table);
        assert_eq!(listing(out.parent().unwrap()), ["clean"]);
    }
}
