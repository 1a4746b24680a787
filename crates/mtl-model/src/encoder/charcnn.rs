//! Character-CNN word features (`model.char_cnn`): each word's characters
//! are embedded, convolved with `filters` filters of `width` characters,
//! passed through `tanh` and max-pooled over the word into one vector.
//!
//! The CNN runs once per distinct word of a batch
//! ([`crate::batch::BatchChars::words`]); every sub-token position then
//! takes its word's vector, so the sub-tokens of a word share it, and
//! positions without a word (special tokens, padding) get zeros.
//!
//! The convolution is computed without materializing windows of
//! embeddings: it is linear, so each offset `k` of a window has a table
//! `embeddings · W_k` of `(V_c, filters)`, and a window's output is the sum
//! of one row per offset, picked by the characters' ids (`index_select`,
//! which candle 0.11 differentiates). A word of `L` characters is padded
//! with id 0 to `width - 1` on each side, giving the `L + width - 1`
//! windows that hold at least one real character; the padding id works as
//! a learned word-boundary marker. Padding never changes the result: the
//! windows that count see the same characters however long the padding
//! is, and a window without a real character never wins the max. `tanh`
//! comes after the max (it is increasing, so the result is the same) and
//! costs one vector per word, not one per window.

use candle_core::{DType, Tensor};

use crate::error::{Error, Result};
use crate::params::ParamStore;
use crate::spec::CharCnnSpec;

/// Subtracted from every window without a real character, so it never
/// wins the max pool: far beyond any real window's value, and exact for
/// the real ones (they get `+ 0`).
const EMPTY_WINDOW: f64 = 1e4;

pub struct CharCnn {
    /// `(V_c, char_dim)`.
    embeddings: Tensor,
    /// `(width * char_dim, filters)`: the filters over a window's
    /// concatenated character embeddings, offset 0 first.
    weight: Tensor,
    /// `(filters,)`.
    bias: Tensor,
    width: usize,
}

impl CharCnn {
    pub fn new(p: &mut ParamStore, spec: &CharCnnSpec) -> Result<Self> {
        if spec.vocab_size < 2 || spec.char_dim == 0 || spec.filters == 0 || spec.width == 0 {
            return Err(Error::Invalid(format!(
                "char_cnn: vocab_size ({}) must be at least 2 (padding and unknown), char_dim ({}), \
                 filters ({}) and width ({}) > 0",
                spec.vocab_size, spec.char_dim, spec.filters, spec.width
            )));
        }
        let fan_in = spec.width * spec.char_dim;
        let bound = 1.0 / (fan_in as f64).sqrt();
        Ok(Self {
            embeddings: p.normal("embeddings", &[spec.vocab_size, spec.char_dim], 0.1)?,
            weight: p.uniform("weight", &[fan_in, spec.filters], bound)?,
            bias: p.uniform("bias", &[spec.filters], bound)?,
            width: spec.width,
        })
    }

    /// `words`: `(W, C)` u32, each word's character ids, padded with 0 after
    /// the real characters. Returns `(W, filters)`; a word without
    /// characters gets zeros.
    pub fn forward(&self, words: &Tensor) -> Result<Tensor> {
        let (n, c) = words.dims2()?;
        let (v, e) = self.embeddings.dims2()?;
        let f = self.bias.dim(0)?;
        let w = self.width;
        let device = words.device();
        // A clear error instead of an out-of-range index inside candle.
        let max = words.max_keepdim(1)?.max(0)?.to_vec1::<u32>()?;
        if let Some(&id) = max.first().filter(|&&id| id as usize >= v) {
            return Err(Error::Invalid(format!(
                "character id {id} is outside the model's {v} (chars.json of another model?)"
            )));
        }
        // Window p covers characters p - (w - 1) ..= p: `(w, n, P)` ids,
        // offset-major so that each offset's rows are one contiguous block.
        let windows = c + w - 1;
        let padded = if w > 1 {
            let pad = Tensor::zeros((n, w - 1), DType::U32, device)?;
            Tensor::cat(&[&pad, words, &pad], 1)?
        } else {
            words.clone()
        };
        let unfolded = Tensor::stack(
            &(0..w)
                .map(|k| padded.narrow(1, k, windows))
                .collect::<candle_core::Result<Vec<_>>>()?,
            0,
        )?;
        // Offset k's table, `(V, F)`, picked by offset k's ids; the bias
        // rides on offset 0, which every window has once. One gather per
        // offset, not one gather sliced afterwards: slicing a float tensor
        // costs a full-size copy per slice in the backward pass.
        let mut h: Option<Tensor> = None;
        for k in 0..w {
            let table = self.embeddings.matmul(&self.weight.narrow(0, k * e, e)?)?;
            let table = if k == 0 {
                table.broadcast_add(&self.bias)?
            } else {
                table
            };
            let picked = table.index_select(&unfolded.get(k)?.flatten_all()?, 0)?;
            h = Some(match h {
                Some(acc) => acc.add(&picked)?,
                None => picked,
            });
        }
        let h = h.ok_or_else(|| Error::Invalid("char_cnn: width must be > 0".into()))?;
        // 1 where a window holds a real character.
        let valid = unfolded
            .ne(0u32)?
            .to_dtype(DType::F32)?
            .max(0)?
            .reshape((n, windows, 1))?;
        let h = h
            .reshape((n, windows, f))?
            .broadcast_add(&valid.affine(EMPTY_WINDOW, -EMPTY_WINDOW)?)?;
        // `tanh` is increasing, so it is applied after the max: to one
        // vector per word instead of one per window.
        // A word without characters: every window empty, its vector zeros.
        let has_chars = valid.max_keepdim(1)?.reshape((n, 1))?;
        Ok(h.max(1)?.tanh()?.broadcast_mul(&has_chars)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn spec() -> CharCnnSpec {
        CharCnnSpec {
            vocab_size: 9,
            char_dim: 4,
            filters: 6,
            width: 3,
        }
    }

    fn cnn(spec: &CharCnnSpec) -> (CharCnn, candle_nn::VarMap) {
        let mut p = ParamStore::new(3, &Device::Cpu);
        let c = CharCnn::new(&mut p, spec).unwrap();
        (c, p.into_varmap())
    }

    fn words(ws: &[Vec<u32>]) -> Tensor {
        let c = ws[0].len();
        let flat: Vec<u32> = ws.iter().flatten().copied().collect();
        Tensor::from_vec(flat, (ws.len(), c), &Device::Cpu).unwrap()
    }

    fn out(c: &CharCnn, ws: &[Vec<u32>]) -> Vec<Vec<f32>> {
        c.forward(&words(ws)).unwrap().to_vec2::<f32>().unwrap()
    }

    #[test]
    fn one_vector_per_position_shared_by_a_words_sub_tokens() {
        let (c, _) = cnn(&spec());
        let d = Device::Cpu;
        // Row 0: [CLS] w0 w0 w1 [SEP] (w0 in two sub-tokens); row 1:
        // [CLS] w0 [SEP] and padding.
        let b = crate::Batch::pad(&[&[1, 4, 5, 6, 2], &[1, 7, 2]], &d)
            .unwrap()
            .with_chars(
                &[&[-1, 0, 0, 1, -1][..], &[-1, 0, -1]],
                &[vec![vec![2, 3, 4], vec![5, 6]], vec![vec![7]]],
            )
            .unwrap();
        let y = super::super::char_features(&c, b.chars.as_ref(), &b.input_ids).unwrap();
        assert_eq!(y.dims(), [2, 5, 6]);
        let y = y.to_vec3::<f32>().unwrap();
        assert_eq!(y[0][1], y[0][2]);
        assert_ne!(y[0][1], y[0][3]);
        // Specials and padding: zeros; real words: not, and within tanh.
        for (r, p) in [(0, 0), (0, 4), (1, 0), (1, 2), (1, 4)] {
            assert!(y[r][p].iter().all(|&v| v == 0.0), "{r},{p}: {:?}", y[r][p]);
        }
        for (r, p) in [(0, 1), (0, 3), (1, 1)] {
            assert!(y[r][p].iter().any(|&v| v != 0.0), "{r},{p}");
            assert!(y[r][p].iter().all(|v| v.abs() <= 1.0), "{r},{p}");
        }
        // The same word alone: the same vector.
        assert_eq!(out(&c, &[vec![7]])[0], y[1][1]);
        assert_eq!(out(&c, &[vec![2, 3, 4]])[0], y[0][2]);
        // Characters for another batch shape are an error.
        let err = super::super::char_features(
            &c,
            b.chars.as_ref(),
            &b.input_ids.narrow(1, 0, 3).unwrap(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("[2, 5]") && err.contains("(2, 3)"), "{err}");
    }

    #[test]
    fn padding_never_changes_a_word() {
        let (c, _) = cnn(&spec());
        let short = out(&c, &[vec![2, 3], vec![8, 0]]);
        let long = out(&c, &[vec![2, 3, 0, 0, 0, 0], vec![8, 0, 0, 0, 0, 0]]);
        assert_eq!(short, long);
        // Exactly as long as the padding allows, and no padding at all.
        let full = out(&c, &[vec![2, 3, 4, 5, 6, 7]]);
        let padded = out(&c, &[vec![2, 3, 4, 5, 6, 7, 0, 0, 0]]);
        assert_eq!(full, padded);
        // No characters: zeros.
        assert!(out(&c, &[vec![0, 0]])[0].iter().all(|&v| v == 0.0));
        // Width 1 (no padding) and a width longer than the words.
        for width in [1, 7] {
            let (c, _) = cnn(&CharCnnSpec { width, ..spec() });
            assert_eq!(out(&c, &[vec![2, 3]]), out(&c, &[vec![2, 3, 0, 0, 0]]));
            // Width 1 is a bag of characters; wider windows see the order.
            let swapped = out(&c, &[vec![2, 3]]) != out(&c, &[vec![3, 2]]);
            assert_eq!(swapped, width > 1);
        }
        // Order matters within a window, not only which characters.
        assert_ne!(out(&c, &[vec![2, 3, 4]]), out(&c, &[vec![4, 3, 2]]));
    }

    #[test]
    fn an_unknown_character_id_is_an_error() {
        let (c, _) = cnn(&spec());
        let err = c.forward(&words(&[vec![2, 9]])).err().unwrap().to_string();
        assert!(err.contains("character id 9") && err.contains("9"), "{err}");
    }

    #[test]
    fn every_parameter_receives_a_gradient() {
        let (c, varmap) = cnn(&spec());
        let y = c
            .forward(&words(&[vec![2, 3, 4, 0], vec![5, 1, 0, 0]]))
            .unwrap();
        let loss = y.sqr().unwrap().sum_all().unwrap();
        let names = crate::model::tests::assert_every_gradient_nonzero(&loss, &varmap, "char_cnn");
        assert_eq!(names.len(), 3);
    }

    mod in_a_model {
        use std::collections::BTreeMap;

        use candle_core::Device;
        use mtl_core::{CharVocab, FeatureSet};
        use rand::SeedableRng;
        use rand::rngs::StdRng;

        use crate::bundle::tests::save_bundle;
        use crate::bundle::{self, Bundle};
        use crate::model::tests::{assert_every_gradient_nonzero, tiny_spec_of, toy_loss};
        use crate::spec::{BERT, BIGRU, BILSTM, CharCnnSpec, ModelSpec, TRANSFORMER};
        use crate::{Batch, LossWeights, MultiTaskModel, Targets};

        fn vocab() -> CharVocab {
            CharVocab::new("abcdefg".chars().collect(), true, 5)
        }

        fn spec_with_chars(kind: &str, layers: usize) -> ModelSpec {
            let mut spec = tiny_spec_of(kind, layers);
            spec.encoder.char_cnn = Some(CharCnnSpec {
                vocab_size: vocab().len(),
                char_dim: 4,
                filters: 3,
                width: 3,
            });
            spec
        }

        /// Two rows: [CLS] "abc" "ba" "ba" [SEP] and [CLS] "gx" [SEP].
        fn batch(d: &Device) -> Batch {
            let v = vocab();
            let chars = [vec![v.ids("abc"), v.ids("ba")], vec![v.ids("gx")]];
            Batch::pad(&[&[1, 4, 5, 6, 2], &[1, 7, 2]], d)
                .unwrap()
                .with_chars(&[&[-1, 0, 1, 1, -1][..], &[-1, 0, -1]], &chars)
                .unwrap()
        }

        #[test]
        fn every_parameter_receives_a_gradient() {
            for kind in [BILSTM, BIGRU, TRANSFORMER] {
                for layers in [1, 2] {
                    let d = Device::Cpu;
                    let (model, varmap) =
                        MultiTaskModel::new(&spec_with_chars(kind, layers), 7, &d).unwrap();
                    let b = batch(&d);
                    let (loss, _) = toy_loss(&model, &b);
                    let what = format!("{kind}, {layers} layers");
                    let names = assert_every_gradient_nonzero(&loss, &varmap, &what);
                    for want in ["embeddings", "weight", "bias"] {
                        let name = format!("encoder.char_cnn.{want}");
                        assert!(names.contains(&name), "{kind}: {names:?}");
                    }
                }
            }
        }

        #[test]
        fn characters_change_the_output_and_are_required() {
            let d = Device::Cpu;
            for kind in [BILSTM, TRANSFORMER] {
                let (model, _) = MultiTaskModel::new(&spec_with_chars(kind, 1), 7, &d).unwrap();
                let b = batch(&d);
                let before = model.encode(&b, None).unwrap();
                // Same sub-tokens, other characters for row 1's word.
                let v = vocab();
                let other = Batch::pad(&[&[1, 4, 5, 6, 2], &[1, 7, 2]], &d)
                    .unwrap()
                    .with_chars(
                        &[&[-1, 0, 1, 1, -1][..], &[-1, 0, -1]],
                        &[vec![v.ids("abc"), v.ids("ba")], vec![v.ids("dd")]],
                    )
                    .unwrap();
                let after = model.encode(&other, None).unwrap();
                let diff = |r: usize| {
                    (before.get(r).unwrap() - after.get(r).unwrap())
                        .unwrap()
                        .abs()
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f32>()
                        .unwrap()
                };
                assert_eq!(diff(0), 0.0, "{kind}");
                assert!(diff(1) > 0.0, "{kind}");
                let plain = Batch::pad(&[&[1, 4, 2]], &d).unwrap();
                let err = model.encode(&plain, None).err().unwrap().to_string();
                assert!(
                    err.contains("char_cnn") && err.contains("with_chars"),
                    "{err}"
                );
            }
            let err = MultiTaskModel::new(&spec_with_chars(BERT, 1), 7, &d)
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("char_cnn"), "{err}");
        }

        /// Every word is the same sub-token; its tag is whether the word
        /// starts with `a`: only the characters tell.
        #[test]
        fn a_tagger_learns_from_characters_alone() {
            use candle_nn::{AdamW, Optimizer, ParamsAdamW};
            let d = Device::Cpu;
            let v = vocab();
            let words = ["ab", "ba", "ac", "ca", "bb", "aa", "cb", "abc"];
            let rows: Vec<Vec<&str>> = (0..8)
                .map(|i| {
                    (0..3)
                        .map(|k| words[(i * 3 + k * 5) % words.len()])
                        .collect()
                })
                .collect();
            let ids: Vec<&[u32]> = rows.iter().map(|_| &[1u32, 5, 5, 5, 2][..]).collect();
            let word_ids: Vec<&[i32]> = rows.iter().map(|_| &[-1, 0, 1, 2, -1][..]).collect();
            let chars: Vec<Vec<Vec<u32>>> = rows
                .iter()
                .map(|r| r.iter().map(|w| v.ids(w)).collect())
                .collect();
            let batch = Batch::pad(&ids, &d)
                .unwrap()
                .with_chars(&word_ids, &chars)
                .unwrap();
            let tags: Vec<Vec<i32>> = rows
                .iter()
                .map(|r| {
                    let mut t = vec![-100];
                    t.extend(r.iter().map(|w| i32::from(w.starts_with('a'))));
                    t.push(-100);
                    t
                })
                .collect();
            let tags: Vec<Option<&[i32]>> = tags.iter().map(|t| Some(t.as_slice())).collect();
            let targets = BTreeMap::from([(
                "tags".to_string(),
                Targets::Token(batch.token_targets(&tags)),
            )]);
            for kind in [BIGRU, TRANSFORMER, BILSTM] {
                let mut spec = spec_with_chars(kind, 1);
                spec.tasks = vec![crate::HeadSpec::new("tags", mtl_core::TaskKind::Tagging, 2)];
                let (model, varmap) = MultiTaskModel::new(&spec, 5, &d).unwrap();
                let params = ParamsAdamW {
                    lr: 0.05,
                    weight_decay: 0.0,
                    ..Default::default()
                };
                let mut opt = AdamW::new(varmap.all_vars(), params).unwrap();
                let w = LossWeights::default();
                let loss = |m: &MultiTaskModel, rng: Option<&mut StdRng>| {
                    m.loss(&batch, &targets, &w, rng).unwrap().unwrap()
                };
                let first = loss(&model, None).1["tags"];
                // Training steps as the trainer takes them: dropout on.
                let mut rng = StdRng::seed_from_u64(2);
                for _ in 0..60 {
                    opt.backward_step(&loss(&model, Some(&mut rng)).0).unwrap();
                }
                let last = loss(&model, None).1["tags"];
                assert!(
                    last < 0.1 && last < first / 5.0,
                    "{kind}: {first} -> {last}"
                );
            }
        }

        #[test]
        fn a_bundle_carries_its_characters_and_predicts_the_same() {
            let dir = tempfile::tempdir().unwrap();
            let spec = spec_with_chars(BILSTM, 1);
            vocab().write(&dir.path().join(CharVocab::FILE)).unwrap();
            let out = dir.path().join("model");
            let model = save_bundle(dir.path(), &spec, &FeatureSet::default()).unwrap();
            // The tokenize folder's copy is not needed any more.
            std::fs::remove_file(dir.path().join(CharVocab::FILE)).unwrap();
            let b = Bundle::load(&out, &Device::Cpu).unwrap();
            assert_eq!(b.chars, Some(vocab()));
            assert_eq!(b.spec, spec);
            let batch = batch(&Device::Cpu);
            assert_eq!(
                b.predict(&batch).unwrap(),
                bundle::predict(&model, &batch).unwrap()
            );
        }

        #[test]
        fn a_bundle_without_its_characters_is_an_error() {
            let dir = tempfile::tempdir().unwrap();
            let spec = spec_with_chars(BILSTM, 1);
            let out = dir.path().join("model");
            let err = save_bundle(dir.path(), &spec, &FeatureSet::default())
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains("chars.json") && err.contains("char_ids"),
                "{err}"
            );
            // A vocabulary of another size than the embeddings.
            CharVocab::new(vec!['a'], true, 5)
                .write(&dir.path().join(CharVocab::FILE))
                .unwrap();
            let err = save_bundle(dir.path(), &spec, &FeatureSet::default())
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains("3 character ids") && err.contains("9"),
                "{err}"
            );
            // Saved fine, then lost.
            vocab().write(&dir.path().join(CharVocab::FILE)).unwrap();
            save_bundle(dir.path(), &spec, &FeatureSet::default()).unwrap();
            std::fs::remove_file(out.join(CharVocab::FILE)).unwrap();
            let err = Bundle::load(&out, &Device::Cpu).err().unwrap().to_string();
            assert!(err.contains("chars.json"), "{err}");
            // A model without char_cnn needs no chars.json.
            save_bundle(dir.path(), &tiny_spec_of(BILSTM, 1), &FeatureSet::default()).unwrap();
            assert!(Bundle::load(&out, &Device::Cpu).unwrap().chars.is_none());
        }
    }

    #[test]
    fn bad_sizes_are_an_error() {
        let mut p = ParamStore::new(3, &Device::Cpu);
        let err = CharCnn::new(&mut p, &CharCnnSpec { width: 0, ..spec() })
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("width (0)"), "{err}");
    }
}
