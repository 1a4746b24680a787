//! Batch mode for scheduled jobs: predict every file of an input folder
//! into an output folder, incrementally.
//!
//! - **Inputs**: the folder's regular files, not hidden, whose extension
//!   names a format ([`crate::input::Format::from_path`]; with a given
//!   format, every file), in name order. Others are listed as ignored.
//! - **Outputs**: `OUT/<file name>.jsonl` (`a.csv` → `a.csv.jsonl`), or
//!   `.conllu` for CoNLL-U output, written atomically ([`crate::predict_file`]), then `OUT/<file name>.meta.json`
//!   recording the input's SHA-256, the model fingerprint (SHA-256 of every
//!   bundle file), the settings fingerprint ([`crate::PREDICT_VERSION`] and
//!   the options that change the records) and the row counts.
//! - **Skipping**: a file is skipped when its output exists and its meta
//!   records the same input hash, model fingerprint and settings. A changed
//!   file, a new model or new settings predict it again. The old meta is
//!   deleted before an output is replaced, so a crash between the two
//!   writes leaves a file that is predicted again, never a stale meta that
//!   vouches for the wrong output.
//! - **Lock**: `OUT/.mtl-predict.lock`, created with `create_new` and
//!   holding the process id, removed when the job ends. A lock whose
//!   process is alive stops the job with a message naming the file and the
//!   pid. A lock whose process is gone (a killed job; checked through
//!   `/proc/<pid>`, so on systems without `/proc` every lock counts as
//!   alive and must be removed by hand) is taken over with a warning. Under
//!   the lock, temporary files a killed job left (`.*.tmp-<pid>`) are
//!   removed.
//! - **Failures**: a file that cannot be read (or whose prediction fails)
//!   is reported and left without output or meta, so the next run tries it
//!   again; the others go on. Bad rows inside a file are error records, not
//!   failures ([`crate::input`]).
//! - **Exit codes** ([`DirReport::exit_code`]): [`EXIT_DONE`] (0) when at
//!   least one file was predicted and none failed, [`EXIT_NOTHING_TO_DO`]
//!   (3) when every file was already predicted, [`EXIT_FAILED`] (1) when a
//!   file failed or the job could not run (lock held, no model, no input
//!   folder). A usage error is 2 (clap's).

use std::path::{Path, PathBuf};

use mtl_core::hash::{Fingerprinter, sha256_file};
use mtl_core::{CoreError, FeatureSet, LabelSet};
use mtl_model::Bundle;
use mtl_model::bundle::{MODEL_JSON, TOKENIZER, WEIGHTS};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::input::{Format, InputOptions};
use crate::output::{FileSummary, OutputFormat};
use crate::{PREDICT_VERSION, PredictOptions, Predictor, predict_file};

pub const LOCK_FILE: &str = ".mtl-predict.lock";
pub const META_SUFFIX: &str = ".meta.json";

pub const EXIT_DONE: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NOTHING_TO_DO: u8 = 3;

/// A batch job.
pub struct DirOptions<'a> {
    pub model: &'a Path,
    pub input_dir: &'a Path,
    pub output_dir: &'a Path,
    pub input: InputOptions,
    pub predict: PredictOptions<'a>,
    /// What each output file holds (and so its extension).
    pub format: OutputFormat,
    /// Predict every file, even those already predicted.
    pub force: bool,
}

/// What a batch job did, file by file (names relative to the folders).
#[derive(Debug, Default)]
pub struct DirReport {
    pub predicted: Vec<(String, FileSummary)>,
    pub skipped: Vec<String>,
    /// Files that failed, with the reason.
    pub failed: Vec<(String, String)>,
    /// Files in the input folder that are not inputs (unknown extension).
    pub ignored: Vec<String>,
    /// Things worth telling, such as a stale lock taken over.
    pub warnings: Vec<String>,
}

impl DirReport {
    pub fn exit_code(&self) -> u8 {
        if !self.failed.is_empty() {
            EXIT_FAILED
        } else if self.predicted.is_empty() {
            EXIT_NOTHING_TO_DO
        } else {
            EXIT_DONE
        }
    }
}

/// The sidecar of one output file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub input: String,
    pub input_sha256: String,
    pub model: String,
    pub model_fingerprint: String,
    pub settings_fingerprint: String,
    pub predict_version: u32,
    pub summary: FileSummary,
}

/// SHA-256 over every file of a bundle: retraining, a new tokenizer or new
/// labels all change it. `features.json` may be absent (older bundles).
pub fn model_fingerprint(model: &Path) -> Result<String> {
    let mut fp = Fingerprinter::new();
    for name in [MODEL_JSON, WEIGHTS, TOKENIZER, LabelSet::FILE] {
        fp = fp.part(name, sha256_file(&model.join(name))?.as_bytes());
    }
    let features = model.join(FeatureSet::FILE);
    let features = if features.exists() {
        sha256_file(&features)?
    } else {
        "absent".into()
    };
    Ok(fp.part(FeatureSet::FILE, features.as_bytes()).finish())
}

/// The options that change the output records for the same input.
fn settings_fingerprint(opts: &DirOptions) -> String {
    let i = &opts.input;
    Fingerprinter::new()
        .part("predict_version", &PREDICT_VERSION.to_le_bytes())
        .part("format", i.format.map_or("auto", Format::name).as_bytes())
        .part("text_column", i.text_column.as_bytes())
        .part("id_column", i.id_column.as_deref().unwrap_or("").as_bytes())
        .part("strict", &[u8::from(i.strict)])
        .part("dataset", opts.predict.dataset.unwrap_or("").as_bytes())
        .part("segment", opts.predict.segment.name().as_bytes())
        .part("output_format", opts.format.name().as_bytes())
        .finish()
}

/// The exclusive lock of an output folder, released on drop.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

/// Whether a process with this id runs. Without `/proc` nothing can be
/// known, and a lock is better held too long than broken.
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        // Our own id in a lock we did not take: a previous job that had
        // the same id (pid namespaces restart numbering).
        return false;
    }
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

impl Lock {
    /// Takes `dir`'s lock; a stale lock is taken over and the warning
    /// returned.
    pub fn acquire(dir: &Path) -> Result<(Lock, Option<String>)> {
        use std::io::Write;
        let path = dir.join(LOCK_FILE);
        let mut warning = None;
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let written = writeln!(f, "{}", std::process::id()).and_then(|_| f.sync_all());
                    let lock = Lock { path: path.clone() };
                    written.map_err(|e| CoreError::io(&path, e))?;
                    return Ok((lock, warning));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let content = std::fs::read_to_string(&path).unwrap_or_default();
                    let pid = content.trim().parse::<u32>();
                    match pid {
                        Ok(pid) if !alive(pid) => {
                            warning = Some(format!(
                                "{}: stale lock of process {pid}, which no longer runs; taking it over",
                                path.display()
                            ));
                            // Another job may have taken it over already:
                            // only a lock still naming the dead process goes.
                            if std::fs::read_to_string(&path).unwrap_or_default() == content {
                                let _ = std::fs::remove_file(&path);
                            }
                        }
                        Ok(pid) => {
                            return Err(Error::Locked {
                                path,
                                holder: format!("process {pid}, which is running"),
                            });
                        }
                        Err(_) => {
                            return Err(Error::Locked {
                                path,
                                holder: format!("unreadable content {:?}", content.trim()),
                            });
                        }
                    }
                }
                Err(e) => return Err(CoreError::io(&path, e).into()),
            }
        }
        Err(Error::Locked {
            path,
            holder: "another job that took the stale lock over first".into(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The input files of `dir`, in name order, and the names it ignores.
fn inputs(dir: &Path, opts: &InputOptions) -> Result<(Vec<String>, Vec<String>)> {
    let entries = std::fs::read_dir(dir).map_err(|e| CoreError::io(dir, e))?;
    let (mut files, mut ignored) = (Vec::new(), Vec::new());
    for entry in entries {
        let entry = entry.map_err(|e| CoreError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().is_file() {
            continue;
        }
        if opts.format.is_some() || Format::from_path(Path::new(&name)).is_some() {
            files.push(name);
        } else {
            ignored.push(name);
        }
    }
    files.sort();
    ignored.sort();
    Ok((files, ignored))
}

/// Removes the temporary files a killed job left in `dir` (only call
/// under the lock).
fn remove_leftovers(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| CoreError::io(dir, e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(".tmp-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

pub fn output_path(output_dir: &Path, name: &str, format: OutputFormat) -> PathBuf {
    output_dir.join(format!("{name}.{}", format.extension()))
}

pub fn meta_path(output_dir: &Path, name: &str) -> PathBuf {
    output_dir.join(format!("{name}{META_SUFFIX}"))
}

/// Runs a batch job (see the module docs). An `Err` means the job could
/// not run at all; failures of single files are in the report.
pub fn run_dir(opts: &DirOptions) -> Result<DirReport> {
    if !opts.input_dir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: the input folder does not exist or is not a folder",
            opts.input_dir.display()
        )));
    }
    let out = opts.output_dir;
    std::fs::create_dir_all(out).map_err(|e| CoreError::io(out, e))?;
    // Outputs in the input folder would be read as inputs next time.
    if std::fs::canonicalize(out).ok() == std::fs::canonicalize(opts.input_dir).ok() {
        return Err(Error::Usage(format!(
            "{}: the output folder must differ from the input folder",
            out.display()
        )));
    }
    let (_lock, warning) = Lock::acquire(out)?;
    let mut report = DirReport {
        warnings: warning.into_iter().collect(),
        ..DirReport::default()
    };
    remove_leftovers(out)?;
    let (files, ignored) = inputs(opts.input_dir, &opts.input)?;
    report.ignored = ignored;
    let model_fp = model_fingerprint(opts.model)?;
    let settings_fp = settings_fingerprint(opts);

    let mut todo = Vec::new();
    for name in files {
        let input = opts.input_dir.join(&name);
        let hash = match sha256_file(&input) {
            Ok(h) => h,
            Err(e) => {
                report.failed.push((name, chain(&e)));
                continue;
            }
        };
        let done = !opts.force
            && output_path(out, &name, opts.format).is_file()
            && mtl_core::fsio::read_json::<Meta>(&meta_path(out, &name)).is_ok_and(|m| {
                m.input_sha256 == hash
                    && m.model_fingerprint == model_fp
                    && m.settings_fingerprint == settings_fp
            });
        if done {
            report.skipped.push(name);
        } else {
            todo.push((name, hash));
        }
    }
    if todo.is_empty() {
        return Ok(report);
    }

    let bundle = Bundle::load(opts.model, &opts.predict.device.open()?)?;
    let predictor = Predictor::new(&bundle, &opts.predict)?;
    for (name, hash) in todo {
        let meta = meta_path(out, &name);
        if meta.exists() {
            std::fs::remove_file(&meta).map_err(|e| CoreError::io(&meta, e))?;
        }
        let input = opts.input_dir.join(&name);
        let output = output_path(out, &name, opts.format);
        match predict_file(&predictor, &input, &output, &opts.input, opts.format) {
            Ok(summary) => {
                let m = Meta {
                    input: input.display().to_string(),
                    input_sha256: hash,
                    model: opts.model.display().to_string(),
                    model_fingerprint: model_fp.clone(),
                    settings_fingerprint: settings_fp.clone(),
                    predict_version: PREDICT_VERSION,
                    summary: summary.clone(),
                };
                mtl_core::fsio::write_json(&meta, &m)?;
                report.predicted.push((name, summary));
            }
            Err(e) => report.failed.push((name, chain(&e))),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let (lock, warning) = Lock::acquire(dir.path()).unwrap();
        assert!(warning.is_none());
        let content = std::fs::read_to_string(lock.path()).unwrap();
        assert_eq!(content.trim(), std::process::id().to_string());
        // Held by us (a live process to any other job): a second take
        // fails. Our own pid counts as stale, so write the parent's.
        std::fs::write(
            lock.path(),
            format!("{}\n", std::os::unix::process::parent_id()),
        )
        .unwrap();
        let err = Lock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(LOCK_FILE) && err.contains("is running"),
            "{err}"
        );
        drop(lock);
        assert!(!dir.path().join(LOCK_FILE).exists());
    }

    #[test]
    fn a_stale_lock_is_taken_over_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        // A pid beyond Linux's maximum (2^22) never runs.
        std::fs::write(dir.path().join(LOCK_FILE), "4194305\n").unwrap();
        let (lock, warning) = Lock::acquire(dir.path()).unwrap();
        let warning = warning.unwrap();
        assert!(
            warning.contains("4194305") && warning.contains("taking it over"),
            "{warning}"
        );
        let content = std::fs::read_to_string(lock.path()).unwrap();
        assert_eq!(content.trim(), std::process::id().to_string());
    }

    #[test]
    fn exit_codes_tell_done_nothing_and_failed_apart() {
        let mut r = DirReport::default();
        assert_eq!(r.exit_code(), EXIT_NOTHING_TO_DO);
        r.skipped.push("a.txt".into());
        assert_eq!(r.exit_code(), EXIT_NOTHING_TO_DO);
        r.predicted.push(("b.txt".into(), FileSummary::default()));
        assert_eq!(r.exit_code(), EXIT_DONE);
        r.failed.push(("c.csv".into(), "bad".into()));
        assert_eq!(r.exit_code(), EXIT_FAILED);
    }

    #[test]
    fn inputs_are_sorted_known_visible_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.jsonl", "a.txt", ".hidden.txt", "notes.md", "c.parquet"] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.txt")).unwrap();
        let (files, ignored) = inputs(dir.path(), &InputOptions::default()).unwrap();
        assert_eq!(files, ["a.txt", "b.jsonl", "c.parquet"]);
        assert_eq!(ignored, ["notes.md"]);
        let any = InputOptions {
            format: Some(Format::Lines),
            ..InputOptions::default()
        };
        assert_eq!(inputs(dir.path(), &any).unwrap().0.len(), 4);
    }
}
