//! A tiny bundle for the CLI, batch and span tests: a classification head
//! and a BIO spans head (`ents`) on a random-weight BiLSTM, default
//! cleaning, a tokenizer fitted on a few words.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use mtl_core::config::{CleanOptions, TokenizeConfig};
use mtl_core::{FeatureSet, LabelSet, TaskKind, TaskLabels};
use mtl_model::bundle::{BundleMeta, FORMAT_VERSION};
use mtl_model::{EncoderSpec, HeadSpec, ModelSpec, MultiTaskModel, Preprocess};

pub const SPAN_LABELS: [&str; 3] = ["O", "B-LOC", "I-LOC"];

/// Writes a bundle to `dir/model` and returns its path. With `force`, the
/// spans head predicts that label for every word, whatever the input
/// (its weights zero, its bias one-hot), so span outputs are known.
pub fn bundle(dir: &Path, force: Option<&str>) -> PathBuf {
    let words: Vec<Vec<String>> = [
        "the eiffel tower in paris is tall",
        "we flew from new york to rome",
        "at&t café ok fine great",
    ]
    .iter()
    .map(|t| t.split_whitespace().map(String::from).collect())
    .collect();
    let tok = mtl_tokenize::train_tokenizer(words.into_iter(), &TokenizeConfig::default()).unwrap();
    let tok_path = dir.join("tokenizer.json");
    tok.save(&tok_path, false).unwrap();

    let mut labels = LabelSet::default();
    let mut add = |name: &str, kind, names: &[&str]| {
        labels.tasks.insert(
            name.into(),
            TaskLabels {
                kind,
                scheme: None,
                labels: names.iter().map(|s| s.to_string()).collect(),
                train_counts: vec![1; names.len()],
                class_weights: None,
                target: None,
            },
        );
    };
    add("mood", TaskKind::Classification, &["bad", "good"]);
    add("ents", TaskKind::Spans, &SPAN_LABELS);
    let spec = ModelSpec {
        encoder: EncoderSpec {
            kind: "bilstm".into(),
            vocab_size: tok.get_vocab_size(true),
            embedding_dim: 8,
            hidden_dim: 8,
            layers: 1,
            dropout: 0.0,
            ..Default::default()
        },
        tasks: vec![
            HeadSpec::new("mood", TaskKind::Classification, 2),
            HeadSpec::new("ents", TaskKind::Spans, 3),
        ],
    };
    let (_, varmap) = MultiTaskModel::new(&spec, 7, &Device::Cpu).unwrap();
    if let Some(label) = force {
        let k = SPAN_LABELS.iter().position(|l| *l == label).unwrap();
        let vars = varmap.data().lock().unwrap();
        let mut set = 0;
        for (name, var) in vars.iter() {
            if !name.starts_with("heads.ents") {
                continue;
            }
            let t = if var.dims().len() == 1 {
                let mut b = vec![0f32; var.dims()[0]];
                b[k] = 20.0;
                Tensor::new(b, &Device::Cpu).unwrap()
            } else {
                Tensor::zeros(var.dims(), DType::F32, &Device::Cpu).unwrap()
            };
            var.set(&t).unwrap();
            set += 1;
        }
        assert!(set >= 2, "the spans head has a weight and a bias: {set}");
    }
    save_bundle(dir, spec, &varmap, &tok_path, &labels, "d", 32)
}

/// UD's universal POS tags, the labels of [`ud_bundle`]'s `upos` task.
pub const UPOS: [&str; 17] = [
    "ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN",
    "PUNCT", "SCONJ", "SYM", "VERB", "X",
];
pub const XPOS: [&str; 6] = ["DT", "NN", "VB", ",", ".", "RB"];
pub const FEATS: [&str; 3] = ["_", "Number=Sing", "Polarity=Neg"];

/// A treebank-like bundle: tagging tasks `upos`, `xpos` and `ufeats` with
/// those labels on a random-weight BiLSTM, default cleaning, a tokenizer
/// fitted on a few UD-segmented words. Its `upos` labels make
/// `--segment auto` pick UD segmentation.
pub fn ud_bundle(dir: &Path) -> PathBuf {
    let words: Vec<Vec<String>> = [
        "I do n't know , really .",
        "The battery died after two days , terrible !",
        "It 's the parents ' car : great",
    ]
    .iter()
    .map(|t| t.split_whitespace().map(String::from).collect())
    .collect();
    let tok = mtl_tokenize::train_tokenizer(words.into_iter(), &TokenizeConfig::default()).unwrap();
    let tok_path = dir.join("tokenizer.json");
    tok.save(&tok_path, false).unwrap();
    let mut labels = LabelSet::default();
    let tasks: [(&str, &[&str]); 3] = [("upos", &UPOS), ("xpos", &XPOS), ("ufeats", &FEATS)];
    for (name, names) in tasks {
        labels.tasks.insert(
            name.into(),
            TaskLabels {
                kind: TaskKind::Tagging,
                scheme: None,
                labels: names.iter().map(|s| s.to_string()).collect(),
                train_counts: vec![1; names.len()],
                class_weights: None,
                target: None,
            },
        );
    }
    let spec = ModelSpec {
        encoder: EncoderSpec {
            kind: "bilstm".into(),
            vocab_size: tok.get_vocab_size(true),
            embedding_dim: 8,
            hidden_dim: 8,
            layers: 1,
            dropout: 0.0,
            ..Default::default()
        },
        tasks: tasks
            .iter()
            .map(|(name, names)| HeadSpec::new(*name, TaskKind::Tagging, names.len()))
            .collect(),
    };
    let (_, varmap) = MultiTaskModel::new(&spec, 11, &Device::Cpu).unwrap();
    save_bundle(dir, spec, &varmap, &tok_path, &labels, "ewt", 64)
}

/// Saves `dir/model`: the weights, tokenizer and labels, cleaning options of
/// the one dataset `dataset`, sequences of at most `max_length`.
fn save_bundle(
    dir: &Path,
    spec: ModelSpec,
    varmap: &candle_nn::VarMap,
    tok_path: &Path,
    labels: &LabelSet,
    dataset: &str,
    max_length: usize,
) -> PathBuf {
    let meta = BundleMeta {
        format_version: FORMAT_VERSION,
        spec,
        preprocess: Preprocess {
            clean: BTreeMap::from([(dataset.to_string(), CleanOptions::default())]),
            max_length,
            ..Default::default()
        },
    };
    let model = dir.join("model");
    mtl_model::bundle::save(
        &model,
        &meta,
        varmap,
        tok_path,
        labels,
        &FeatureSet::default(),
    )
    .unwrap();
    model
}
