//! The `mtl-clean` binary as a scheduler calls it.

use std::path::Path;
use std::process::{Command, Output};

fn mtl_clean(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mtl-clean"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_config(dir: &Path) -> String {
    std::fs::write(
        dir.join("reviews.jsonl"),
        concat!(
            r#"{"id":"r1","text":"Great <b>phone</b>","sentiment":"pos"}"#,
            "\n",
            r#"{"id":"r2","text":"Great phone","sentiment":"pos"}"#,
            "\n",
            r#"{"id":"r3","text":"Bad","#,
            "\n",
        ),
    )
    .unwrap();
    let config = dir.join("pipeline.toml");
    std::fs::write(
        &config,
        r#"
[pipeline]
name = "cli"

[[datasets]]
name = "reviews"
format = "jsonl"
files = { all = "reviews.jsonl" }
id = "id"

[[tasks]]
name = "sentiment"
dataset = "reviews"
column = "sentiment"
type = "classification"
"#,
    )
    .unwrap();
    config.to_string_lossy().into_owned()
}

#[test]
fn help_describes_the_stage() {
    let out = mtl_clean(&["--help"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("--config") && stdout.contains("--force"),
        "{stdout}"
    );
}

#[test]
fn missing_config_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let out = mtl_clean(&["--config", &missing.to_string_lossy()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nope.toml"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn malformed_config_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.toml");
    std::fs::write(&bad, "[pipeline\nname = \"x\"\n").unwrap();
    let out = mtl_clean(&["--config", &bad.to_string_lossy()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("broken.toml"), "{stderr}");
}

#[test]
fn missing_data_file_fails_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    std::fs::remove_file(dir.path().join("reviews.jsonl")).unwrap();
    let out = mtl_clean(&[
        "--config",
        &config,
        "--out",
        &dir.path().join("clean").to_string_lossy(),
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("reviews.jsonl") && stderr.contains("datasets[0].files.all"),
        "{stderr}"
    );
}

#[test]
fn happy_path_writes_outputs_then_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let clean = dir.path().join("clean");
    let out_arg = clean.to_string_lossy().into_owned();

    let out = mtl_clean(&["--config", &config, "--out", &out_arg]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("clean: ran"), "{stdout}");
    assert!(
        stdout.contains("reviews: read 3, kept 1, dropped 2 (duplicate 1, unparseable 1)"),
        "{stdout}"
    );
    for f in [
        "reviews.parquet",
        "quarantine.parquet",
        "report.json",
        "manifest.json",
    ] {
        assert!(clean.join(f).is_file(), "{f}");
    }

    let again = mtl_clean(&["--config", &config, "--out", &out_arg]);
    assert!(again.status.success());
    assert!(
        text(&again.stdout).contains("clean: cached"),
        "{}",
        text(&again.stdout)
    );
}
