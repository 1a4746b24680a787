//! Fitting a tokenizer on the train split's words with the `tokenizers`
//! trainers, reproducibly.
//!
//! The trainers' own `feed`/`train` path collects word counts in hash maps
//! with per-process random seeds, and the BPE trainer numbers its `##x`
//! pieces in that map's order (ties between merges are broken by those
//! numbers), so two runs on the same data can give different vocabularies.
//! We therefore count words ourselves, in a fixed order, and call the
//! trainers' `do_train` directly.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};

use compact_str::CompactString;
use mtl_core::config::{TokenizeConfig, TokenizerKind};
use tokenizers::decoders::DecoderWrapper;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::ModelWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainer};
use tokenizers::models::unigram::{Unigram, UnigramTrainer};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{
    AddedToken, NormalizedString, Normalizer, OffsetReferential, OffsetType, PreTokenizedString,
    PreTokenizer, Tokenizer,
};

use crate::error::{Error, Result};

/// The default special tokens (`tokenize.special_tokens`), ids 0 to 3.
pub const PAD: &str = "[PAD]";
pub const UNK: &str = "[UNK]";
pub const CLS: &str = "[CLS]";
pub const SEP: &str = "[SEP]";
pub const SPECIAL_TOKENS: [&str; 4] = [PAD, UNK, CLS, SEP];

const CONTINUING_PREFIX: &str = "##";
/// Word-start marker of Unigram pieces, so that decoding can rejoin pieces.
const METASPACE: char = '\u{2581}';

/// Fits a tokenizer of `cfg.kind` on `words` (one item per example).
///
/// WordPiece and BPE pieces continue words with `##`; Unigram pieces start
/// words with `▁` (a Metaspace step after the BERT pre-tokenizer) so that
/// its decoder can put words back together. `min_frequency` is the minimum
/// count of a merged pair for WordPiece and BPE; Unigram has no such knob.
pub fn train_tokenizer(
    words: impl Iterator<Item = Vec<String>>,
    cfg: &TokenizeConfig,
) -> Result<Tokenizer> {
    let kind = cfg.kind;
    if kind == TokenizerKind::Pretrained {
        return Err(train_err(
            kind,
            "a pretrained tokenizer is loaded, not trained (use load_pretrained)",
        ));
    }
    let normalizer = BertNormalizer::new(true, true, Some(cfg.lowercase), cfg.lowercase);
    let pre_tokenizer: PreTokenizerWrapper = match kind {
        TokenizerKind::Unigram => Sequence::new(vec![
            BertPreTokenizer.into(),
            Metaspace::new(METASPACE, PrependScheme::Always, false).into(),
        ])
        .into(),
        _ => BertPreTokenizer.into(),
    };

    let counts =
        piece_counts(words, &normalizer, &pre_tokenizer).map_err(|e| train_err(kind, e))?;
    if counts.is_empty() {
        return Err(train_err(
            kind,
            "the train split has no words to learn from",
        ));
    }

    let sp = &cfg.special_tokens;
    let specials: Vec<AddedToken> = sp
        .all()
        .iter()
        .map(|t| AddedToken::from(*t, true))
        .collect();
    let model: ModelWrapper = match kind {
        TokenizerKind::Wordpiece => {
            let bpe = train_bpe(&counts, cfg, &specials)?;
            let mut wp = WordPiece::from_bpe(&bpe);
            wp.unk_token = sp.unk.clone();
            wp.continuing_subword_prefix = CONTINUING_PREFIX.to_string();
            wp.into()
        }
        TokenizerKind::Bpe => train_bpe(&counts, cfg, &specials)?.into(),
        TokenizerKind::Unigram => train_unigram(&counts, cfg, &specials)?.into(),
        TokenizerKind::Pretrained => unreachable!("handled above"),
    };

    let mut tok = Tokenizer::new(model);
    tok.with_normalizer(Some(normalizer));
    tok.with_pre_tokenizer(Some(pre_tokenizer));
    tok.add_special_tokens(&specials);
    let id = |t: &str| {
        tok.token_to_id(t).ok_or_else(|| {
            train_err(
                kind,
                format!("special token {t} is missing from the trained vocabulary"),
            )
        })
    };
    let (cls_id, sep_id) = (id(&sp.cls)?, id(&sp.sep)?);
    tok.with_post_processor(Some(BertProcessing::new(
        (sp.sep.clone(), sep_id),
        (sp.cls.clone(), cls_id),
    )));
    let decoder: DecoderWrapper = match kind {
        TokenizerKind::Unigram => Metaspace::new(METASPACE, PrependScheme::Always, false).into(),
        _ => WordPieceDecoder::new(CONTINUING_PREFIX.into(), true).into(),
    };
    tok.with_decoder(Some(decoder));
    Ok(tok)
}

fn train_err(kind: TokenizerKind, message: impl ToString) -> Error {
    let kind = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{kind:?}"));
    Error::Train {
        kind,
        message: message.to_string(),
    }
}

/// Counts the pieces the tokenizer's normalizer and pre-tokenizer make of
/// every word, exactly as `Tokenizer::train` would, but in sorted order.
fn piece_counts(
    rows: impl Iterator<Item = Vec<String>>,
    normalizer: &BertNormalizer,
    pre_tokenizer: &PreTokenizerWrapper,
) -> tokenizers::Result<BTreeMap<String, u64>> {
    // Words repeat (Zipf), so normalize each distinct word once.
    let mut raw: HashMap<String, u64> = HashMap::new();
    for row in rows {
        for w in row {
            *raw.entry(w).or_default() += 1;
        }
    }
    let mut counts = BTreeMap::new();
    for (word, n) in raw {
        let mut normalized = NormalizedString::from(word.as_str());
        normalizer.normalize(&mut normalized)?;
        let mut pre = PreTokenizedString::from(normalized);
        pre_tokenizer.pre_tokenize(&mut pre)?;
        for (piece, _, _) in pre.get_splits(OffsetReferential::Original, OffsetType::Byte) {
            *counts.entry(piece.to_string()).or_default() += n;
        }
    }
    Ok(counts)
}

/// Runs a trainer, turning its panics (it asserts on odd input) into errors.
fn guarded<T>(kind: TokenizerKind, f: impl FnOnce() -> tokenizers::Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(train_err(kind, e)),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the trainer panicked".into());
            Err(train_err(kind, msg))
        }
    }
}

fn train_bpe(
    counts: &BTreeMap<String, u64>,
    cfg: &TokenizeConfig,
    specials: &[AddedToken],
) -> Result<BPE> {
    let kind = cfg.kind;
    // Fixed seeds and sorted insertion give the same iteration order on
    // every run, hence the same piece ids and the same merge tie-breaks.
    let mut map: HashMap<CompactString, u64, ahash::RandomState> =
        HashMap::with_capacity_and_hasher(counts.len(), ahash::RandomState::with_seeds(1, 2, 3, 4));
    for (piece, n) in counts {
        map.insert(CompactString::from(piece.as_str()), *n);
    }
    let map: ahash::AHashMap<CompactString, u64> = map.into();

    let trainer = BpeTrainer::builder()
        .vocab_size(cfg.vocab_size)
        .min_frequency(cfg.min_frequency)
        .show_progress(false)
        .special_tokens(specials.to_vec())
        .continuing_subword_prefix(CONTINUING_PREFIX.into())
        .build();
    let mut bpe = BPE::builder()
        .unk_token(cfg.special_tokens.unk.clone())
        .continuing_subword_prefix(CONTINUING_PREFIX.into())
        .build()
        .map_err(|e| train_err(kind, e))?;
    guarded(kind, || trainer.do_train(&map, &mut bpe))?;
    Ok(bpe)
}

fn train_unigram(
    counts: &BTreeMap<String, u64>,
    cfg: &TokenizeConfig,
    specials: &[AddedToken],
) -> Result<Unigram> {
    let kind = cfg.kind;
    let mut sentences: Vec<(String, u32)> = counts
        .iter()
        .map(|(piece, n)| (piece.clone(), u32::try_from(*n).unwrap_or(u32::MAX)))
        .collect();
    // The trainer gives characters that EM dropped made-up scores in hash
    // order. One extra sighting of each character on its own keeps every
    // character in the EM vocabulary, so no score is made up.
    let chars: BTreeSet<char> = counts.keys().flat_map(|p| p.chars()).collect();
    if chars.len() + specials.len() > cfg.vocab_size {
        return Err(train_err(
            kind,
            format!(
                "tokenize.vocab_size = {} is too small: the train split has {} distinct characters, \
                 and {} special tokens come on top",
                cfg.vocab_size,
                chars.len(),
                specials.len()
            ),
        ));
    }
    sentences.extend(chars.iter().map(|c| (c.to_string(), 1)));

    let vocab_size = u32::try_from(cfg.vocab_size)
        .map_err(|_| train_err(kind, "tokenize.vocab_size is too large"))?;
    let trainer = UnigramTrainer::builder()
        .show_progress(false)
        .vocab_size(vocab_size)
        .special_tokens(specials.to_vec())
        .unk_token(Some(cfg.special_tokens.unk.clone()))
        .build()
        .map_err(|e| train_err(kind, e))?;
    // EM sums floats over chunks sized by the pool's thread count; one
    // thread fixes the order of those sums, so the scores are reproducible.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .map_err(|e| train_err(kind, e))?;
    let mut model = Unigram::default();
    guarded(kind, || {
        pool.install(|| trainer.do_train(sentences, &mut model))
    })?;

    // Equal scores keep hash order in the trainer's final sort; re-sort by
    // (score, piece) so ids are reproducible. Specials stay first.
    let pieces: Vec<(String, f64)> = model.iter().cloned().collect();
    let n_special = specials.len().min(pieces.len());
    let (head, tail) = pieces.split_at(n_special);
    let mut tail = tail.to_vec();
    tail.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let unk = head.iter().position(|(p, _)| *p == cfg.special_tokens.unk);
    let vocab: Vec<(String, f64)> = head.iter().cloned().chain(tail).collect();
    Unigram::from(vocab, unk, false).map_err(|e| train_err(kind, e))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn corpus() -> Vec<Vec<String>> {
        let text = "The unbelievable dog runs quickly . The dog , the cat and the bird run home !\n\
                    Running dogs are unbelievably quick ; cats are not .\n\
                    Café owners believe (rightly) that dogs love running .\n\
                    A quick brown fox jumps over the lazy dog .\n\
                    Believers run, walkers walk; the end.";
        let mut rows = Vec::new();
        for _ in 0..3 {
            for line in text.lines() {
                rows.push(line.split_whitespace().map(str::to_string).collect());
            }
        }
        rows
    }

    pub(crate) fn config(kind: TokenizerKind, vocab_size: usize) -> TokenizeConfig {
        TokenizeConfig {
            kind,
            vocab_size,
            min_frequency: 1,
            ..TokenizeConfig::default()
        }
    }

    fn train(kind: TokenizerKind, vocab_size: usize) -> Tokenizer {
        train_tokenizer(corpus().into_iter(), &config(kind, vocab_size)).unwrap()
    }

    #[test]
    fn special_tokens_have_fixed_ids() {
        for kind in [
            TokenizerKind::Wordpiece,
            TokenizerKind::Bpe,
            TokenizerKind::Unigram,
        ] {
            let tok = train(kind, 120);
            for (i, t) in SPECIAL_TOKENS.iter().enumerate() {
                assert_eq!(tok.token_to_id(t), Some(i as u32), "{kind:?} {t}");
            }
        }
    }

    #[test]
    fn special_tokens_come_from_the_config() {
        let sp = mtl_core::config::SpecialTokens {
            pad: "<pad>".into(),
            unk: "<unk>".into(),
            cls: "<s>".into(),
            sep: "</s>".into(),
        };
        for kind in [
            TokenizerKind::Wordpiece,
            TokenizerKind::Bpe,
            TokenizerKind::Unigram,
        ] {
            let cfg = TokenizeConfig {
                special_tokens: sp.clone(),
                ..config(kind, 120)
            };
            let tok = train_tokenizer(corpus().into_iter(), &cfg).unwrap();
            for (i, t) in sp.all().iter().enumerate() {
                assert_eq!(tok.token_to_id(t), Some(i as u32), "{kind:?} {t}");
            }
            assert_eq!(tok.token_to_id(PAD), None, "{kind:?}: no default tokens");
            let enc = tok.encode("the dog zzzzqqq", true).unwrap();
            let tokens = enc.get_tokens();
            assert_eq!(tokens.first().map(String::as_str), Some("<s>"), "{kind:?}");
            assert_eq!(tokens.last().map(String::as_str), Some("</s>"), "{kind:?}");
        }
    }

    #[test]
    fn wordpiece_round_trips_simple_words() {
        let tok = train(TokenizerKind::Wordpiece, 200);
        let enc = tok.encode("the dog runs home", true).unwrap();
        assert_eq!(enc.get_tokens().first().map(String::as_str), Some(CLS));
        assert_eq!(enc.get_tokens().last().map(String::as_str), Some(SEP));
        assert!(
            !enc.get_ids().contains(&1),
            "no [UNK] for seen words: {:?}",
            enc.get_tokens()
        );
        assert_eq!(
            tok.decode(enc.get_ids(), true).unwrap(),
            "the dog runs home"
        );
    }

    #[test]
    fn every_kind_decodes_back_to_the_words() {
        for kind in [
            TokenizerKind::Wordpiece,
            TokenizerKind::Bpe,
            TokenizerKind::Unigram,
        ] {
            let tok = train(kind, 60);
            let enc = tok.encode("unbelievable runners", false).unwrap();
            assert!(enc.get_ids().len() >= 2, "{kind:?}: {:?}", enc.get_tokens());
            assert_eq!(
                tok.decode(enc.get_ids(), true).unwrap(),
                "unbelievable runners",
                "{kind:?}"
            );
        }
    }

    #[test]
    fn lowercase_and_accents_follow_the_config() {
        let tok = train(TokenizerKind::Wordpiece, 200);
        let enc = tok.encode("CAFÉ", false).unwrap();
        assert_eq!(tok.decode(enc.get_ids(), true).unwrap(), "cafe");
        let mut cfg = config(TokenizerKind::Wordpiece, 200);
        cfg.lowercase = false;
        let cased = train_tokenizer(corpus().into_iter(), &cfg).unwrap();
        let enc = cased.encode("Café", false).unwrap();
        assert_eq!(cased.decode(enc.get_ids(), true).unwrap(), "Café");
    }

    #[test]
    fn training_is_deterministic() {
        for kind in [
            TokenizerKind::Wordpiece,
            TokenizerKind::Bpe,
            TokenizerKind::Unigram,
        ] {
            let a = train(kind, 90).to_string(false).unwrap();
            let b = train(kind, 90).to_string(false).unwrap();
            assert_eq!(a, b, "{kind:?}");
        }
    }

    #[test]
    fn empty_corpus_is_an_error() {
        let err = train_tokenizer(std::iter::empty(), &config(TokenizerKind::Wordpiece, 100))
            .unwrap_err();
        assert!(err.to_string().contains("no words"), "{err}");
    }

    #[test]
    fn unigram_vocab_smaller_than_alphabet_is_an_error() {
        let err =
            train_tokenizer(corpus().into_iter(), &config(TokenizerKind::Unigram, 10)).unwrap_err();
        assert!(err.to_string().contains("vocab_size"), "{err}");
    }
}
