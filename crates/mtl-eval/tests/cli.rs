use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mtl-eval"))
}

#[test]
fn help_lists_the_stage_arguments() {
    let out = bin().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--config",
        "--input",
        "--out",
        "--model",
        "--force",
        "--data-dir",
    ] {
        assert!(text.contains(flag), "missing {flag} in:\n{text}");
    }
}

#[test]
fn missing_tokenize_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("p.toml");
    let runs = dir.path().join("runs");
    std::fs::write(
        &config,
        format!(
            "[pipeline]\nname = \"p\"\nruns_dir = \"{}\"\n\n[[datasets]]\nname = \"d\"\nformat = \"jsonl\"\n\
             files = {{ all = \"d.jsonl\" }}\n\n[[tasks]]\nname = \"s\"\ndataset = \"d\"\ncolumn = \"l\"\n\
             type = \"classification\"\n",
            runs.display()
        ),
    )
    .unwrap();
    let out = bin().arg("--config").arg(&config).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let expected = runs.join("p").join("tokenize");
    assert!(
        err.contains(&expected.display().to_string()),
        "names the folder: {err}"
    );
    assert!(err.contains("mtl-tokenize"), "says what to run: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!runs.join("p").join("eval").exists(), "nothing written");
}

/// A device the binary cannot use fails before anything is read, from the
/// flag or from `MTL_DEVICE`, and says why.
#[test]
fn a_bad_device_fails_with_the_reason() {
    let flag = bin()
        .args(["--config", "missing.toml", "--device", "tpu"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&flag.stderr);
    assert!(!flag.status.success());
    assert!(err.contains("--device `tpu` is not a device"), "{err}");
    if !cfg!(feature = "cuda") {
        let env = bin()
            .args(["--config", "missing.toml"])
            .env("MTL_DEVICE", "cuda:1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&env.stderr);
        assert!(!env.status.success());
        assert!(
            err.contains("MTL_DEVICE: this binary was built without the `cuda` feature"),
            "{err}"
        );
    }
}
