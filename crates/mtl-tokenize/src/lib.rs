//! The tokenize stage: fits a sub-word tokenizer (WordPiece, BPE or Unigram)
//! on the train split's words, or loads a pretrained `tokenizer.json`, and
//! turns the split tables into sub-token id sequences with word ids and
//! integer targets aligned to sub-tokens (`runs/<pipeline>/tokenize/`).
//! Multilabel targets become lists of label ids, regression targets stay
//! raw numbers, and the `feat_<name>` columns of every feature some head
//! uses (`split/features.json`, copied along) travel with each row.
//!
//! Examples longer than `max_length` are cut (`truncation = "cut"`) or
//! become overlapping windows of whole words (`"window"`, rows sharing the
//! example's `id`; [`plan_windows`], [`encode_examples`]), each word scored
//! in exactly one window ([`mtl_core::align`]). With `char_ids`, a character
//! vocabulary fitted on train words ([`CharVocab`], `chars.json`) gives
//! every word its character ids.
//!
//! It never looks at dev or test when fitting, never pads (the trainer pads
//! per batch; the report only estimates the padding), and never invents
//! label ids: the vocabularies come from the split stage's `labels.json`,
//! which it passes on unchanged.

pub mod align;
mod chars;
mod encode;
mod error;
mod input;
mod output;
mod pretrained;
pub mod report;
mod stage;
mod train;
mod window;

pub use chars::CharVocab;
pub use encode::{Encoded, encode_batch_words, encode_words, unk_id};
pub use error::{Error, Result};
pub use pretrained::{load_pretrained, tokenizer_file};
pub use report::Report;
pub use stage::{TOKENIZER_FILE, run};
pub use train::{CLS, PAD, SEP, SPECIAL_TOKENS, UNK, train_tokenizer};
pub use window::{Windowed, encode_examples, plan_windows, window_encoding};

/// Bumped when the tokenize outputs change meaning.
pub const STAGE_VERSION: u32 = 3;
