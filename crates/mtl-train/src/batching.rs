//! From row indices to model batches: padding (to the longest row, or to
//! `tokenize.pad_to`), side inputs, characters, every task's targets, and
//! the split of a batch that would exceed `train.max_tokens`.

use std::collections::BTreeMap;

use candle_core::Device;
use mtl_core::{FeatureSet, TaskKind};
use mtl_model::{Batch, ModelSpec, Targets};
use rand::Rng;
use rand::rngs::StdRng;

use crate::data::{Example, RowTarget};
use crate::error::Result;

/// A batch of rows `idx` padded to their longest row, or to `pad_to`
/// (`tokenize.pad_to`), with the side inputs of every head that takes some
/// and, when the rows carry them, their characters.
pub fn batch_rows(
    examples: &[Example],
    idx: &[usize],
    features: &FeatureSet,
    pad_to: Option<usize>,
    device: &Device,
) -> Result<Batch> {
    let rows: Vec<&[u32]> = idx
        .iter()
        .map(|&i| examples[i].input_ids.as_slice())
        .collect();
    batch_of(examples, idx, &rows, features, pad_to, device)
}

/// `train.word_dropout`: which id replaces a dropped sub-token, and which
/// ids are never dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct WordDropout {
    pub p: f64,
    pub unk: u32,
    /// The tokenizer's special tokens (`[CLS]`, `[SEP]`, padding, …).
    pub specials: Vec<u32>,
}

impl WordDropout {
    /// `ids` with each non-special id replaced by `unk` with probability
    /// `p`, drawn from `rng`.
    pub fn apply(&self, ids: &[u32], rng: &mut impl Rng) -> Vec<u32> {
        ids.iter()
            .map(|&id| {
                if !self.specials.contains(&id) && rng.random::<f64>() < self.p {
                    self.unk
                } else {
                    id
                }
            })
            .collect()
    }
}

/// [`batch_rows`] for a training step: with `drop`, each row's sub-tokens
/// go through [`WordDropout::apply`] first.
pub fn training_batch(
    examples: &[Example],
    idx: &[usize],
    features: &FeatureSet,
    pad_to: Option<usize>,
    device: &Device,
    drop: Option<(&WordDropout, &mut StdRng)>,
) -> Result<Batch> {
    let Some((drop, rng)) = drop else {
        return batch_rows(examples, idx, features, pad_to, device);
    };
    let dropped: Vec<Vec<u32>> = idx
        .iter()
        .map(|&i| drop.apply(&examples[i].input_ids, rng))
        .collect();
    let rows: Vec<&[u32]> = dropped.iter().map(Vec::as_slice).collect();
    batch_of(examples, idx, &rows, features, pad_to, device)
}

/// The batch of `rows` (the ids of rows `idx`), with their side inputs
/// and characters.
fn batch_of(
    examples: &[Example],
    idx: &[usize],
    rows: &[&[u32]],
    features: &FeatureSet,
    pad_to: Option<usize>,
    device: &Device,
) -> Result<Batch> {
    let mut batch = Batch::padded(rows, pad_to, device)?;
    if !features.used().is_empty() {
        let values: Vec<&BTreeMap<String, f32>> =
            idx.iter().map(|&i| &examples[i].features).collect();
        batch = batch.with_features(features, &values)?;
    }
    let word_ids: Option<Vec<&[i32]>> = idx
        .iter()
        .map(|&i| examples[i].word_ids.as_deref())
        .collect();
    let chars: Option<Vec<&[Vec<u32>]>> =
        idx.iter().map(|&i| examples[i].chars.as_deref()).collect();
    // `with_chars` records the word starts too, from the same word ids.
    batch = match (word_ids, chars) {
        (Some(w), Some(c)) => batch.with_chars(&w, &c)?,
        (Some(w), None) => batch.with_word_ids(&w)?,
        (None, _) => batch,
    };
    Ok(batch)
}

/// Every task's targets for rows `idx` of `batch`: each task that at least
/// one row carries, so that a row with several tasks trains all of them.
pub fn targets(
    examples: &[Example],
    idx: &[usize],
    spec: &ModelSpec,
    batch: &Batch,
) -> BTreeMap<String, Targets> {
    let mut out = BTreeMap::new();
    for h in &spec.tasks {
        if !idx
            .iter()
            .any(|&i| examples[i].targets.contains_key(&h.name))
        {
            continue;
        }
        let gold = |i: usize| examples[i].targets.get(&h.name);
        let t = match h.kind {
            TaskKind::Tagging | TaskKind::Spans => {
                let per_row: Vec<Option<&[i32]>> = idx
                    .iter()
                    .map(|&i| match gold(i) {
                        Some(RowTarget::Token(y)) => Some(y.as_slice()),
                        _ => None,
                    })
                    .collect();
                Targets::Token(batch.token_targets(&per_row))
            }
            TaskKind::Dependency => {
                let (heads, rels): (Vec<_>, Vec<_>) = idx
                    .iter()
                    .map(|&i| match gold(i) {
                        Some(RowTarget::Tree { heads, rels }) => {
                            (Some(heads.as_slice()), Some(rels.as_slice()))
                        }
                        _ => (None, None),
                    })
                    .unzip();
                Targets::Tree {
                    heads: batch.token_targets(&heads),
                    rels: batch.token_targets(&rels),
                }
            }
            TaskKind::Classification => Targets::Sentence(
                idx.iter()
                    .map(|&i| match gold(i) {
                        Some(RowTarget::Sentence(y)) => *y,
                        _ => -1,
                    })
                    .collect(),
            ),
            TaskKind::Multilabel => Targets::Multilabel(
                idx.iter()
                    .map(|&i| match gold(i) {
                        Some(RowTarget::Multilabel(y)) => Some(y.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
            TaskKind::Regression => Targets::Regression(
                idx.iter()
                    .map(|&i| match gold(i) {
                        Some(RowTarget::Regression(y)) => Some(*y),
                        _ => None,
                    })
                    .collect(),
            ),
        };
        out.insert(h.name.clone(), t);
    }
    out
}

/// Cuts the rows `idx` (in order) into consecutive chunks whose padded size
/// (rows × width, the width being `pad_to` or the chunk's longest row)
/// stays within `max_tokens`. A row wider than `max_tokens` on its own
/// forms a chunk by itself: rows are never cut.
pub fn split_by_tokens(
    idx: &[usize],
    lengths: impl Fn(usize) -> usize,
    max_tokens: Option<usize>,
    pad_to: Option<usize>,
) -> Vec<Vec<usize>> {
    let Some(max) = max_tokens else {
        return vec![idx.to_vec()];
    };
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut width = 0;
    for &i in idx {
        let w = pad_to.unwrap_or(0).max(lengths(i)).max(width);
        if !current.is_empty() && (current.len() + 1) * w > max {
            chunks.push(std::mem::take(&mut current));
            width = 0;
        }
        width = pad_to.unwrap_or(0).max(lengths(i)).max(width);
        current.push(i);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stay_within_max_tokens() {
        let lengths = [3usize, 4, 4, 5, 6, 6, 7, 9, 12, 40];
        let idx: Vec<usize> = (0..lengths.len()).collect();
        let chunks = split_by_tokens(&idx, |i| lengths[i], Some(20), None);
        assert_eq!(chunks.concat(), idx, "every row once, in order");
        for c in &chunks {
            let width = c.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(c.len() * width <= 20 || c.len() == 1, "{chunks:?}");
        }
        // 3,4,4,5 (4·5 = 20) | 6,6 (and 7 would make 21) | 7,9 | 12 | 40
        assert_eq!(
            chunks,
            [vec![0, 1, 2, 3], vec![4, 5], vec![6, 7], vec![8], vec![9]]
        );
        // pad_to fixes the width: 20 / 8 = 2 rows per chunk.
        let chunks = split_by_tokens(&idx[..6], |i| lengths[i], Some(20), Some(8));
        assert!(chunks.iter().all(|c| c.len() == 2), "{chunks:?}");
        // No bound: one chunk.
        assert_eq!(split_by_tokens(&idx, |i| lengths[i], None, None).len(), 1);
    }

    #[test]
    fn batches_follow_pad_to() {
        let ex = |ids: Vec<u32>| Example {
            input_ids: ids,
            targets: BTreeMap::new(),
            features: BTreeMap::new(),
            word_ids: None,
            chars: None,
        };
        let data = [ex(vec![1, 2]), ex(vec![3, 4, 5])];
        let fs = FeatureSet::default();
        let b = batch_rows(&data, &[0, 1], &fs, Some(8), &Device::Cpu).unwrap();
        assert_eq!(b.input_ids.dims(), [2, 8]);
        assert_eq!(b.lengths, [2, 3]);
        let b = batch_rows(&data, &[0, 1], &fs, None, &Device::Cpu).unwrap();
        assert_eq!(b.input_ids.dims(), [2, 3]);
        assert!(b.chars.is_none());
    }

    #[test]
    fn word_dropout_replaces_about_p_of_the_words_and_never_a_special() {
        use rand::SeedableRng;
        let drop = WordDropout {
            p: 0.25,
            unk: 1,
            specials: vec![0, 2, 3],
        };
        // [CLS] w w … w [SEP], 10,000 words.
        let mut ids = vec![2u32];
        ids.extend((0..10_000).map(|i| 10 + i % 50));
        ids.push(3);
        let mut rng = StdRng::seed_from_u64(7);
        let out = drop.apply(&ids, &mut rng);
        assert_eq!((out[0], out[out.len() - 1]), (2, 3), "specials stay");
        let dropped = out.iter().filter(|&&id| id == 1).count();
        assert!((2_300..2_700).contains(&dropped), "{dropped} of 10,000");
        for (a, b) in ids.iter().zip(&out) {
            assert!(a == b || *b == 1);
        }
        // The same generator state drops the same words.
        assert_eq!(out, drop.apply(&ids, &mut StdRng::seed_from_u64(7)));
        // A training batch carries the dropped ids; without dropout, the
        // rows as they are.
        let data = [Example {
            input_ids: ids.clone(),
            targets: BTreeMap::new(),
            features: BTreeMap::new(),
            word_ids: None,
            chars: None,
        }];
        let fs = FeatureSet::default();
        let mut rng = StdRng::seed_from_u64(7);
        let b = training_batch(
            &data,
            &[0],
            &fs,
            None,
            &Device::Cpu,
            Some((&drop, &mut rng)),
        )
        .unwrap();
        assert_eq!(b.input_ids.to_vec2::<u32>().unwrap()[0], out);
        let b = training_batch(&data, &[0], &fs, None, &Device::Cpu, None).unwrap();
        assert_eq!(b.input_ids.to_vec2::<u32>().unwrap()[0], ids);
    }

    #[test]
    fn rows_with_word_ids_give_the_crf_its_word_starts() {
        let ex = |ids: Vec<u32>, word_ids: Option<Vec<i32>>| Example {
            input_ids: ids,
            targets: BTreeMap::new(),
            features: BTreeMap::new(),
            word_ids,
            chars: None,
        };
        let data = [
            ex(vec![2, 7, 8, 9, 3], Some(vec![-1, 0, 0, 1, -1])),
            ex(vec![2, 5, 3], Some(vec![-1, 0, -1])),
            ex(vec![2, 5, 3], None),
        ];
        let fs = FeatureSet::default();
        let b = batch_rows(&data, &[0, 1], &fs, None, &Device::Cpu).unwrap();
        assert_eq!(b.word_starts, Some(vec![vec![1, 3], vec![1]]));
        // A row without word ids (a hand-built table): no word starts.
        let b = batch_rows(&data, &[0, 2], &fs, None, &Device::Cpu).unwrap();
        assert_eq!(b.word_starts, None);
    }

    #[test]
    fn rows_with_characters_give_a_batch_with_characters() {
        let ex = |ids: Vec<u32>, word_ids: Vec<i32>, char_ids: Vec<Vec<u32>>| Example {
            input_ids: ids,
            targets: BTreeMap::new(),
            features: BTreeMap::new(),
            word_ids: Some(word_ids),
            chars: Some(char_ids),
        };
        let data = [
            ex(vec![2, 7, 3], vec![-1, 0, -1], vec![vec![4, 5]]),
            ex(vec![2, 7, 8, 3], vec![-1, 0, 0, -1], vec![vec![6]]),
        ];
        let b = batch_rows(&data, &[1, 0], &FeatureSet::default(), None, &Device::Cpu).unwrap();
        let c = b.chars.unwrap();
        // Words once each (the empty one first), then each position's word.
        assert_eq!(c.words.to_vec2::<u32>().unwrap(), [[0, 0], [6, 0], [4, 5]]);
        assert_eq!(
            c.positions.to_vec2::<u32>().unwrap(),
            [[0, 1, 1, 0], [0, 2, 0, 0]]
        );
    }
}
