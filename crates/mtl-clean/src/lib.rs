//! The clean stage of mtl: reads each dataset's raw files (JSON Lines,
//! TweetEval-style parallel `lines` with a labels file and a mapping, or
//! CoNLL-U sentences with their given words), cleans every word with polars
//! expressions (HTML, control and zero-width characters, Unicode
//! normalization, masks, case), validates rows against their tasks, drops
//! duplicates, and writes
//! `clean/<dataset>.parquet`, `clean/quarantine.parquet` and
//! `clean/report.json` (schemas in [`mtl_core::artifact`]).
//!
//! It never splits data, builds vocabularies or tokenizes, and it never
//! silently loses a row: every line read is either kept or quarantined with
//! its file, line and reason, and the stage fails if that count is off. It
//! never lets words and per-word tags fall out of step: a labelled row that
//! would lose a word is quarantined instead. [`text`] is the same word
//! cleaning for inference.

mod conllu;
mod error;
mod lines;
mod read;
pub mod reason;
mod report;
mod rules;
mod stage;
mod table;
pub mod text;

pub use error::{Error, Result};
pub use report::{Conflict, DatasetReport, Report};
pub use rules::FEATURES;
pub use stage::{QUARANTINE_FILE, run};
pub use text::{clean_token, clean_words};

/// Bumped when clean's output changes for the same input and config.
pub const STAGE_VERSION: u32 = 1;
