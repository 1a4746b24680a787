//! Fixtures shared by the stage tests: a train folder holding a tiny,
//! seeded model bundle, as `mtl-train` would leave it.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Device;
use mtl_core::{FeatureSet, InputRef, LabelSet, ManifestBuilder, Stage, StagingDir};
use mtl_model::{BundleMeta, EncoderSpec, HeadSpec, ModelSpec, MultiTaskModel, Preprocess};

/// A train folder in `dir`: a BiLSTM (vocabulary 16, width 8) with `heads`,
/// weights from `seed`, and a manifest whose input is `tokenize_fp`.
pub fn write_train(
    dir: &Path,
    heads: Vec<HeadSpec>,
    seed: u64,
    max_length: usize,
    labels: &LabelSet,
    features: &FeatureSet,
    tokenize_fp: &str,
) {
    let spec = ModelSpec {
        encoder: EncoderSpec {
            vocab_size: 16,
            embedding_dim: 8,
            hidden_dim: 8,
            dropout: 0.0,
            ..Default::default()
        },
        tasks: heads,
    };
    let (_, varmap) = MultiTaskModel::new(&spec, seed, &Device::Cpu).unwrap();
    let meta = BundleMeta {
        format_version: mtl_model::bundle::FORMAT_VERSION,
        spec,
        preprocess: Preprocess {
            clean: BTreeMap::new(),
            max_length,
            ..Default::default()
        },
    };
    let staging = StagingDir::begin(dir).unwrap();
    let tok = staging.path("tokenizer.json");
    std::fs::write(&tok, "{}").unwrap();
    mtl_model::bundle::save(
        &staging.path("model"),
        &meta,
        &varmap,
        &tok,
        labels,
        features,
    )
    .unwrap();
    let input = InputRef {
        name: "tokenize".into(),
        fingerprint: tokenize_fp.into(),
    };
    ManifestBuilder::new(Stage::Train, 1, "fp-train".into(), vec![input])
        .finish(&staging, &BTreeMap::new())
        .unwrap();
    staging.commit().unwrap();
}
