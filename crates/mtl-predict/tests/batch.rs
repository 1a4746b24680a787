//! The CLI's modes end to end: one file with error records, the batch mode
//! (incremental by content hash and model, atomic outputs, the lock, exit
//! codes) and the throughput measurement.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mtl-predict");

struct Job {
    root: tempfile::TempDir,
    model: PathBuf,
}

impl Job {
    fn new() -> Job {
        let root = tempfile::tempdir().unwrap();
        let model = common::bundle(root.path(), None);
        let input = root.path().join("in");
        std::fs::create_dir(&input).unwrap();
        std::fs::write(input.join("a.txt"), "the tower\n\nin paris\n").unwrap();
        std::fs::write(
            input.join("b.jsonl"),
            "{\"id\": \"x1\", \"text\": \"we flew\"}\nnot json\n{\"id\": \"x3\", \"text\": \"to rome\"}\n",
        )
        .unwrap();
        std::fs::write(input.join("c.csv"), "id,text\n7,\"great, fine\"\n8,ok\n").unwrap();
        std::fs::write(input.join("notes.md"), "not an input").unwrap();
        Job { root, model }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.path().join(p)
    }

    fn batch(&self, extra: &[&str], env: Option<(&str, &str)>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.root.path())
            .arg("--model")
            .arg(&self.model)
            .arg("--input-dir")
            .arg(self.path("in"))
            .arg("--output-dir")
            .arg(self.path("out"))
            .arg("--id-column")
            .arg("id")
            .args(extra);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn batch_predicts_every_input_then_has_nothing_to_do() {
    let job = Job::new();
    // Plain text has no id column: give ids only to the tables.
    std::fs::remove_file(job.path("in/a.txt")).unwrap();
    let out = job.batch(&[], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("predicted b.jsonl"), "{stdout}");
    assert!(stdout.contains("ignored notes.md"), "{stdout}");
    assert_eq!(
        listing(&job.path("out")),
        [
            "b.jsonl.jsonl",
            "b.jsonl.meta.json",
            "c.csv.jsonl",
            "c.csv.meta.json"
        ]
    );

    let b = records(&job.path("out/b.jsonl.jsonl"));
    assert_eq!(b.len(), 3);
    assert_eq!(
        (b[0]["id"].clone(), b[0]["line"].clone()),
        ("x1".into(), 1.into())
    );
    assert!(b[0]["mood"]["label"].is_string() && b[0]["ents"]["tags"].is_array());
    assert_eq!(b[1]["line"], 2);
    assert!(
        b[1]["error"].as_str().unwrap().contains("invalid JSON"),
        "{}",
        b[1]
    );
    assert!(b[1].get("mood").is_none());
    assert_eq!(b[2]["id"], "x3");
    let c = records(&job.path("out/c.csv.jsonl"));
    assert_eq!(
        (c[0]["id"].clone(), c[0]["line"].clone()),
        ("7".into(), 2.into())
    );
    assert_eq!(c[0]["text"], "great, fine");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(job.path("out/c.csv.meta.json")).unwrap())
            .unwrap();
    assert_eq!(
        meta["input_sha256"],
        mtl_core::hash::sha256_file(&job.path("in/c.csv")).unwrap()
    );
    assert_eq!(meta["summary"]["rows"], 2);

    let before = std::fs::metadata(job.path("out/c.csv.jsonl"))
        .unwrap()
        .modified()
        .unwrap();
    let again = job.batch(&[], None);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again.stderr));
    let stdout = text(&again.stdout);
    assert!(
        stdout.contains("skipped b.jsonl") && stdout.contains("skipped c.csv"),
        "{stdout}"
    );
    let after = std::fs::metadata(job.path("out/c.csv.jsonl"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(before, after, "a skipped file is not rewritten");
    assert!(
        !job.path("out/.mtl-predict.lock").exists(),
        "the lock is released"
    );

    // --force predicts everything again.
    let forced = job.batch(&["--force"], None);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced.stderr));
}

#[test]
fn a_changed_file_or_a_new_model_is_predicted_again() {
    let job = Job::new();
    std::fs::remove_file(job.path("in/a.txt")).unwrap();
    assert_eq!(job.batch(&[], None).status.code(), Some(0));
    std::fs::write(job.path("in/c.csv"), "id,text\n7,fine\n8,ok\n9,more rows\n").unwrap();
    let out = job.batch(&[], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("predicted c.csv") && stdout.contains("skipped b.jsonl"),
        "{stdout}"
    );
    assert_eq!(records(&job.path("out/c.csv.jsonl")).len(), 3);

    // A retrained model (other weights) invalidates every output.
    common::bundle(job.root.path(), Some("B-LOC"));
    let out = job.batch(&[], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("predicted b.jsonl") && stdout.contains("predicted c.csv"),
        "{stdout}"
    );
    assert_eq!(job.batch(&[], None).status.code(), Some(3));
}

#[test]
fn a_lock_held_by_a_running_process_stops_the_job() {
    let job = Job::new();
    std::fs::create_dir(job.path("out")).unwrap();
    let lock = job.path("out/.mtl-predict.lock");
    // This test process is alive and is not the job.
    std::fs::write(&lock, format!("{}\n", std::process::id())).unwrap();
    let out = job.batch(&[], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(".mtl-predict.lock")
            && err.contains(&format!("process {}", std::process::id()))
            && err.contains("another mtl-predict job"),
        "{err}"
    );
    assert_eq!(
        listing(&job.path("out")),
        [".mtl-predict.lock"],
        "nothing written"
    );
    assert!(lock.exists(), "another job's lock is left alone");
}

#[test]
fn a_crash_mid_file_leaves_no_output_and_the_next_run_recovers() {
    let job = Job::new();
    let lines: String = (0..40).map(|i| format!("line {i} in paris\n")).collect();
    std::fs::write(job.path("in/a.txt"), lines).unwrap();
    std::fs::remove_file(job.path("in/b.jsonl")).unwrap();
    std::fs::remove_file(job.path("in/c.csv")).unwrap();
    // Plain text has no id column: this job runs without one.
    let run = |env| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(job.root.path())
            .arg("--model")
            .arg(&job.model)
            .arg("--input-dir")
            .arg(job.path("in"))
            .arg("--output-dir")
            .arg(job.path("out"));
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let crashed = run(Some(("MTL_PREDICT_TEST_CRASH_AFTER", "5")));
    assert_eq!(
        crashed.status.code(),
        Some(137),
        "{}",
        text(&crashed.stderr)
    );
    let left = listing(&job.path("out"));
    assert!(
        !left
            .iter()
            .any(|n| n == "a.txt.jsonl" || n == "a.txt.meta.json"),
        "{left:?}"
    );
    let partial: Vec<&String> = left.iter().filter(|n| n.contains(".tmp-")).collect();
    assert_eq!(partial.len(), 1, "the crash hit mid-file: {left:?}");
    let partial_rows = std::fs::read_to_string(job.path("out").join(partial[0])).unwrap();
    assert_eq!(partial_rows.lines().count(), 5);
    assert!(
        left.iter().any(|n| n == ".mtl-predict.lock"),
        "a killed job leaves its lock"
    );

    let next = run(None);
    assert_eq!(next.status.code(), Some(0), "{}", text(&next.stderr));
    let err = text(&next.stderr);
    assert!(
        err.contains("stale lock") && err.contains("taking it over"),
        "{err}"
    );
    assert_eq!(
        listing(&job.path("out")),
        ["a.txt.jsonl", "a.txt.meta.json"]
    );
    let rows = records(&job.path("out/a.txt.jsonl"));
    assert_eq!(rows.len(), 40);
    assert_eq!(
        (rows[39]["id"].clone(), rows[39]["line"].clone()),
        (40.into(), 40.into())
    );
}

#[test]
fn a_file_that_cannot_be_read_fails_alone() {
    let job = Job::new();
    std::fs::remove_file(job.path("in/a.txt")).unwrap();
    std::fs::write(job.path("in/d.csv"), "id,body\n1,hello\n").unwrap();
    let out = job.batch(&[], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("failed d.csv") && err.contains("`text`") && err.contains("`body`"),
        "{err}"
    );
    let names = listing(&job.path("out"));
    assert!(names.contains(&"c.csv.jsonl".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("d.csv")), "{names:?}");
    // The failed file is tried again, the others are done: still failed.
    assert_eq!(job.batch(&[], None).status.code(), Some(1));
    std::fs::write(job.path("in/d.csv"), "id,text\n1,hello\n").unwrap();
    assert_eq!(job.batch(&[], None).status.code(), Some(0));
    assert_eq!(job.batch(&[], None).status.code(), Some(3));
}

#[test]
fn one_file_mode_writes_error_records_or_fails_when_strict() {
    let job = Job::new();
    let output = job.path("b.out.jsonl");
    let run = |strict: bool| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--model")
            .arg(&job.model)
            .arg("--input")
            .arg(job.path("in/b.jsonl"))
            .arg("--output")
            .arg(&output)
            .args(["--id-column", "id"]);
        if strict {
            cmd.arg("--strict");
        }
        cmd.output().unwrap()
    };
    let out = run(false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 rows (1 error records)"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(records(&output).len(), 3);
    std::fs::remove_file(&output).unwrap();
    let out = run(true);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("b.jsonl:2:") && err.contains("invalid JSON"),
        "{err}"
    );
    assert!(!output.exists());
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(BIN)
        .args(["--model", "m", "--input", "x.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = Command::new(BIN)
        .args([
            "--model", "a", "--model", "b", "--input", "x", "--output", "y",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn bench_reports_rows_per_second_per_model_and_in_total() {
    let job = Job::new();
    let other = tempfile::tempdir().unwrap();
    let second = common::bundle(other.path(), Some("O"));
    let out = Command::new(BIN)
        .arg("--bench")
        .arg("--model")
        .arg(&job.model)
        .arg("--model")
        .arg(&second)
        .arg("--input")
        .arg(job.path("in/a.txt"))
        .args(["--passes", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("model") || l.starts_with("total"))
        .collect();
    assert!(stdout.contains("rows/s"), "{stdout}");
    let total = stdout
        .lines()
        .find(|l| l.starts_with("total"))
        .expect(&stdout);
    let cols: Vec<&str> = total.split_whitespace().collect();
    assert_eq!(cols[1], "4", "two bundles of two tasks: {total}");
    assert_eq!(cols[2], "4", "two texts, two passes: {total}");
    assert!(cols[5].parse::<f64>().unwrap() > 0.0, "{total}");
    assert!(rows.len() >= 3, "{stdout}");
}
