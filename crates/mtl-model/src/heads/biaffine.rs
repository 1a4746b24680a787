//! The dependency head of Dozat & Manning (2017): every word scores every
//! candidate head with a biaffine product of two small projections of the
//! encoder's output, and the relation to a given head with a bilinear one.
//!
//! Positions are sub-token positions. A word is its first sub-token, the
//! root is position 0 (`[CLS]`), and the candidate heads of a row are the
//! root and its word starts ([`Batch::word_starts`]); every other position
//! is masked out of the softmax. So the arc scores are `(B, T, T)`
//! (dependent, head) and a tree decoded from them ([`super::mst`]) is one
//! head position per word start.
//!
//! Training scores relations at the gold heads, decoding at the predicted
//! ones (so no `(B, T, T, L)` tensor is ever built).
//!
//! [`Batch::word_starts`]: crate::batch::Batch::word_starts

use candle_core::Tensor;

use super::Linear;
use crate::error::{Error, Result};
use crate::loss::masked_cross_entropy;
use crate::params::ParamStore;

/// Width of the arc projections. Dozat & Manning use 500 over a 2×400
/// BiLSTM; 256 keeps the `(T, a) x (a, a)` product cheap on CPU for the
/// 2×200 encoders the shipped recipes use.
pub const ARC_DIM: usize = 256;
/// Width of the relation projections (Dozat & Manning: 100).
pub const REL_DIM: usize = 100;

/// What a softmax gives a masked-out candidate: finite, so that a row's
/// log-sum-exp never meets `-inf - -inf`, and far enough below any score.
const MASKED: f32 = -1e9;

pub struct BiaffineHead {
    arc_dep: Linear,
    arc_head: Linear,
    rel_dep: Linear,
    rel_head: Linear,
    /// `(a, a)`: the bilinear arc weight.
    arc_u: Tensor,
    /// `(a, 1)`: how likely a word is to be a head at all.
    arc_bias: Tensor,
    /// `(r, L * r)`: one bilinear form per relation, side by side.
    rel_u: Tensor,
    /// Relation scores from the dependent and the head on their own.
    rel_lin: Linear,
    labels: usize,
}

impl BiaffineHead {
    pub fn new(p: &mut ParamStore, input: usize, labels: usize) -> Result<Self> {
        if labels == 0 {
            return Err(Error::Invalid(
                "a dependency head needs at least one relation".into(),
            ));
        }
        let arc_dep = p.scoped("arc_dep", |p| Linear::new(p, input, ARC_DIM))?;
        let arc_head = p.scoped("arc_head", |p| Linear::new(p, input, ARC_DIM))?;
        let rel_dep = p.scoped("rel_dep", |p| Linear::new(p, input, REL_DIM))?;
        let rel_head = p.scoped("rel_head", |p| Linear::new(p, input, REL_DIM))?;
        // Small bilinear weights: at start every candidate scores about
        // alike, as Dozat & Manning's zero initialisation intends, while the
        // gradient still reaches the projections through them.
        let arc_u = p.uniform("arc_u", &[ARC_DIM, ARC_DIM], 1.0 / ARC_DIM as f64)?;
        let arc_bias = p.uniform("arc_bias", &[ARC_DIM, 1], 1.0 / (ARC_DIM as f64).sqrt())?;
        let rel_u = p.uniform("rel_u", &[REL_DIM, labels * REL_DIM], 1.0 / REL_DIM as f64)?;
        let rel_lin = p.scoped("rel_lin", |p| Linear::new(p, 2 * REL_DIM, labels))?;
        Ok(Self {
            arc_dep,
            arc_head,
            rel_dep,
            rel_head,
            arc_u,
            arc_bias,
            rel_u,
            rel_lin,
            labels,
        })
    }

    pub fn labels(&self) -> usize {
        self.labels
    }

    /// `(B, T, T)`: score of position `j` as the head of position `i`, not
    /// yet masked (see [`candidate_mask`]).
    pub fn arc_scores(&self, encoded: &Tensor) -> Result<Tensor> {
        let dep = self.arc_dep.forward(encoded)?.relu()?;
        let head = self.arc_head.forward(encoded)?.relu()?;
        let (b, t, a) = dep.dims3()?;
        let du = dep
            .reshape((b * t, a))?
            .matmul(&self.arc_u)?
            .reshape((b, t, a))?;
        let bilinear = du.matmul(&head.transpose(1, 2)?.contiguous()?)?;
        let prior = head
            .reshape((b * t, a))?
            .matmul(&self.arc_bias)?
            .reshape((b, 1, t))?;
        Ok(bilinear.broadcast_add(&prior)?)
    }

    /// `(B, T, L)`: relation scores of each position towards the head at
    /// `heads` (`(B, T)` u32 positions; any in-range value where the
    /// position is not a word).
    pub fn rel_scores(&self, encoded: &Tensor, heads: &Tensor) -> Result<Tensor> {
        let dep = self.rel_dep.forward(encoded)?.relu()?;
        let head = self.rel_head.forward(encoded)?.relu()?;
        let (b, t, r) = dep.dims3()?;
        let idx = heads.unsqueeze(2)?.broadcast_as((b, t, r))?.contiguous()?;
        let at_head = head.contiguous()?.gather(&idx, 1)?;
        let l = self.labels;
        let bilinear = dep
            .reshape((b * t, r))?
            .matmul(&self.rel_u)?
            .reshape((b * t, l, r))?
            .matmul(&at_head.reshape((b * t, r, 1))?)?
            .reshape((b, t, l))?;
        let linear = self.rel_lin.forward(&Tensor::cat(&[&dep, &at_head], 2)?)?;
        Ok(bilinear.add(&linear)?)
    }

    /// Arc plus relation cross-entropy, each over the words with a gold
    /// head (`heads`, flattened `B * T` positions, negative = unscored) and
    /// relation (`rels`, likewise), from the encoder's output and its
    /// [`BiaffineHead::arc_scores`]. `None` when nothing is scored.
    pub fn loss(
        &self,
        encoded: &Tensor,
        arcs: &Tensor,
        starts: &[Vec<usize>],
        heads: &[i32],
        rels: &[i32],
    ) -> Result<Option<Tensor>> {
        let (b, t, _) = encoded.dims3()?;
        if heads.len() != b * t || rels.len() != b * t {
            return Err(Error::Invalid(format!(
                "{} heads and {} relations for a {b}x{t} batch",
                heads.len(),
                rels.len()
            )));
        }
        if let Some((i, &h)) = heads.iter().enumerate().find(|&(_, &h)| h >= t as i32) {
            return Err(Error::Invalid(format!(
                "gold head position {h} at flat position {i} is outside the {t} positions"
            )));
        }
        let arcs = arcs.broadcast_add(&candidate_mask(starts, t, encoded.device())?)?;
        let arc = masked_cross_entropy(&arcs.reshape((b * t, t))?, heads, None)?;
        let gold: Vec<u32> = heads.iter().map(|&h| h.max(0) as u32).collect();
        let gold = Tensor::from_vec(gold, (b, t), encoded.device())?;
        let rel_scores = self.rel_scores(encoded, &gold)?;
        // A relation counts only where its head does: at a word whose head
        // truncation removed, the relation names an arc the model never saw.
        let rels: Vec<i32> = rels
            .iter()
            .zip(heads)
            .map(|(&r, &h)| if h < 0 { -1 } else { r })
            .collect();
        let rel = masked_cross_entropy(&rel_scores.reshape((b * t, self.labels))?, &rels, None)?;
        Ok(match (arc, rel) {
            (Some(a), Some(r)) => Some(a.add(&r)?),
            (a, r) => a.or(r),
        })
    }
}

/// `(B, 1, T)` additive mask: 0 at each row's root (position 0) and word
/// starts, [`MASKED`] elsewhere (specials, continuation pieces, padding).
pub fn candidate_mask(
    starts: &[Vec<usize>],
    t: usize,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let mut m = vec![MASKED; starts.len() * t];
    for (row, s) in starts.iter().enumerate() {
        m[row * t] = 0.0;
        for &p in s {
            if p >= t {
                return Err(Error::Invalid(format!(
                    "word start {p} is outside the {t} positions"
                )));
            }
            m[row * t + p] = 0.0;
        }
    }
    Ok(Tensor::from_vec(m, (starts.len(), 1, t), device)?)
}

/// The word number of sub-token position `pos` in a row whose word starts
/// are `starts` (ascending): 0 for the root position 0, `k` for the `k`-th
/// word's first sub-token (CoNLL-U's HEAD numbering), `None` for any other
/// position.
pub fn word_number(starts: &[usize], pos: usize) -> Option<usize> {
    if pos == 0 {
        return Some(0);
    }
    starts.binary_search(&pos).ok().map(|k| k + 1)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use candle_core::Device;
    use mtl_core::TaskKind;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::batch::{Batch, Targets};
    use crate::bundle::{TaskOutput, predict};
    use crate::heads::mst::is_tree;
    use crate::model::tests::{ENCODERS, assert_every_gradient_nonzero, fit_steps, tiny_spec_of};
    use crate::model::{LossWeights, MultiTaskModel};
    use crate::spec::{HeadSpec, ModelSpec};

    const RELS: usize = 3;

    fn parser_spec(kind: &str) -> ModelSpec {
        let mut spec = tiny_spec_of(kind, 1);
        spec.tasks = vec![HeadSpec::new("deps", TaskKind::Dependency, RELS)];
        spec
    }

    /// Two sentences: `[CLS] a b c [SEP]` (word 1 has two pieces in the
    /// second row) with heads given as positions.
    fn toy() -> (Batch, Targets, Vec<Vec<i32>>) {
        let d = Device::Cpu;
        let word_ids: Vec<Vec<i32>> = vec![vec![-1, 0, 1, 2, -1], vec![-1, 0, 0, 1, -1]];
        let b = Batch::pad(&[&[1, 4, 5, 6, 2], &[1, 7, 8, 9, 2]], &d)
            .unwrap()
            .with_word_ids(&word_ids)
            .unwrap();
        // Row 0: b is the root, a and c hang from b. Row 1: the second word
        // (position 3) hangs from the first (position 1), the root's child.
        let heads: Vec<Option<&[i32]>> = vec![
            Some(&[-100, 2, 0, 2, -100]),
            Some(&[-100, 0, -100, 1, -100]),
        ];
        let rels: Vec<Option<&[i32]>> = vec![
            Some(&[-100, 1, 0, 2, -100]),
            Some(&[-100, 0, -100, 1, -100]),
        ];
        let gold = vec![vec![2, 0, 2], vec![0, 1]];
        let t = Targets::Tree {
            heads: b.token_targets(&heads),
            rels: b.token_targets(&rels),
        };
        (b, t, gold)
    }

    #[test]
    fn every_parameter_of_a_parser_receives_a_gradient() {
        for kind in ENCODERS {
            let (model, varmap) = MultiTaskModel::new(&parser_spec(kind), 3, &Device::Cpu).unwrap();
            let (b, t, _) = toy();
            let targets = BTreeMap::from([("deps".to_string(), t)]);
            let mut rng = StdRng::seed_from_u64(1);
            let (loss, parts) = model
                .loss(&b, &targets, &LossWeights::default(), Some(&mut rng))
                .unwrap()
                .unwrap();
            assert_eq!(parts.len(), 1);
            let names = assert_every_gradient_nonzero(&loss, &varmap, kind);
            for p in [
                "arc_u",
                "arc_bias",
                "rel_u",
                "arc_dep.weight",
                "rel_lin.bias",
            ] {
                assert!(names.contains(&format!("heads.deps.{p}")), "{kind}: {p}");
            }
        }
    }

    #[test]
    fn a_toy_parser_learns_its_trees_and_decodes_them_exactly() {
        let (model, varmap) =
            MultiTaskModel::new(&parser_spec(ENCODERS[0]), 5, &Device::Cpu).unwrap();
        let (b, t, gold) = toy();
        let targets = BTreeMap::from([("deps".to_string(), t)]);
        let (first, last) = fit_steps(&model, &varmap, &b, &targets, 0.02, 150);
        assert!(last["deps"] < first["deps"] * 0.1, "{first:?} -> {last:?}");
        let TaskOutput::Tree { head, label, .. } = &predict(&model, &b).unwrap()["deps"] else {
            panic!("a dependency task predicts trees");
        };
        let starts = b.word_starts.as_ref().unwrap();
        let rels = [vec![1, 0, 2], vec![0, 1]];
        for row in 0..2 {
            let words: Vec<usize> = starts[row]
                .iter()
                .map(|&p| word_number(&starts[row], head[row][p] as usize).unwrap())
                .collect();
            assert_eq!(
                words,
                gold[row]
                    .iter()
                    .map(|&h| word_of(&starts[row], h))
                    .collect::<Vec<_>>()
            );
            let got: Vec<u32> = starts[row].iter().map(|&p| label[row][p]).collect();
            assert_eq!(got, rels[row]);
        }
    }

    fn word_of(starts: &[usize], pos: i32) -> usize {
        word_number(starts, pos as usize).unwrap()
    }

    #[test]
    fn an_untrained_parser_still_decodes_one_tree_per_sentence() {
        let d = Device::Cpu;
        for seed in 0..4 {
            let (model, _) = MultiTaskModel::new(&parser_spec(ENCODERS[0]), seed, &d).unwrap();
            let word_ids: Vec<Vec<i32>> = vec![
                vec![-1, 0, 1, 1, 2, 3, 4, -1],
                vec![-1, 0, -1, -1, -1, -1, -1, -1],
                vec![-1, 0, 0, 0, 1, 2, -1, -1],
            ];
            let rows: [&[u32]; 3] = [
                &[1, 4, 5, 6, 7, 8, 9, 2],
                &[1, 4, 2],
                &[1, 9, 8, 7, 6, 5, 2],
            ];
            let b = Batch::pad(&rows, &d).unwrap().with_word_ids(
                &word_ids
                    .iter()
                    .zip(rows)
                    .map(|(w, r)| w[..r.len()].to_vec())
                    .collect::<Vec<_>>(),
            );
            let b = b.unwrap();
            let TaskOutput::Tree { head, .. } = &predict(&model, &b).unwrap()["deps"] else {
                panic!("a dependency task predicts trees");
            };
            for (row, starts) in b.word_starts.as_ref().unwrap().iter().enumerate() {
                let words: Vec<usize> = starts
                    .iter()
                    .map(|&p| word_number(starts, head[row][p] as usize).unwrap())
                    .collect();
                assert!(is_tree(&words), "seed {seed}, row {row}: {words:?}");
            }
        }
    }

    #[test]
    fn only_the_root_and_word_starts_are_candidate_heads() {
        let m = candidate_mask(&[vec![1, 3], vec![1]], 5, &Device::Cpu).unwrap();
        let m = m.squeeze(1).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(m[0], vec![0.0, 0.0, MASKED, 0.0, MASKED]);
        assert_eq!(m[1], vec![0.0, 0.0, MASKED, MASKED, MASKED]);
        assert!(candidate_mask(&[vec![5]], 5, &Device::Cpu).is_err());
        assert_eq!(word_number(&[1, 3], 0), Some(0));
        assert_eq!(word_number(&[1, 3], 3), Some(2));
        assert_eq!(word_number(&[1, 3], 2), None);
    }

    #[test]
    fn a_gold_head_outside_the_batch_is_an_error() {
        let (model, _) = MultiTaskModel::new(&parser_spec(ENCODERS[0]), 3, &Device::Cpu).unwrap();
        let (b, _, _) = toy();
        let mut heads = vec![-100; 10];
        heads[1] = 7;
        let t = Targets::Tree {
            heads,
            rels: vec![0; 10],
        };
        let targets = BTreeMap::from([("deps".to_string(), t)]);
        let err = model
            .loss(&b, &targets, &LossWeights::default(), None)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("outside"), "{err}");
    }
}
