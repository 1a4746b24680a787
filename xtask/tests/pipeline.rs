//! The whole pipeline, end to end, as `cargo xtask run` drives it: the real
//! stage binaries on a slice of the sample with a tiny model.

use std::path::{Path, PathBuf};

use mtl_core::{Manifest, Stage};
use xtask::pipeline::{self, RunOptions, StageRun};

fn config(data: &Path, runs: &Path, epochs: usize, vocab: usize) -> String {
    format!(
        r#"
[pipeline]
name = "e2e"
seed = 5
runs_dir = "{runs}"

[[datasets]]
name = "reviews"
format = "jsonl"
files = {{ all = "{data}" }}
id = "id"

[datasets.clean]
mask_urls = true

[[tasks]]
name = "sentiment"
dataset = "reviews"
column = "sentiment"
type = "classification"

[[tasks]]
name = "topic"
dataset = "reviews"
column = "topic"
type = "classification"

[[tasks]]
name = "entities"
dataset = "reviews"
column = "ner"
type = "spans"

# A 300-row slice can meet a rare tag only in dev or test.
[split.unknown_labels]
policy = "map-to"
label = "O"

[tokenize]
vocab_size = {vocab}
max_length = 48

[model]
embedding_dim = 16
hidden_dim = 16

[train]
epochs = {epochs}
batch_size = 16
learning_rate = 0.01
"#,
        runs = runs.display(),
        data = data.display()
    )
}

/// The first 300 rows of the sample, written into `dir`.
fn sample_slice(dir: &Path) -> PathBuf {
    let sample = pipeline::workspace_root().join("data/sample/reviews.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&sample)
        .unwrap()
        .lines()
        .take(300)
        .map(String::from)
        .collect();
    let data = dir.join("reviews.jsonl");
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();
    data
}

fn ran(runs: &[StageRun]) -> Vec<&'static str> {
    runs.iter()
        .filter(|r| !r.cached)
        .map(|r| r.stage.name())
        .collect()
}

#[test]
fn pipeline_runs_caches_and_invalidates() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_slice(tmp.path());
    let runs_dir = tmp.path().join("runs");
    let cfg_path = tmp.path().join("e2e.toml");
    std::fs::write(&cfg_path, config(&data, &runs_dir, 2, 400)).unwrap();

    let bin_dir = pipeline::build_stage_binaries(true).unwrap();
    let predict_bin = bin_dir.join("mtl-predict");
    let opts = RunOptions {
        pipeline: cfg_path.clone(),
        data_dir: None,
        force: false,
        from: None,
        until: None,
        bin_dir: Some(bin_dir),
        quiet: true,
    };

    // First run: every stage runs.
    let first = pipeline::run(&opts).unwrap();
    assert_eq!(ran(&first), ["clean", "split", "tokenize", "train", "eval"]);

    // Manifests exist, list files that exist with their sizes, and chain.
    let run_dir: PathBuf = runs_dir.join("e2e");
    let manifests: Vec<Manifest> = Stage::ALL
        .iter()
        .map(|s| Manifest::read(&run_dir.join(s.name())).unwrap())
        .collect();
    for (m, s) in manifests.iter().zip(Stage::ALL) {
        assert_eq!(m.stage, s);
        assert!(!m.outputs.is_empty(), "{s} lists no outputs");
        for (file, info) in &m.outputs {
            let len = std::fs::metadata(run_dir.join(s.name()).join(file))
                .unwrap()
                .len();
            assert_eq!(len, info.bytes, "{s}/{file}");
        }
        assert!(m.timings_ms.contains_key("total"));
    }
    let fp = |s: Stage| manifests[s as usize].fingerprint.clone();
    let input_fps = |s: Stage| -> Vec<String> {
        manifests[s as usize]
            .inputs
            .iter()
            .map(|i| i.fingerprint.clone())
            .collect()
    };
    assert_eq!(input_fps(Stage::Split), [fp(Stage::Clean)]);
    assert_eq!(input_fps(Stage::Tokenize), [fp(Stage::Split)]);
    assert_eq!(input_fps(Stage::Train), [fp(Stage::Tokenize)]);
    assert_eq!(
        input_fps(Stage::Eval),
        [fp(Stage::Tokenize), fp(Stage::Train)]
    );
    // Row counts agree between clean, split and tokenize.
    let clean_rows = manifests[0].rows["reviews"];
    let split_rows: u64 = ["train", "dev", "test"]
        .iter()
        .map(|s| manifests[1].rows[*s])
        .sum();
    assert_eq!(clean_rows, split_rows);
    for s in ["train", "dev", "test"] {
        assert_eq!(manifests[1].rows[s], manifests[2].rows[s], "{s}");
    }

    // Metrics: every task, a score and a baseline in [0, 1].
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("eval/metrics.json")).unwrap()).unwrap();
    for task in ["sentiment", "topic", "entities"] {
        let t = &metrics["tasks"][task];
        for key in ["score", "baseline"] {
            let v = t[key].as_f64().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&v), "{task}.{key} = {v}");
        }
        assert!(t["metric"].is_string());
    }
    // Train chose its weights on the headline eval reports, computed the
    // same way: its best dev scores are eval's dev scores of those weights
    // (entity F1 for the spans, macro-F1 for the classifications).
    let train_report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("train/report.json")).unwrap()).unwrap();
    for task in ["sentiment", "topic", "entities"] {
        let t = &metrics["tasks"][task];
        assert_eq!(train_report["dev_metric"][task], t["metric"], "{task}");
        let selected = train_report["best_dev_score"][task].as_f64().unwrap();
        let reported = t["splits"]["dev"]["score"].as_f64().unwrap();
        assert!(
            (selected - reported).abs() < 1e-9,
            "{task}: train selected on {selected}, eval reports {reported}"
        );
    }
    assert!(run_dir.join("train/model/model.safetensors").exists());

    // The bundle alone serves every task on raw text.
    let texts = tmp.path().join("texts.txt");
    std::fs::write(
        &texts,
        "The  <b>battery</b> died after two days &amp; support never replied.\nGreat screen!\n",
    )
    .unwrap();
    let preds = tmp.path().join("preds.jsonl");
    let status = std::process::Command::new(&predict_bin)
        .arg("--model")
        .arg(run_dir.join("train/model"))
        .arg("--input")
        .arg(&texts)
        .arg("--output")
        .arg(&preds)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let preds: Vec<serde_json::Value> = std::fs::read_to_string(&preds)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(preds.len(), 2);
    let first = &preds[0];
    // Cleaning was replayed: markup and entities are gone from the words.
    assert_eq!(first["words"].as_array().unwrap().len(), 10, "{first}");
    assert_eq!(first["words"][1], "battery");
    for task in ["sentiment", "topic"] {
        assert!(first[task]["label"].is_string(), "{first}");
        let p = first[task]["prob"].as_f64().unwrap();
        assert!(p > 0.0 && p <= 1.0);
    }
    assert_eq!(first["entities"]["tags"].as_array().unwrap().len(), 10);
    assert!(first["entities"]["spans"].is_array());

    // Second run: nothing changed, everything cached.
    let second = pipeline::run(&opts).unwrap();
    assert!(ran(&second).is_empty(), "{second:?}");

    // A training change re-runs train and eval only.
    std::fs::write(&cfg_path, config(&data, &runs_dir, 3, 400)).unwrap();
    assert_eq!(ran(&pipeline::run(&opts).unwrap()), ["train", "eval"]);

    // A tokenizer change re-runs tokenize and everything after it.
    std::fs::write(&cfg_path, config(&data, &runs_dir, 3, 300)).unwrap();
    assert_eq!(
        ran(&pipeline::run(&opts).unwrap()),
        ["tokenize", "train", "eval"]
    );

    // New data re-runs everything.
    let text = std::fs::read_to_string(&data).unwrap();
    let fewer: Vec<&str> = text.lines().take(280).collect();
    std::fs::write(&data, fewer.join("\n") + "\n").unwrap();
    assert_eq!(
        ran(&pipeline::run(&opts).unwrap()),
        ["clean", "split", "tokenize", "train", "eval"]
    );

    // --from and --until select and force stages.
    let partial = RunOptions {
        from: Some(Stage::Split),
        until: Some(Stage::Tokenize),
        ..opts.clone()
    };
    let r = pipeline::run(&partial).unwrap();
    assert_eq!(
        r.iter().map(|r| r.stage.name()).collect::<Vec<_>>(),
        ["split", "tokenize"]
    );
    assert!(r.iter().all(|r| !r.cached));
}

#[test]
fn a_bad_config_names_the_file_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bad.toml");
    std::fs::write(
        &cfg,
        "[pipeline]\nname = \"x\"\n[train]\nepochs = \"many\"\n",
    )
    .unwrap();
    let opts = RunOptions {
        pipeline: cfg,
        data_dir: None,
        force: false,
        from: None,
        until: None,
        bin_dir: Some(tmp.path().to_path_buf()),
        quiet: true,
    };
    let err = format!("{:#}", pipeline::run(&opts).unwrap_err());
    assert!(err.contains("bad.toml") && err.contains("epochs"), "{err}");
}

/// The sample slice trains end to end with each from-scratch encoder (and
/// the BiLSTM with character-CNN word features): every stage runs, the
/// training loss falls, and eval scores every task. The pretrained `bert`
/// encoder needs weights that CI does not fetch; mtl-model tests it on a
/// tiny BERT the test writes itself, and `pipelines/sample-minilm.toml`
/// runs it on the real one.
#[test]
fn the_sample_trains_with_each_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    let data = sample_slice(tmp.path());
    let bin_dir = pipeline::build_stage_binaries(true).unwrap();
    let variants = [
        ("bigru", "encoder = \"bigru\"\n", ""),
        ("transformer", "encoder = \"transformer\"\nheads = 2\n", ""),
        (
            "bilstm-chars",
            "char_cnn = { char_dim = 8, filters = 8 }\n",
            "char_ids = true\n",
        ),
    ];
    for (name, model, tokenize) in variants {
        let runs_dir = tmp.path().join(format!("runs-{name}"));
        let cfg = config(&data, &runs_dir, 3, 400)
            .replacen("[model]\n", &format!("[model]\n{model}"), 1)
            .replacen("[tokenize]\n", &format!("[tokenize]\n{tokenize}"), 1);
        let cfg_path = tmp.path().join(format!("{name}.toml"));
        std::fs::write(&cfg_path, cfg).unwrap();
        let opts = RunOptions {
            pipeline: cfg_path,
            data_dir: None,
            force: false,
            from: None,
            until: None,
            bin_dir: Some(bin_dir.clone()),
            quiet: true,
        };
        let runs = pipeline::run(&opts).unwrap();
        assert_eq!(
            ran(&runs),
            ["clean", "split", "tokenize", "train", "eval"],
            "{name}"
        );
        let run_dir = runs_dir.join("e2e");
        let model: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run_dir.join("train/model/model.json")).unwrap())
                .unwrap();
        let spec = model.to_string();
        let kind = name.split('-').next().unwrap();
        assert!(spec.contains(&format!("\"{kind}\"")), "{name}: {spec}");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run_dir.join("train/report.json")).unwrap())
                .unwrap();
        let first = report["first_loss"].as_f64().unwrap();
        let last = report["last_epoch_loss"].as_f64().unwrap();
        assert!(last < first, "{name}: loss {first} → {last}");
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run_dir.join("eval/metrics.json")).unwrap())
                .unwrap();
        for task in ["sentiment", "topic", "entities"] {
            let v = metrics["tasks"][task]["score"].as_f64().unwrap_or(-1.0);
            assert!((0.0..=1.0).contains(&v), "{name}: {task} = {v}");
        }
    }
}
