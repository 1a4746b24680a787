//! Per-batch padding and side inputs. Artifacts store unpadded id lists; a
//! batch pads to its own longest row ([`Batch::pad`]), so length-sorted
//! batches waste little work, or to a fixed length ([`Batch::pad_to`],
//! `tokenize.pad_to`) for deterministic shapes.
//!
//! Sentence-level heads can take side inputs (clean-stage features, see
//! `features.json`). Build a batch with them in two steps:
//!
//! ```text
//! let batch = Batch::pad(&rows, &device)?            // rows: &[&[u32]]
//!     .with_features(&feature_set, &raw_values)?;    // raw_values: &[M], M: Borrow<BTreeMap<String, f32>>
//! ```
//!
//! `with_features(self, set: &FeatureSet, rows: &[M]) -> Result<Batch>`
//! takes one map per row (feature name → raw value, e.g. the `feat_<name>`
//! columns), standardizes every value with [`FeatureSet::standardize`] and
//! stores, for every task with selected features, a `(B, k)` tensor in
//! [`Batch::features`], columns in the task's `selected` order. A row
//! missing a needed feature, or holding a non-finite value, is an error.
//!
//! A model with `model.char_cnn` also needs every position's characters:
//!
//! ```text
//! let batch = Batch::pad(&rows, &device)?
//!     .with_chars(&word_ids, &char_ids)?;   // word_ids: &[W], W: AsRef<[i32]>; char_ids: &[C], C: AsRef<[Vec<u32>]>
//! ```
//!
//! `with_chars(self, word_ids, char_ids) -> Result<Batch>` takes per row
//! the word of each sub-token (the `word_ids` column: one per sub-token,
//! -1 = special token) and the character ids of each word of the example
//! (the `char_ids` column, or `CharVocab::ids` of each word at predict
//! time), and stores [`BatchChars`] in [`Batch::chars`]: the batch's
//! distinct character sequences once each (a word's vector depends on its
//! characters only, so "the" in every row is computed once) and, per
//! position, which of them its word is. A row whose word ids and
//! sub-tokens differ in number, or that names a word it has no characters
//! for, is an error naming the row.
//!
//! A CRF head runs its chain over words, one position per word: the word's
//! first sub-token, where `mtl_core::align` puts its label. The batch knows
//! those positions from the same `word_ids`:
//!
//! ```text
//! let batch = Batch::pad(&rows, &device)?
//!     .with_word_ids(&word_ids)?;           // word_ids: &[W], W: AsRef<[i32]>
//! ```
//!
//! `with_word_ids(self, word_ids) -> Result<Batch>` stores, per row, the
//! position of each word's first sub-token in [`Batch::word_starts`]
//! (`with_chars` does the same, as it reads the same column). A batch
//! without them decodes a CRF over every real position, specials and
//! continuation pieces included (see `heads::crf`), so eval and predict
//! must give them.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

use candle_core::{Device, Tensor};
use mtl_core::FeatureSet;
use mtl_core::artifact::IGNORE_INDEX;

use crate::error::{Error, Result};

pub struct Batch {
    /// `(B, T)` u32, padded with 0.
    pub input_ids: Tensor,
    /// `(B, T)` f32: 1 on real positions, 0 on padding.
    pub mask: Tensor,
    pub lengths: Vec<usize>,
    /// Standardized side inputs per task, `(B, k)` f32; only tasks whose
    /// head takes side inputs. Filled by [`Batch::with_features`].
    pub features: BTreeMap<String, Tensor>,
    /// Each position's word's characters (see the module docs). Filled by
    /// [`Batch::with_chars`]; a model with `char_cnn` needs it.
    pub chars: Option<BatchChars>,
    /// Per row, the position of each word's first sub-token, ascending
    /// (specials and continuation pieces left out): the chain a CRF head
    /// decodes. Filled by [`Batch::with_word_ids`] (and
    /// [`Batch::with_chars`]).
    pub word_starts: Option<Vec<Vec<usize>>>,
}

/// The characters of a batch's words.
pub struct BatchChars {
    /// `(W, C)` u32: the distinct character sequences of the batch's words,
    /// padded with 0 to the longest; row 0 is the empty word (no
    /// characters), which specials and padding point to.
    pub words: Tensor,
    /// `(B, T)` u32: the row of `words` holding each position's word.
    pub positions: Tensor,
}

impl Batch {
    /// Pads every row to the batch's longest row.
    pub fn pad(rows: &[&[u32]], device: &Device) -> Result<Batch> {
        Self::padded(rows, None, device)
    }

    /// Pads every row to exactly `len` positions; a row longer than `len`
    /// is an error naming both lengths.
    pub fn pad_to(rows: &[&[u32]], len: usize, device: &Device) -> Result<Batch> {
        Self::padded(rows, Some(len), device)
    }

    /// [`Batch::pad_to`] with `Some(len)`, [`Batch::pad`] with `None`: the
    /// form to call with `tokenize.pad_to` as it is.
    pub fn padded(rows: &[&[u32]], pad_to: Option<usize>, device: &Device) -> Result<Batch> {
        if rows.is_empty() {
            return Err(Error::Invalid("cannot build an empty batch".into()));
        }
        let longest = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let t = match pad_to {
            None => longest.max(1),
            Some(0) => return Err(Error::Invalid("pad_to must be at least 1".into())),
            Some(n) => {
                if let Some(i) = rows.iter().position(|r| r.len() > n) {
                    return Err(Error::Invalid(format!(
                        "batch row {i} has {} sub-tokens, more than pad_to = {n}",
                        rows[i].len()
                    )));
                }
                n
            }
        };
        let b = rows.len();
        let mut ids = vec![0u32; b * t];
        let mut mask = vec![0f32; b * t];
        for (i, r) in rows.iter().enumerate() {
            ids[i * t..i * t + r.len()].copy_from_slice(r);
            mask[i * t..i * t + r.len()].fill(1.0);
        }
        Ok(Batch {
            input_ids: Tensor::from_vec(ids, (b, t), device)?,
            mask: Tensor::from_vec(mask, (b, t), device)?,
            lengths: rows.iter().map(|r| r.len()).collect(),
            features: BTreeMap::new(),
            chars: None,
            word_starts: None,
        })
    }

    /// Records every row's word starts (see the module docs): the first
    /// position of each word id (`-1` = special token), as
    /// `mtl_core::align::first_subtoken_positions` finds them. A row whose
    /// word ids and sub-tokens differ in number is an error naming it.
    pub fn with_word_ids<W: AsRef<[i32]>>(mut self, word_ids: &[W]) -> Result<Batch> {
        self.word_starts = Some(self.starts_of(word_ids)?);
        Ok(self)
    }

    fn starts_of<W: AsRef<[i32]>>(&self, word_ids: &[W]) -> Result<Vec<Vec<usize>>> {
        if word_ids.len() != self.size() {
            return Err(Error::Invalid(format!(
                "word ids for {} rows, but the batch has {}",
                word_ids.len(),
                self.size()
            )));
        }
        word_ids
            .iter()
            .enumerate()
            .map(|(i, ws)| {
                let ws = ws.as_ref();
                if ws.len() != self.lengths[i] {
                    return Err(Error::Invalid(format!(
                        "batch row {i}: {} word ids for {} sub-tokens",
                        ws.len(),
                        self.lengths[i]
                    )));
                }
                Ok(word_starts(ws))
            })
            .collect()
    }

    /// Adds every position's word characters (see the module docs) and,
    /// from the same word ids, the word starts as [`Batch::with_word_ids`].
    pub fn with_chars<W: AsRef<[i32]>, C: AsRef<[Vec<u32>]>>(
        mut self,
        word_ids: &[W],
        char_ids: &[C],
    ) -> Result<Batch> {
        let b = self.size();
        let t = self.max_len();
        if word_ids.len() != b || char_ids.len() != b {
            return Err(Error::Invalid(format!(
                "word ids for {} rows and character ids for {}, but the batch has {b}",
                word_ids.len(),
                char_ids.len()
            )));
        }
        let mut distinct: HashMap<&[u32], u32> = HashMap::from([(&[][..], 0)]);
        let mut words: Vec<&[u32]> = vec![&[]];
        let mut positions = vec![0u32; b * t];
        for (i, (ws, chars)) in word_ids.iter().zip(char_ids).enumerate() {
            let (ws, chars) = (ws.as_ref(), chars.as_ref());
            if ws.len() != self.lengths[i] {
                return Err(Error::Invalid(format!(
                    "batch row {i}: {} word ids for {} sub-tokens",
                    ws.len(),
                    self.lengths[i]
                )));
            }
            for (j, &w) in ws.iter().enumerate() {
                // Specials (negative ids) keep the empty word.
                let Ok(w) = usize::try_from(w) else { continue };
                let c = chars.get(w).ok_or_else(|| {
                    Error::Invalid(format!(
                        "batch row {i}: sub-token {j} belongs to word {w}, but the row has \
                         character ids for {} words",
                        chars.len()
                    ))
                })?;
                positions[i * t + j] = *distinct.entry(c.as_slice()).or_insert_with(|| {
                    words.push(c);
                    words.len() as u32 - 1
                });
            }
        }
        let widest = words.iter().map(|w| w.len()).max().unwrap_or(0).max(1);
        let mut data = vec![0u32; words.len() * widest];
        for (slot, word) in data.chunks_mut(widest).zip(&words) {
            slot[..word.len()].copy_from_slice(word);
        }
        self.word_starts = Some(self.starts_of(word_ids)?);
        let device = self.input_ids.device().clone();
        self.chars = Some(BatchChars {
            words: Tensor::from_vec(data, (words.len(), widest), &device)?,
            positions: Tensor::from_vec(positions, (b, t), &device)?,
        });
        Ok(self)
    }

    /// Adds every task's standardized side inputs (see the module docs).
    /// `rows` holds one map of raw feature values per batch row.
    pub fn with_features<M: Borrow<BTreeMap<String, f32>>>(
        mut self,
        set: &FeatureSet,
        rows: &[M],
    ) -> Result<Batch> {
        if rows.len() != self.size() {
            return Err(Error::Invalid(format!(
                "side inputs for {} rows, but the batch has {}",
                rows.len(),
                self.size()
            )));
        }
        let device = self.input_ids.device().clone();
        for (task, tf) in &set.tasks {
            let k = tf.selected.len();
            if k == 0 {
                continue;
            }
            let mut data = Vec::with_capacity(rows.len() * k);
            for (i, row) in rows.iter().enumerate() {
                let row = row.borrow();
                for f in &tf.selected {
                    let x = row.get(f).copied().ok_or_else(|| {
                        Error::Invalid(format!(
                            "batch row {i}: task `{task}` takes feature `{f}`, which the row lacks"
                        ))
                    })?;
                    if !x.is_finite() {
                        return Err(Error::Invalid(format!(
                            "batch row {i}: feature `{f}` is {x}"
                        )));
                    }
                    data.push(set.standardize(f, f64::from(x)) as f32);
                }
            }
            self.features.insert(
                task.clone(),
                Tensor::from_vec(data, (rows.len(), k), &device)?,
            );
        }
        Ok(self)
    }

    pub fn size(&self) -> usize {
        self.lengths.len()
    }

    pub fn max_len(&self) -> usize {
        self.input_ids.dims().get(1).copied().unwrap_or(0)
    }

    /// Flattens per-row sub-token targets to `B * T`, padding with the ignore
    /// index. A `None` row (no label for this task) is ignored entirely.
    pub fn token_targets(&self, rows: &[Option<&[i32]>]) -> Vec<i32> {
        let t = self.max_len();
        let mut out = vec![IGNORE_INDEX; rows.len() * t];
        for (i, r) in rows.iter().enumerate() {
            if let Some(r) = r {
                let n = r.len().min(t);
                out[i * t..i * t + n].copy_from_slice(&r[..n]);
            }
        }
        out
    }
}

/// The position of each word's first sub-token in one row's `word_ids`
/// (-1 = special token), ascending: the first position of every word id.
pub fn word_starts(word_ids: &[i32]) -> Vec<usize> {
    let n_words = word_ids.iter().map(|&w| w + 1).max().unwrap_or(0).max(0) as usize;
    let mut starts: Vec<usize> = mtl_core::align::first_subtoken_positions(word_ids, n_words)
        .into_iter()
        .flatten()
        .collect();
    starts.sort_unstable();
    starts
}

/// Gold targets of one task for one batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// One per row; negative = no label.
    Sentence(Vec<i32>),
    /// Flattened `B * T` from [`Batch::token_targets`].
    Token(Vec<i32>),
    /// Per row, the label ids it carries (an empty list is a labelled row
    /// with no label); `None` = the row does not carry the task.
    Multilabel(Vec<Option<Vec<u32>>>),
    /// Per row, the target in its own units (the model standardizes it);
    /// `None` = no label.
    Regression(Vec<Option<f32>>),
    /// A dependency task, both flattened `B * T` like [`Targets::Token`]:
    /// at each scored word's first sub-token, its head's position (0 = the
    /// root) and its relation id; negative elsewhere.
    Tree { heads: Vec<i32>, rels: Vec<i32> },
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::features::{FeatureStats, TaskFeatures};

    pub(crate) fn feature_set() -> FeatureSet {
        let mut set = FeatureSet::default();
        set.stats.insert(
            "n_words".into(),
            FeatureStats {
                mean: 4.0,
                std: 2.0,
            },
        );
        set.stats.insert(
            "upper_ratio".into(),
            FeatureStats {
                mean: 0.5,
                std: 0.25,
            },
        );
        set.tasks.insert(
            "sent".into(),
            TaskFeatures {
                ranking: vec![],
                selected: vec!["upper_ratio".into(), "n_words".into()],
            },
        );
        set.tasks.insert("other".into(), TaskFeatures::default());
        set
    }

    fn values(n_words: f32, upper: f32) -> BTreeMap<String, f32> {
        BTreeMap::from([
            ("n_words".to_string(), n_words),
            ("upper_ratio".to_string(), upper),
            ("digit_ratio".to_string(), 9.0),
        ])
    }

    #[test]
    fn pad_to_gives_a_fixed_width() {
        let d = Device::Cpu;
        let b = Batch::pad_to(&[&[1, 2], &[3]], 5, &d).unwrap();
        assert_eq!(b.input_ids.dims(), [2, 5]);
        assert_eq!(b.max_len(), 5);
        assert_eq!(b.lengths, vec![2, 1]);
        assert_eq!(
            b.input_ids.to_vec2::<u32>().unwrap(),
            [[1, 2, 0, 0, 0], [3, 0, 0, 0, 0]]
        );
        assert_eq!(
            b.mask.to_vec2::<f32>().unwrap(),
            [[1.0, 1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]]
        );
        assert_eq!(b.token_targets(&[Some(&[7, 8]), None]).len(), 10);
        // Without pad_to, the longest row decides.
        let b = Batch::padded(&[&[1, 2], &[3]], None, &d).unwrap();
        assert_eq!(b.input_ids.dims(), [2, 2]);
        // Exactly pad_to is fine; longer is an error naming the lengths.
        assert!(Batch::pad_to(&[&[1, 2, 3]], 3, &d).is_ok());
        let err = Batch::pad_to(&[&[1], &[1, 2, 3, 4]], 3, &d)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("row 1") && err.contains("4 sub-tokens") && err.contains("pad_to = 3"),
            "{err}"
        );
        assert!(Batch::pad_to(&[&[]], 0, &d).is_err());
    }

    #[test]
    fn side_inputs_are_standardized_in_selected_order() {
        let d = Device::Cpu;
        let b = Batch::pad(&[&[1, 2], &[3]], &d)
            .unwrap()
            .with_features(&feature_set(), &[values(6.0, 0.5), values(2.0, 1.0)])
            .unwrap();
        assert_eq!(b.features.keys().collect::<Vec<_>>(), ["sent"]);
        assert_eq!(
            b.features["sent"].to_vec2::<f32>().unwrap(),
            [[0.0, 1.0], [2.0, -1.0]]
        );
    }

    #[test]
    fn a_missing_or_bad_side_input_is_a_clear_error() {
        let d = Device::Cpu;
        let mut row = values(1.0, 1.0);
        row.remove("n_words");
        let err = Batch::pad(&[&[1]], &d)
            .unwrap()
            .with_features(&feature_set(), &[&row])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("`n_words`") && err.contains("`sent`"), "{err}");
        let err = Batch::pad(&[&[1]], &d)
            .unwrap()
            .with_features(&feature_set(), &[values(f32::NAN, 1.0)])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("NaN"), "{err}");
        let err = Batch::pad(&[&[1]], &d)
            .unwrap()
            .with_features(&feature_set(), &[values(1.0, 1.0), values(1.0, 1.0)])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("2 rows"), "{err}");
    }

    /// Each position's characters, read back through `positions`.
    pub(crate) fn position_chars(b: &Batch) -> Vec<Vec<Vec<u32>>> {
        let c = b.chars.as_ref().unwrap();
        let words = c.words.to_vec2::<u32>().unwrap();
        let strip = |w: &Vec<u32>| w.iter().copied().filter(|&x| x != 0).collect::<Vec<_>>();
        c.positions
            .to_vec2::<u32>()
            .unwrap()
            .iter()
            .map(|row| row.iter().map(|&k| strip(&words[k as usize])).collect())
            .collect()
    }

    #[test]
    fn chars_follow_each_sub_tokens_word() {
        let d = Device::Cpu;
        // Row 0: [CLS] w0 w1 w1 [SEP]; row 1: [CLS] w0 [SEP], padded to 6.
        let word_ids: [&[i32]; 2] = [&[-1, 0, 1, 1, -1], &[-1, 0, -1]];
        let chars: [Vec<Vec<u32>>; 2] = [vec![vec![5], vec![2, 3, 4]], vec![vec![2, 3, 4]]];
        let b = Batch::pad_to(&[&[2, 9, 9, 9, 3], &[2, 9, 3]], 6, &d)
            .unwrap()
            .with_chars(&word_ids, &chars)
            .unwrap();
        let c = b.chars.as_ref().unwrap();
        // The empty word, [5] and [2, 3, 4] once, padded to the widest.
        assert_eq!(
            c.words.to_vec2::<u32>().unwrap(),
            [[0, 0, 0], [5, 0, 0], [2, 3, 4]]
        );
        assert_eq!(
            c.positions.to_vec2::<u32>().unwrap(),
            [[0, 1, 2, 2, 0, 0], [0, 2, 0, 0, 0, 0]]
        );
        let e: Vec<u32> = vec![];
        assert_eq!(
            position_chars(&b)[0],
            [
                e.clone(),
                vec![5],
                vec![2, 3, 4],
                vec![2, 3, 4],
                e.clone(),
                e
            ]
        );
        // Only specials: the empty word alone, one padding column.
        let b = Batch::pad(&[&[2, 3]], &d)
            .unwrap()
            .with_chars(&[[-1, -1]], &[Vec::<Vec<u32>>::new()])
            .unwrap();
        assert_eq!(b.chars.unwrap().words.dims(), [1, 1]);
    }

    #[test]
    fn word_starts_are_each_words_first_sub_token() {
        let d = Device::Cpu;
        // [CLS] un ##believ ##able day [SEP]; [CLS] w0 [SEP]; specials only.
        let word_ids: [&[i32]; 3] = [&[-1, 0, 0, 0, 1, -1], &[-1, 0, -1], &[-1, -1]];
        let b = Batch::pad(&[&[2, 9, 9, 9, 8, 3], &[2, 9, 3], &[2, 3]], &d)
            .unwrap()
            .with_word_ids(&word_ids)
            .unwrap();
        assert_eq!(
            b.word_starts.unwrap(),
            [vec![1, 4], vec![1], Vec::<usize>::new()]
        );
        // A window that starts inside a word: its first piece there counts.
        assert_eq!(word_starts(&[-1, 3, 4, 4, 5, -1]), [1, 2, 4]);
        assert!(Batch::pad(&[&[1]], &d).unwrap().word_starts.is_none());
        // with_chars reads the same column and records them too.
        let b = Batch::pad(&[&[2, 9, 9, 3]], &d)
            .unwrap()
            .with_chars(&[[-1, 0, 0, -1]], &[vec![vec![4]]])
            .unwrap();
        assert_eq!(b.word_starts.unwrap(), [vec![1]]);
        // Word ids that do not fit the rows are an error naming them.
        let err = Batch::pad(&[&[2, 9, 3], &[2, 9, 9, 3]], &d)
            .unwrap()
            .with_word_ids(&[&[-1, 0, -1][..], &[-1, 0, -1]])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("row 1") && err.contains("3 word ids for 4"),
            "{err}"
        );
        let err = Batch::pad(&[&[2, 9, 3]], &d)
            .unwrap()
            .with_word_ids(&[[-1, 0, -1], [-1, 0, -1]])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("batch has 1"), "{err}");
    }

    #[test]
    fn chars_that_do_not_fit_the_row_are_an_error_naming_it() {
        let d = Device::Cpu;
        let batch = || Batch::pad(&[&[2, 9, 3], &[2, 9, 9, 3]], &d).unwrap();
        let ok: &[i32] = &[-1, 0, -1];
        // Row 1 has two words but character ids for one.
        let err = batch()
            .with_chars(&[ok, &[-1, 0, 1, -1]], &[vec![vec![4]], vec![vec![4]]])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("row 1") && err.contains("word 1") && err.contains("for 1 words"),
            "{err}"
        );
        let err = batch()
            .with_chars(&[ok, &[-1, 0, -1]], &[vec![vec![4]], vec![vec![4]]])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("row 1") && err.contains("3 word ids for 4"),
            "{err}"
        );
        let err = batch()
            .with_chars(&[ok], &[vec![vec![4]]])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("batch has 2"), "{err}");
    }
}
