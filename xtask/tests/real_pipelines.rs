//! Smoke runs of the shipped real-data pipelines: each `pipelines/*.toml`
//! that reads `$DATA_DIR` runs end to end, as `cargo xtask run` drives it,
//! on a slice of `../shared/datasets` (the first sentences or lines of each
//! file) with a tiny model and a few dozen steps. It checks what a recipe
//! change could break without a full training: the config still parses and
//! validates, every reader accepts its real files, the loss falls, and eval
//! writes a test score for every task.
//!
//! The data folder is `$MTL_DATA_DIR`, else `../shared/datasets` beside the
//! workspace; the test fails, naming it, when neither exists. Pipelines on
//! a pretrained encoder (`encoder = "bert"`) need weights that CI does not
//! download (`cargo xtask fetch-model minilm`); they are run when
//! `models/` holds them and listed as not run otherwise.

use std::path::{Path, PathBuf};

use xtask::pipeline::{self, RunOptions};

/// Sentences (CoNLL-U, CoNLL) or lines (TweetEval) kept of each file. The
/// training slice is large enough that every label of the small dev and
/// test slices occurs in it (the pipelines' unknown-label policies assume
/// the full training set); the slices are fixed, so this holds or fails the
/// same way on every run.
const TRAIN_ROWS: usize = 1500;
const EVAL_ROWS: usize = 40;
const STEPS: i64 = 120;

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("MTL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| pipeline::workspace_root().join("../shared/datasets"));
    assert!(
        dir.join("README.md").is_file(),
        "the real datasets are not at {} (set MTL_DATA_DIR)",
        dir.display()
    );
    dir
}

/// The first `n` blocks of a file whose blocks are separated by
/// whitespace-only lines (CoNLL-U sentences, CoNLL sentences).
fn first_blocks(text: &str, n: usize) -> String {
    let mut out = String::new();
    let mut blocks = 0;
    let mut in_block = false;
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            if in_block {
                blocks += 1;
                in_block = false;
                if blocks == n {
                    out.push_str(line);
                    break;
                }
            }
        } else {
            in_block = true;
        }
        out.push_str(line);
    }
    out
}

fn first_lines(text: &str, n: usize) -> String {
    text.split_inclusive('\n').take(n).collect()
}

/// Writes the slice of `$DATA_DIR/rel` (a dataset file of `format`) under
/// `to`, with its TweetEval companions.
fn slice_file(from: &Path, to: &Path, rel: &str, format: &str, rows: usize) {
    let src = from.join(rel);
    let dst = to.join(rel);
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    match format {
        "conllu" | "conll" => std::fs::write(&dst, first_blocks(&text, rows)).unwrap(),
        "lines" => {
            std::fs::write(&dst, first_lines(&text, rows)).unwrap();
            let labels = rel.replace("_text.txt", "_labels.txt");
            let l = std::fs::read_to_string(from.join(&labels)).unwrap();
            std::fs::write(to.join(&labels), first_lines(&l, rows)).unwrap();
            // The mapping sits beside the text or one folder up.
            for dir in [
                Path::new(rel).parent().unwrap(),
                Path::new(rel).parent().unwrap().parent().unwrap(),
            ] {
                let m = dir.join("mapping.txt");
                if from.join(&m).is_file() {
                    std::fs::create_dir_all(to.join(dir)).unwrap();
                    std::fs::copy(from.join(&m), to.join(&m)).unwrap();
                }
            }
        }
        other => panic!("no slicer for format `{other}` ({rel})"),
    }
}

/// The shipped pipelines that read real data, by file name.
fn real_pipelines() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(pipeline::workspace_root().join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("$DATA_DIR"))
        .collect();
    out.sort();
    out
}

/// `table[key]`, created as a table when missing.
fn section<'a>(table: &'a mut toml::Table, key: &str) -> &'a mut toml::Table {
    table
        .entry(key)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .unwrap()
}

/// The pipeline at `path` shrunk for a smoke run: its data sliced into
/// `tmp/data`, a tiny model, `STEPS` steps, runs under `tmp/runs`.
fn smoke_config(path: &Path, tmp: &Path, data: &Path) -> PathBuf {
    let text = std::fs::read_to_string(path).unwrap();
    let mut cfg: toml::Table = toml::from_str(&text).unwrap();
    let sliced = tmp.join("data");
    for ds in cfg["datasets"].as_array().unwrap() {
        let format = ds["format"].as_str().unwrap();
        for (split, file) in ds["files"].as_table().unwrap() {
            let rel = file.as_str().unwrap().strip_prefix("$DATA_DIR/").unwrap();
            let rows = if split == "train" {
                TRAIN_ROWS
            } else {
                EVAL_ROWS
            };
            slice_file(data, &sliced, rel, format, rows);
        }
    }
    // Pretrained paths are relative to the config's folder.
    let root = pipeline::workspace_root();
    for (sec, key) in [("tokenize", "pretrained"), ("model", "pretrained")] {
        if let Some(p) = cfg
            .get_mut(sec)
            .and_then(|s| s.as_table_mut())
            .and_then(|s| s.get_mut(key))
        {
            let abs = root.join("pipelines").join(p.as_str().unwrap());
            *p = toml::Value::String(abs.display().to_string());
        }
    }
    section(&mut cfg, "pipeline").insert(
        "runs_dir".into(),
        toml::Value::String(tmp.join("runs").display().to_string()),
    );
    let bert = cfg
        .get("model")
        .and_then(|m| m.get("encoder"))
        .is_some_and(|e| e.as_str() == Some("bert"));
    let tokenize = section(&mut cfg, "tokenize");
    if !bert {
        tokenize.insert("vocab_size".into(), toml::Value::Integer(600));
    }
    let model = section(&mut cfg, "model");
    if !bert {
        for key in ["embedding_dim", "hidden_dim"] {
            model.insert(key.into(), toml::Value::Integer(16));
        }
        model.insert("layers".into(), toml::Value::Integer(1));
        if model.contains_key("char_cnn") {
            let cnn: toml::Table = toml::from_str("char_dim = 8\nfilters = 8\nwidth = 3").unwrap();
            model.insert("char_cnn".into(), toml::Value::Table(cnn));
        }
    }
    let train = section(&mut cfg, "train");
    train.insert("epochs".into(), toml::Value::Integer(1_000));
    train.insert("max_steps".into(), toml::Value::Integer(STEPS));
    train.insert("eval_every".into(), toml::Value::Integer(STEPS / 2));
    train.insert("batch_size".into(), toml::Value::Integer(8));
    train.insert("learning_rate".into(), toml::Value::Float(0.01));
    train.remove("patience");
    let out = tmp.join(path.file_name().unwrap());
    std::fs::write(&out, toml::to_string(&cfg).unwrap()).unwrap();
    out
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

#[test]
fn every_real_pipeline_runs_end_to_end_on_a_slice_of_its_data() {
    let data = data_dir();
    let bins = pipeline::build_stage_binaries(true).unwrap();
    let pipelines = real_pipelines();
    let names: Vec<String> = pipelines
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["ewt", "tweeteval", "wnut17"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    let mut not_run = Vec::new();
    for path in &pipelines {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        if text.contains("encoder = \"bert\"")
            && !pipeline::workspace_root()
                .join("models/all-MiniLM-L6-v2/model.safetensors")
                .is_file()
        {
            not_run.push(name);
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let cfg_path = smoke_config(path, tmp.path(), &data);
        let runs = pipeline::run(&RunOptions {
            pipeline: cfg_path.clone(),
            data_dir: Some(tmp.path().join("data")),
            force: false,
            from: None,
            until: None,
            bin_dir: Some(bins.clone()),
            quiet: true,
        })
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert_eq!(runs.len(), 5, "{name}");
        let cfg =
            mtl_core::PipelineConfig::load(&cfg_path, Some(&tmp.path().join("data"))).unwrap();
        let run_dir = tmp.path().join("runs").join(&cfg.pipeline.name);

        // The loss falls: per task, the mean of its losses over the last
        // third of its steps is below that over the first third, on average
        // over the tasks (steps of different tasks have losses of different
        // scales, so the per-step objective alone says little).
        let log = std::fs::read_to_string(run_dir.join("train/log.jsonl")).unwrap();
        let mut per_task: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
        let mut steps = 0;
        for line in log.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let Some(tasks) = v.get("tasks").and_then(|t| t.as_object()) else {
                continue;
            };
            steps += 1;
            for (task, l) in tasks {
                per_task
                    .entry(task.clone())
                    .or_default()
                    .push(l.as_f64().unwrap());
            }
        }
        assert_eq!(steps, STEPS, "{name}");
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        let ratios: Vec<f64> = per_task
            .values()
            .filter(|l| l.len() >= 3)
            .map(|l| {
                let third = l.len() / 3;
                mean(&l[l.len() - third..]) / mean(&l[..third])
            })
            .collect();
        assert!(!ratios.is_empty(), "{name}: no task trained three steps");
        let ratio = mean(&ratios);
        assert!(
            ratio < 1.0,
            "{name}: last/first loss {ratio:.3} ({per_task:?})"
        );

        // Eval scored every task on test.
        let metrics = read_json(&run_dir.join("eval/metrics.json"));
        for t in &cfg.tasks {
            let s = &metrics["tasks"][&t.name]["splits"]["test"]["score"];
            let s = s
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: no test score for {}", t.name));
            assert!(s.is_finite(), "{name}/{}: {s}", t.name);
        }
    }
    eprintln!("not run (no pretrained weights in models/): {not_run:?}");
}
