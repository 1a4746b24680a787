//! The clean stage of mtl: reads each dataset's raw files (JSON Lines, CSV,
//! TSV and Parquet tables, TweetEval-style parallel `lines` with a labels
//! file and a mapping, CoNLL-U sentences with their given words and
//! annotation, or CoNLL column files), cleans every word with polars
//! expressions (HTML, control and zero-width characters, Unicode
//! normalization, masks, case), validates rows and labels (classes, tags,
//! label sets, numbers) against their tasks, drops duplicates, computes the
//! numeric features ([`features`]), and writes
//! `clean/<dataset>.parquet`, `clean/quarantine.parquet` and
//! `clean/report.json` (schemas in [`mtl_core::artifact`]).
//!
//! It streams: a dataset is read and cleaned in chunks of a bounded number
//! of rows, and the tables are written a chunk at a time, so memory does not
//! grow with the input except for a compact index of the rows kept so far
//! (hashes, ids, file and line; `src/dedup_index.rs`) that finds duplicates and
//! repeated ids across chunks. The chunk size never changes which rows are
//! kept or why.
//!
//! It never splits data, builds vocabularies or tokenizes, and it never
//! silently loses a row: every line read is either kept or quarantined with
//! its file, line and reason, and the stage fails if that count is off. It
//! never lets words and per-word tags fall out of step: a labelled row that
//! would lose a word is quarantined instead. [`text`] and [`features`] are
//! the same word cleaning and features for inference.

mod chunks;
mod conll;
pub mod conllu;
mod dedup;
mod dedup_index;
mod error;
pub mod features;
mod lines;
mod read;
pub mod reason;
mod report;
mod rules;
mod sink;
mod stage;
mod table;
mod tabular;
pub mod text;
mod words;

pub use error::{Error, Result};
pub use features::features_of;
pub use mtl_core::artifact::FEATURES;
pub use report::{Conflict, DatasetReport, Report};
pub use stage::{QUARANTINE_FILE, run};
pub use text::{clean_token, clean_words};

/// Bumped when clean's output changes for the same input and config.
pub const STAGE_VERSION: u32 = 3;
