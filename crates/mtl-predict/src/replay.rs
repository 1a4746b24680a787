//! The tokenize options prediction replays beyond `max_length`: how long
//! texts were truncated and how batches were padded in training.

use mtl_core::config::Truncation;
use mtl_model::Bundle;

use crate::error::Result;

/// `truncation`, `stride` and `pad_to` of the bundle's `preprocess` (the
/// trainer copies them from `[tokenize]`). Bundles written before these
/// keys existed read with defaults, so they predict as they always did:
/// cut, no fixed padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayOptions {
    pub truncation: Truncation,
    pub stride: usize,
    pub pad_to: Option<usize>,
}

impl ReplayOptions {
    pub fn read(bundle: &Bundle) -> Result<ReplayOptions> {
        let p = &bundle.preprocess;
        Ok(ReplayOptions {
            truncation: p.truncation,
            stride: p.stride,
            pad_to: p.pad_to,
        })
    }
}
