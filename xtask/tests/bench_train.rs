//! `cargo xtask bench train` on the shipped EWT recipe as it ships
//! (character CNN, word dropout, `patience`), on a slice of
//! `../shared/datasets` and a few steps. It checks that the benchmark
//! accepts the recipe without leaving anything out, that mtl-train trains
//! the model with its character CNN (its parameter count is the formula's,
//! CNN included), and that the peer's spec describes that model: the
//! bundle's sizes, word dropout's token ids from the bundle's tokenizer,
//! and `patience`.
//!
//! The PyTorch peer runs too where `bench/out/venv` already imports torch
//! (a machine that ran the benchmark once): then both tools must train the
//! same number of steps on a model of the same parameter count, and the
//! peer's model running mtl-train's trained weights must score what
//! mtl-eval scores. CI has no torch and installs none (a download of
//! gigabytes); there the peer's part is named as not run.

use std::path::{Path, PathBuf};
use std::process::Command;

use mtl_core::{PipelineConfig, Stage};
use xtask::bench::train::{self, MTL_TRAIN, PYTORCH, Setup, TrainBench};
use xtask::pipeline;

/// Sentences of the training file and of dev and test: enough that every
/// dev and test label occurs in train (as in `real_pipelines.rs`).
const TRAIN_ROWS: usize = 1500;
const EVAL_ROWS: usize = 40;
const STEPS: usize = 6;
const EWT: &str = "ud_english_ewt";

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("MTL_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| pipeline::workspace_root().join("../shared/datasets"));
    assert!(
        dir.join(EWT).is_dir(),
        "the EWT treebank is not at {} (set MTL_DATA_DIR)",
        dir.join(EWT).display()
    );
    dir
}

/// The first `n` sentences of a CoNLL-U file.
fn first_sentences(text: &str, n: usize) -> String {
    let mut out = String::new();
    let mut done = 0;
    for block in text.split_inclusive("\n\n") {
        if done == n {
            break;
        }
        out.push_str(block);
        done += usize::from(!block.trim().is_empty());
    }
    out
}

/// `data/ud_english_ewt/` with the first sentences of each split.
fn slice_ewt(from: &Path, to: &Path) {
    let dir = to.join(EWT);
    std::fs::create_dir_all(&dir).unwrap();
    for (split, rows) in [
        ("train", TRAIN_ROWS),
        ("dev", EVAL_ROWS),
        ("test", EVAL_ROWS),
    ] {
        let name = format!("en_ewt-ud-{split}.conllu");
        let text = std::fs::read_to_string(from.join(EWT).join(&name)).unwrap();
        std::fs::write(dir.join(&name), first_sentences(&text, rows)).unwrap();
    }
}

fn peer_has_torch(root: &Path) -> bool {
    Command::new(root.join("bench/out/venv/bin/python"))
        .args(["-c", "import torch, pyarrow, numpy"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn u(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Trainable parameters of a bilstm tagger from its bundle's `spec`, as
/// `crates/mtl-model` builds it: embeddings, character CNN (embeddings,
/// `width * char_dim` by `filters` weights, a bias per filter), per layer
/// and direction an LSTM with one bias per gate, one linear head per task.
fn parameters_of(spec: &serde_json::Value) -> u64 {
    let enc = &spec["encoder"];
    let (e, h) = (u(&enc["embedding_dim"]), u(&enc["hidden_dim"]));
    let mut n = u(&enc["vocab_size"]) * e;
    let mut input = e;
    let cnn = &enc["char_cnn"];
    if !cnn.is_null() {
        let (d, f) = (u(&cnn["char_dim"]), u(&cnn["filters"]));
        n += u(&cnn["vocab_size"]) * d + u(&cnn["width"]) * d * f + f;
        input += f;
    }
    for _ in 0..u(&enc["layers"]) {
        n += 2 * (input * 4 * h + h * 4 * h + 4 * h);
        input = 2 * h;
    }
    for t in spec["tasks"].as_array().unwrap() {
        n += (2 * h + 1) * u(&t["num_labels"]);
    }
    n
}

#[test]
fn the_shipped_ewt_recipe_is_benchmarked_with_its_character_cnn() {
    let root = pipeline::workspace_root();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    slice_ewt(&data_dir(), &data);
    let with_peer = peer_has_torch(&root);
    let setup = Setup {
        dir: tmp.path().join("bench"),
        max_steps: Some(STEPS),
        bin_dir: Some(pipeline::build_stage_binaries(true).unwrap()),
        ..Setup::shipped()
    };
    let opts = TrainBench {
        data_dir: Some(data.clone()),
        epochs: 1,
        skip_peer: !with_peer,
        quiet: true,
    };
    let results = train::train_in(&opts, &setup).unwrap();
    eprintln!("{}", results.render());

    // The benchmark's pipeline is the recipe with nothing left out.
    let shipped = PipelineConfig::load(&root.join(train::PIPELINE), Some(&data)).unwrap();
    let cfg = PipelineConfig::load(&setup.dir.join("pipeline.toml"), Some(&data)).unwrap();
    assert_eq!(cfg.model.char_cnn, shipped.model.char_cnn);
    assert_eq!(cfg.model.hidden_dim, shipped.model.hidden_dim);
    assert_eq!(cfg.train.word_dropout, shipped.train.word_dropout);
    assert_eq!(cfg.train.patience, shipped.train.patience);
    assert_eq!(cfg.train.max_steps, Some(STEPS));
    assert_eq!(results.max_steps, Some(STEPS));
    // Tasks the peer has no head for (a dependency parser) are left out of
    // both tools and named; the tagging tasks all stay.
    let tagging: Vec<&str> = shipped
        .tasks
        .iter()
        .filter(|t| train::task_mirrored(t.kind, t.crf))
        .map(|t| t.name.as_str())
        .collect();
    assert!(!tagging.is_empty());
    assert_eq!(
        cfg.tasks
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        tagging
    );
    assert_eq!(results.left_out.len(), shipped.tasks.len() - tagging.len());

    // mtl-train trained the recipe's model, character CNN included.
    let run = cfg.run_dir();
    let bundle = run.join(Stage::Train.name()).join("model");
    let model = read_json(&bundle.join("model.json"));
    let cnn = &model["spec"]["encoder"]["char_cnn"];
    let want = shipped
        .model
        .char_cnn
        .expect("the EWT recipe has a char_cnn");
    assert_eq!(
        (u(&cnn["char_dim"]), u(&cnn["filters"]), u(&cnn["width"])),
        (want.char_dim as u64, want.filters as u64, want.width as u64),
        "{cnn}"
    );
    let mtl = &results.tools[0];
    assert_eq!(mtl.tool, MTL_TRAIN);
    assert_eq!(mtl.steps, STEPS as u64);
    assert_eq!(mtl.parameters, parameters_of(&model["spec"]));

    // The peer's spec is that model and that training.
    let tokenized = run.join(Stage::Tokenize.name());
    let spec = train::peer_spec_of_run(&cfg, &bundle, &tokenized, results.threads).unwrap();
    assert_eq!(&spec["encoder"]["char_cnn"], cnn);
    assert_eq!(
        spec["encoder"]["vocab_size"],
        model["spec"]["encoder"]["vocab_size"]
    );
    let tokenizer = read_json(&bundle.join("tokenizer.json"));
    let id_of = |name: &str| {
        tokenizer["added_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["content"] == name)
            .map(|t| u(&t["id"]))
            .unwrap_or_else(|| panic!("no {name} in tokenizer.json"))
    };
    let wd = &spec["train"]["word_dropout"];
    assert_eq!(wd["p"], shipped.train.word_dropout, "{wd}");
    assert_eq!(u(&wd["unk"]), id_of(&cfg.tokenize.special_tokens.unk));
    let specials: Vec<u64> = wd["specials"].as_array().unwrap().iter().map(u).collect();
    for name in [
        &cfg.tokenize.special_tokens.cls,
        &cfg.tokenize.special_tokens.sep,
    ] {
        assert!(specials.contains(&id_of(name)), "{name}: {wd}");
    }
    assert_eq!(
        spec["train"]["patience"].as_u64(),
        shipped.train.patience.map(|p| p as u64)
    );

    if !with_peer {
        eprintln!(
            "the PyTorch peer was not run: {} cannot import torch",
            root.join("bench/out/venv/bin/python").display()
        );
        assert_eq!(results.tools.len(), 1);
        assert!(results.same_function.is_none());
        return;
    }
    let peer = &results.tools[1];
    assert_eq!(peer.tool, PYTORCH);
    assert_eq!(peer.steps, mtl.steps);
    assert_eq!(peer.parameters, mtl.parameters);
    assert!(peer.first_loss.is_some_and(f64::is_finite), "{peer:?}");
    assert_eq!(
        peer.dev.keys().collect::<Vec<_>>(),
        mtl.dev.keys().collect::<Vec<_>>()
    );
    let same = results.same_function.as_ref().unwrap();
    assert_eq!(same.parameters, mtl.parameters);
    assert!(same.holds(), "{same:?}\n{}", results.render());
}
