//! The character vocabulary of `tokenize.char_ids`: defined in
//! `mtl_core::chars`, because the model bundle carries `chars.json` and
//! predict replays it without depending on this stage.

pub use mtl_core::chars::CharVocab;
