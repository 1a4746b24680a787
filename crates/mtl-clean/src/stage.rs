//! The stage itself: resolve and fingerprint the raw files, read and clean
//! each dataset, write the tables, the quarantine, the report and the
//! manifest into a staging folder, and commit it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use mtl_core::artifact::{col, write_parquet};
use mtl_core::config::{DatasetConfig, DatasetFormat, TaskConfig};
use mtl_core::manifest::fingerprint;
use mtl_core::{InputRef, Manifest, ManifestBuilder, Outcome, PipelineConfig, Stage, StagingDir};
use polars::prelude::*;

use crate::error::{Error, PolarsAt, Result};
use crate::read::{self, Parsed, Quarantined, Row, SourceFile};
use crate::report::{Conflict, DatasetReport, Report};
use crate::{STAGE_VERSION, conllu, lines, reason, rules, table};

/// The quarantine table's file name.
pub const QUARANTINE_FILE: &str = "quarantine.parquet";
/// The manifest row count of all quarantined rows.
const QUARANTINED: &str = "quarantined";

/// Runs the clean stage of `cfg` into `out_dir`. Returns
/// [`Outcome::Cached`] without reading anything but the raw files' hashes
/// when `out_dir` already holds the output for the same files and config.
pub fn run(cfg: &PipelineConfig, out_dir: &Path, force: bool) -> Result<Outcome> {
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
    let mut quarantine = QuarantineTable::default();
    let started = Instant::now();
    for (ds, files) in cfg.datasets.iter().zip(&sources) {
        let (mut kept, ds_report, quarantined) = clean_dataset(cfg, ds, files)?;
        let name = format!("{}.parquet", ds.name);
        write_parquet(&mut kept, &staging.path(&name))?;
        file_rows.insert(name, ds_report.kept);
        manifest.rows(&ds.name, ds_report.kept);
        quarantine.extend(ds, files, quarantined);
        report.datasets.insert(ds.name.clone(), ds_report);
    }
    manifest.timing("clean", started);

    let n_quarantined = quarantine.len() as u64;
    let mut q = quarantine
        .into_frame()
        .ctx("building the quarantine table")?;
    write_parquet(&mut q, &staging.path(QUARANTINE_FILE))?;
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
        if !matches!(
            ds.format,
            DatasetFormat::Jsonl | DatasetFormat::Lines | DatasetFormat::Conllu
        ) {
            return Err(Error::UnsupportedFormat {
                dataset: ds.name.clone(),
                format: serde_json::to_value(ds.format)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| format!("{:?}", ds.format)),
            });
        }
        let file_stem = ds.name.to_ascii_lowercase();
        if file_stem == "quarantine" || file_stem == QUARANTINED {
            return Err(Error::ReservedName {
                config: cfg.source.path.clone(),
                index: i,
                name: ds.name.clone(),
            });
        }
        check_tasks(cfg, ds)?;
    }
    Ok(())
}

/// The tasks a `lines` or `conllu` dataset can feed: `lines` has one
/// label per line, so one sentence-level task; CoNLL-U has per-word
/// columns, so token tasks naming one of them.
fn check_tasks(cfg: &PipelineConfig, ds: &DatasetConfig) -> Result<()> {
    let bad = |key: String, detail: String| Error::BadTask {
        config: cfg.source.path.clone(),
        key,
        detail,
    };
    let tasks: Vec<(usize, &TaskConfig)> = cfg
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.dataset == ds.name)
        .collect();
    match ds.format {
        DatasetFormat::Lines => {
            if tasks.len() != 1 {
                return Err(bad(
                    "tasks".into(),
                    format!(
                        "`lines` dataset `{}` has one label per line, so it needs exactly one task, found {}",
                        ds.name,
                        tasks.len()
                    ),
                ));
            }
            let (i, t) = tasks[0];
            if t.kind.is_token_level() {
                return Err(bad(
                    format!("tasks[{i}].type"),
                    format!(
                        "`lines` dataset `{}` has one label per text, not per word",
                        ds.name
                    ),
                ));
            }
        }
        DatasetFormat::Conllu => {
            for (i, t) in tasks {
                if !t.kind.is_token_level() {
                    return Err(bad(
                        format!("tasks[{i}].type"),
                        format!(
                            "`conllu` dataset `{}` only has per-word columns; use a token task",
                            ds.name
                        ),
                    ));
                }
                if conllu::column_index(&t.column).is_none() {
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
            }
        }
        _ => {}
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

/// Reads, cleans and accounts for one dataset.
fn clean_dataset(
    cfg: &PipelineConfig,
    ds: &DatasetConfig,
    files: &[SourceFile],
) -> Result<(DataFrame, DatasetReport, Vec<Quarantined>)> {
    let tasks: Vec<&TaskConfig> = cfg.tasks_of(&ds.name).collect();
    let mut parsed = Parsed::default();
    for f in files {
        match ds.format {
            DatasetFormat::Lines => lines::read_lines(ds, &tasks, f, &mut parsed)?,
            DatasetFormat::Conllu => conllu::read_conllu(ds, &tasks, f, &mut parsed)?,
            _ => read::read_jsonl(ds, &tasks, f, &mut parsed)?,
        }
    }
    let context = || format!("dataset `{}`", ds.name);
    let table = table::rows_table(&ds.name, files, &tasks, &parsed.rows).ctx(context())?;
    let cleaned = rules::clean(table, &tasks, &ds.clean).ctx(context())?;

    let Parsed {
        read,
        rows,
        mut quarantined,
    } = parsed;
    let mut conflicts = Vec::new();
    for d in cleaned.dropped {
        let row = &rows[d.row];
        let detail = match d.kept_row {
            Some(k) if d.reason == reason::CONFLICTING_DUPLICATE => {
                conflict_detail(&tasks, &rows[k], row, &mut conflicts)
            }
            _ => d.detail.unwrap_or_default(),
        };
        quarantined.push(Quarantined {
            file: row.file,
            line: row.line,
            reason: d.reason,
            detail,
            raw: row.raw.clone(),
        });
    }
    quarantined.sort_by_key(|q| (q.file, q.line));

    let kept = cleaned.kept;
    let mut report = DatasetReport {
        read,
        kept: kept.height() as u64,
        conflicts,
        ..DatasetReport::default()
    };
    for q in &quarantined {
        *report.dropped.entry(q.reason.to_string()).or_default() += 1;
    }
    let splits = kept
        .column(col::SOURCE_SPLIT)
        .and_then(|c| c.str())
        .ctx(context())?;
    for split in splits.iter() {
        *report
            .kept_per_split
            .entry(split.unwrap_or("all").to_string())
            .or_default() += 1;
    }
    for t in &tasks {
        let c = kept.column(&col::label(&t.name)).ctx(context())?;
        report
            .labelled
            .insert(t.name.clone(), (c.len() - c.null_count()) as u64);
    }
    if report.read != report.kept + report.dropped_total() {
        return Err(Error::Accounting {
            dataset: ds.name.clone(),
            read: report.read,
            kept: report.kept,
            dropped: report.dropped_total(),
        });
    }
    Ok((kept, report, quarantined))
}

/// `near-duplicate of rev-1 with other labels: task `topic` disagrees:
/// `price` vs `battery``, recording one [`Conflict`] per task where both
/// rows have a label and they differ.
fn conflict_detail(
    tasks: &[&TaskConfig],
    kept: &Row,
    dropped: &Row,
    out: &mut Vec<Conflict>,
) -> String {
    let mut parts = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let (Some(k), Some(d)) = (kept.labels.get(i), dropped.labels.get(i)) else {
            continue;
        };
        // Only labels on both rows can disagree; a missing one is "not annotated".
        if k == d || !k.is_present() || !d.is_present() {
            continue;
        }
        parts.push(format!(
            "task `{}` disagrees: {} vs {}",
            t.name,
            k.display(),
            d.display()
        ));
        out.push(Conflict {
            kept_id: kept.id.clone(),
            dropped_id: dropped.id.clone(),
            task: t.name.clone(),
            kept_label: k.to_json(),
            dropped_label: d.to_json(),
        });
    }
    format!(
        "near-duplicate of {} with other labels: {}",
        kept.id,
        parts.join("; ")
    )
}

/// Quarantined lines of every dataset, in dataset, file and line order.
#[derive(Default)]
struct QuarantineTable {
    dataset: Vec<String>,
    file: Vec<String>,
    line: Vec<u32>,
    reason: Vec<&'static str>,
    detail: Vec<String>,
    raw: Vec<String>,
}

impl QuarantineTable {
    fn extend(&mut self, ds: &DatasetConfig, files: &[SourceFile], rows: Vec<Quarantined>) {
        for q in rows {
            self.dataset.push(ds.name.clone());
            self.file.push(
                files
                    .get(q.file as usize)
                    .map(|f| f.given.clone())
                    .unwrap_or_default(),
            );
            self.line.push(q.line);
            self.reason.push(q.reason);
            self.detail.push(q.detail);
            self.raw.push(q.raw);
        }
    }

    fn len(&self) -> usize {
        self.line.len()
    }

    fn into_frame(self) -> PolarsResult<DataFrame> {
        let n = self.len();
        DataFrame::new(
            n,
            vec![
                Column::new(col::DATASET.into(), self.dataset),
                Column::new(col::SOURCE_FILE.into(), self.file),
                Column::new(col::SOURCE_LINE.into(), self.line),
                Column::new(col::REASON.into(), self.reason),
                Column::new(col::DETAIL.into(), self.detail),
                Column::new(col::RAW.into(), self.raw),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::artifact::read_parquet;

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
        expected.extend(crate::FEATURES);
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
        let err = run(&cfg, &out, false).unwrap_err().to_string();
        assert!(
            err.contains("format `csv` is not implemented yet in mtl-clean"),
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
    }
}
