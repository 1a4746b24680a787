//! The binary: a run prints the manifest line and the summary, a cached run
//! prints the summary too, a dev carved out of train is announced, and a
//! missing clean folder is a clear error.

mod common;

use std::process::Command;

use common::*;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mtl-split"))
}

#[test]
fn run_prints_the_summary_even_when_cached() {
    let root = tempfile::tempdir().unwrap();
    let t = Table::new("a", 50).class("sent", |i| Some(["pos", "neg"][i % 2].into()));
    let clean = clean_dir(root.path(), &[t], "cli");
    let config = root.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            "{HEADER}{}{}",
            dataset("a", false),
            task("sent", "a", "classification", "")
        ),
    )
    .unwrap();
    let out = root.path().join("split");
    for _ in 0..2 {
        let o = bin()
            .arg("--config")
            .arg(&config)
            .arg("--input")
            .arg(&clean)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for want in [
            "rows: train ",
            "task sent (classification)",
            "leakage: 0 text(s)",
        ] {
            assert!(stdout.contains(want), "`{want}` missing:\n{stdout}");
        }
    }
    assert!(out.join("features.json").exists());
}

#[test]
fn a_dev_carved_from_train_is_announced() {
    let root = tempfile::tempdir().unwrap();
    let t = Table::new("a", 100)
        .split(|i| Some(if i % 5 == 0 { "test" } else { "train" }))
        .class("sent", |i| Some(["pos", "neg"][i % 2].into()));
    let clean = clean_dir(root.path(), &[t], "cli-carve");
    let config = root.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            "{HEADER}[[datasets]]\nname = \"a\"\nformat = \"jsonl\"\n\
             files = {{ train = \"a_train.jsonl\", test = \"a_test.jsonl\" }}\n{}",
            task("sent", "a", "classification", "")
        ),
    )
    .unwrap();
    let o = bin()
        .arg("--config")
        .arg(&config)
        .arg("--input")
        .arg(&clean)
        .arg("--out")
        .arg(root.path().join("split"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = "dataset a: no dev split given; dev carved from train: ";
    assert!(stdout.contains(want), "`{want}` missing:\n{stdout}");
    assert!(
        stdout.contains(" of 80 rows (split.dev_from_train = 0.1)"),
        "{stdout}"
    );
}

#[test]
fn missing_clean_output_is_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            "{HEADER}{}{}",
            dataset("a", false),
            task("sent", "a", "classification", "")
        ),
    )
    .unwrap();
    let input = root.path().join("nothing-here");
    std::fs::create_dir(&input).unwrap();
    let o = bin()
        .arg("--config")
        .arg(&config)
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(root.path().join("split"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("nothing-here") && err.contains("mtl-clean"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
