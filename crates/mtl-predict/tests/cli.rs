use std::process::Command;

#[test]
fn help_documents_every_output_shape() {
    let out = Command::new(env!("CARGO_BIN_EXE_mtl-predict"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in [
        "--model",
        "--input",
        "classification",
        "multilabel",
        "\"probs\"",
        "regression",
        "--input-dir",
        "--output-dir",
        "--bench",
        "--text-column",
        "--id-column",
        "character (Unicode scalar) offsets",
        "Exit codes",
        "3  nothing to do",
        ".mtl-predict.lock",
        "--device",
        "--segment",
        "--pretokenized",
        "--output-format",
        "CoNLL-U output",
        "SpaceAfter=No",
    ] {
        assert!(text.contains(word), "missing {word} in:\n{text}");
    }
    // The help names the tuned thresholds and quotes the default.
    assert!(text.contains("thresholds.json), else 0.5"), "{text}");
    assert_eq!(mtl_model::MULTILABEL_THRESHOLD, 0.5);
}

/// A device the binary cannot use is a usage error (exit 2) that says why.
#[test]
fn a_bad_device_is_a_usage_error() {
    let mut cases = vec![("tpu", "--device `tpu` is not a device")];
    if !cfg!(feature = "cuda") {
        cases.push(("cuda:1", "rebuild with `--features cuda`"));
    }
    for (device, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_mtl-predict"))
            .args(["--model", "m", "--input", "i.txt", "--output", "o.jsonl"])
            .args(["--device", device])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn a_missing_bundle_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "hello\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mtl-predict"))
        .arg("--model")
        .arg(dir.path().join("nope"))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(dir.path().join("out.jsonl"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("nope"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!dir.path().join("out.jsonl").exists());
}
