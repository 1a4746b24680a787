//! Loading a pretrained `tokenizer.json` (e.g. one exported with a
//! sentence-transformers or BERT checkpoint).

use std::path::{Path, PathBuf};

use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::stage::TOKENIZER_FILE;

/// The `tokenizer.json` that `path` stands for: the file itself, or the one
/// inside a folder.
pub fn tokenizer_file(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(TOKENIZER_FILE)
    } else {
        path.to_path_buf()
    }
}

/// Loads a `tokenizer.json` file, or the one in a folder, with padding and
/// truncation turned off: exported tokenizers often pad every input to a
/// fixed length (MiniLM's pads to 128), but we truncate ourselves and the
/// trainer pads per batch.
pub fn load_pretrained(path: &Path) -> Result<Tokenizer> {
    let file = tokenizer_file(path);
    if !file.is_file() {
        return Err(Error::LoadTokenizer {
            path: file,
            message: "not found (give a tokenizer.json file or a folder holding one)".into(),
        });
    }
    let fail = |e: tokenizers::Error| Error::LoadTokenizer {
        path: file.clone(),
        message: e.to_string(),
    };
    let mut tok = Tokenizer::from_file(&file).map_err(fail)?;
    tok.with_padding(None);
    tok.with_truncation(None).map_err(fail)?;
    Ok(tok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::tests::{config, corpus};
    use mtl_core::config::TokenizerKind;
    use tokenizers::{PaddingParams, PaddingStrategy, TruncationParams};

    #[test]
    fn padding_and_truncation_stored_in_the_file_are_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let mut tok =
            crate::train_tokenizer(corpus().into_iter(), &config(TokenizerKind::Wordpiece, 150))
                .unwrap();
        tok.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(128),
            ..PaddingParams::default()
        }));
        tok.with_truncation(Some(TruncationParams {
            max_length: 16,
            ..TruncationParams::default()
        }))
        .unwrap();
        let file = dir.path().join(TOKENIZER_FILE);
        tok.save(&file, false).unwrap();
        assert_eq!(
            tok.encode("the dog", true).unwrap().get_ids().len(),
            128,
            "the file pads"
        );

        for path in [file.as_path(), dir.path()] {
            let back = load_pretrained(path).unwrap();
            assert!(back.get_padding().is_none() && back.get_truncation().is_none());
            assert_eq!(
                back.encode("the dog", true).unwrap().get_ids().len(),
                4,
                "[CLS] the dog [SEP]"
            );
            assert_eq!(back.get_vocab_size(true), tok.get_vocab_size(true));
        }
    }

    #[test]
    fn missing_or_broken_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_pretrained(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("tokenizer.json") && err.contains("not found"),
            "{err}"
        );
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        let err = load_pretrained(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.json"), "{err}");
    }
}
