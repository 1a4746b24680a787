//! The multi-task model shared by train, eval and predict: a shared encoder
//! (BiLSTM, BiGRU or pre-LN transformer), one head per task (classification,
//! tagging/spans with an optional linear-chain CRF, a biaffine dependency
//! parser decoded as a maximum spanning tree, multilabel, regression;
//! sentence heads pool by mean, first position or learned attention and may take
//! standardized side-input features),
//! masked and class-weighted losses, per-batch padding, and the model bundle
//! (weights, spec, tokenizer, labels and features in one folder).
//!
//! This crate never reads pipeline artifacts or decides how to train: it
//! defines the network and how it is saved. Every parameter is checked by a
//! test to receive a gradient, because some candle 0.11 fused ops (e.g.
//! `softmax_last_dim`, `layer_norm`) silently pass none.

pub mod batch;
pub mod bundle;
pub mod device;
mod dropout;
pub mod encoder;
mod error;
pub mod heads;
pub mod loss;
pub mod malloc;
pub mod model;
mod norm;
mod params;
pub mod spec;

pub use batch::{Batch, Targets};
pub use bundle::{Bundle, BundleMeta, MULTILABEL_THRESHOLD, TaskOutput, Thresholds};
pub use device::DeviceSpec;
pub use error::{Error, Result};
pub use model::{LossWeights, MultiTaskModel};
pub use spec::{EncoderSpec, HeadSpec, ModelSpec, Preprocess};
