//! The binary: help text and a clear error without upstream output.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mtl-tokenize"))
}

#[test]
fn help_lists_the_stage_arguments() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--config", "--input", "--out", "--force", "--data-dir"] {
        assert!(text.contains(flag), "{flag} missing from:\n{text}");
    }
}

#[test]
fn missing_split_manifest_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("p.toml");
    std::fs::write(
        &config,
        "[pipeline]\nname = \"p\"\n[[datasets]]\nname = \"d\"\nformat = \"jsonl\"\nfiles = { all = \"d.jsonl\" }\n\
         [[tasks]]\nname = \"s\"\ndataset = \"d\"\ncolumn = \"label\"\ntype = \"classification\"\n",
    )
    .unwrap();
    let input = dir.path().join("nothing-here");
    std::fs::create_dir(&input).unwrap();
    let out = bin()
        .arg("--config")
        .arg(&config)
        .arg("--input")
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("tok"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing-here"), "names the folder: {err}");
    assert!(
        err.contains("`split`") && err.contains("mtl-split"),
        "says what to run: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!dir.path().join("tok").exists());
}
