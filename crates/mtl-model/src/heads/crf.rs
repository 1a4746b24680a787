//! Linear-chain CRF for token tasks with `crf = true`: per-position
//! emissions from a linear layer (as the tagging head), learned transition
//! scores `[C, C]` (from, to) and start/end scores.
//!
//! The chain runs over the *scored* positions only: a word's label sits on
//! its first sub-token and every other position has target -100, so the
//! loss gathers the labelled positions of each row and runs the forward
//! algorithm over them. [`crate::Batch`] carries no word starts, so
//! decoding runs over every real (unpadded) position; readers take the
//! first sub-token's label as the word's, as with the plain tagging head.
//!
//! Scheme constraints (`HeadSpec::crf_constraints`) are added as
//! [`FORBIDDEN`] at decoding only: gold sequences of windows cut mid-entity
//! can start with `I-X`, and a gold path scored -1e4 would swamp the loss.
//! The loss uses the learned transitions alone, which learn to score
//! never-seen transitions low anyway.

use candle_core::{D, Tensor};

use super::Linear;
use crate::error::{Error, Result};
use crate::params::ParamStore;
use crate::spec::CrfConstraints;

/// Score added to a transition the scheme rules out.
pub const FORBIDDEN: f32 = -1e4;

pub struct CrfHead {
    out: Linear,
    /// `(C, C)`: score of label `j` following label `i` at `[i, j]`.
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    constraints: CrfConstraints,
}

impl CrfHead {
    pub fn new(
        p: &mut ParamStore,
        input: usize,
        labels: usize,
        constraints: &CrfConstraints,
    ) -> Result<Self> {
        if let Some(&bad) = constraints
            .start
            .iter()
            .chain(&constraints.end)
            .chain(constraints.pairs.iter().flatten())
            .find(|&&i| i as usize >= labels)
        {
            return Err(Error::Invalid(format!(
                "CRF constraint names label id {bad}, but the head has {labels} labels"
            )));
        }
        Ok(Self {
            out: Linear::new(p, input, labels)?,
            transitions: p.uniform("transitions", &[labels, labels], 0.1)?,
            start: p.uniform("start_transitions", &[labels], 0.1)?,
            end: p.uniform("end_transitions", &[labels], 0.1)?,
            constraints: constraints.clone(),
        })
    }

    /// `(B, T, C)` emission scores.
    pub fn forward(&self, encoded: &Tensor) -> Result<Tensor> {
        self.out.forward(encoded)
    }

    /// Mean negative log-likelihood of the gold paths; see [`nll`].
    pub fn loss(&self, emissions: &Tensor, targets: &[i32]) -> Result<Option<Tensor>> {
        nll(
            emissions,
            targets,
            &self.transitions,
            &self.start,
            &self.end,
        )
    }

    /// The best path of every row over its first `lengths[i]` positions,
    /// with the scheme's constraints.
    pub fn decode(&self, emissions: &Tensor, lengths: &[usize]) -> Result<Vec<Vec<u32>>> {
        let c = self.start.dim(0)?;
        let mut trans = self.transitions.flatten_all()?.to_vec1::<f32>()?;
        let mut start = self.start.to_vec1::<f32>()?;
        let mut end = self.end.to_vec1::<f32>()?;
        for &j in &self.constraints.start {
            start[j as usize] += FORBIDDEN;
        }
        for &j in &self.constraints.end {
            end[j as usize] += FORBIDDEN;
        }
        for &[i, j] in &self.constraints.pairs {
            trans[i as usize * c + j as usize] += FORBIDDEN;
        }
        let em = emissions.to_vec3::<f32>()?;
        Ok(em
            .iter()
            .zip(lengths)
            .map(|(row, &n)| {
                let flat: Vec<f32> = row.iter().take(n).flatten().copied().collect();
                viterbi(&flat, c, &trans, &start, &end)
            })
            .collect())
    }
}

/// `log Σ exp` over `dim` (removed), from elementary ops so the gradient
/// flows; the max is detached as the result does not depend on it.
fn logsumexp(x: &Tensor, dim: usize) -> Result<Tensor> {
    let m = x.max_keepdim(dim)?.detach();
    let s = x.broadcast_sub(&m)?.exp()?.sum_keepdim(dim)?.log()?;
    Ok(s.add(&m)?.squeeze(dim)?)
}

/// `emissions`: `(B, T, C)`; `targets`: `B * T` label ids, negative =
/// position not scored. `log Z - score(gold)` summed over the rows, the
/// chain running over each row's scored positions in order, divided by the
/// number of scored positions: a per-token loss on the scale of the other
/// heads' token-mean cross-entropy, so that a CRF task does not outweigh
/// the others in the shared encoder. `None` if no position is scored.
pub fn nll(
    emissions: &Tensor,
    targets: &[i32],
    transitions: &Tensor,
    start: &Tensor,
    end: &Tensor,
) -> Result<Option<Tensor>> {
    let (b, t, c) = emissions.dims3()?;
    if targets.len() != b * t {
        return Err(Error::Invalid(format!(
            "{} token targets for a batch of {b} x {t} positions",
            targets.len()
        )));
    }
    if let Some(&bad) = targets.iter().find(|&&y| y >= c as i32) {
        return Err(Error::Invalid(format!(
            "target label id {bad} is out of range for {c} classes"
        )));
    }
    // Per kept row: (flat position, label) of each scored position.
    let rows: Vec<Vec<(usize, usize)>> = (0..b)
        .map(|i| {
            (0..t)
                .filter(|&p| targets[i * t + p] >= 0)
                .map(|p| (i * t + p, targets[i * t + p] as usize))
                .collect::<Vec<_>>()
        })
        .filter(|r| !r.is_empty())
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let n = rows.len();
    let scored: usize = rows.iter().map(Vec::len).sum();
    let l = rows.iter().map(Vec::len).max().unwrap_or(1);
    let device = emissions.device();
    let dtype = emissions.dtype();
    let mut idx = vec![0u32; n * l];
    let mut mask = vec![0f32; n * l];
    let (mut gold_em, mut gold_tr, mut firsts, mut lasts) = (vec![], vec![], vec![], vec![]);
    for (k, row) in rows.iter().enumerate() {
        for j in 0..l {
            // Padded steps repeat the last position; the mask ignores them.
            let (pos, y) = row[j.min(row.len() - 1)];
            idx[k * l + j] = pos as u32;
            if j < row.len() {
                mask[k * l + j] = 1.0;
                gold_em.push((pos * c + y) as u32);
                if j > 0 {
                    gold_tr.push((row[j - 1].1 * c + y) as u32);
                }
            }
        }
        firsts.push(row[0].1 as u32);
        lasts.push(row[row.len() - 1].1 as u32);
    }
    let e = emissions
        .reshape((b * t, c))?
        .index_select(&Tensor::from_vec(idx, n * l, device)?, 0)?
        .reshape((n, l, c))?;
    let mask = Tensor::from_vec(mask, (n, l), device)?.to_dtype(dtype)?;
    let trans = transitions.unsqueeze(0)?;
    let mut alpha = e.narrow(1, 0, 1)?.squeeze(1)?.broadcast_add(start)?;
    for j in 1..l {
        // scores[k, from, to] = alpha[k, from] + trans[from, to].
        let scores = alpha.unsqueeze(2)?.broadcast_add(&trans)?;
        let next = logsumexp(&scores, 1)?.add(&e.narrow(1, j, 1)?.squeeze(1)?)?;
        let m = mask.narrow(1, j, 1)?;
        let keep = m.affine(-1.0, 1.0)?;
        alpha = next.broadcast_mul(&m)?.add(&alpha.broadcast_mul(&keep)?)?;
    }
    let log_z = logsumexp(&alpha.broadcast_add(end)?, 1)?.sum_all()?;
    let pick = |x: &Tensor, ids: Vec<u32>| -> Result<Tensor> {
        if ids.is_empty() {
            return Ok(Tensor::zeros((), dtype, device)?);
        }
        let len = ids.len();
        Ok(x.flatten_all()?
            .index_select(&Tensor::from_vec(ids, len, device)?, 0)?
            .sum_all()?)
    };
    let gold = pick(emissions, gold_em)?
        .add(&pick(transitions, gold_tr)?)?
        .add(&pick(start, firsts)?)?
        .add(&pick(end, lasts)?)?;
    Ok(Some(log_z.sub(&gold)?.affine(1.0 / scored as f64, 0.0)?))
}

/// The highest-scoring path. `em`: `T * C` emission scores (row-major),
/// `trans`: `C * C` (from-major), `start`/`end`: `C`.
pub fn viterbi(em: &[f32], c: usize, trans: &[f32], start: &[f32], end: &[f32]) -> Vec<u32> {
    if c == 0 || em.is_empty() {
        return Vec::new();
    }
    let t = em.len() / c;
    let mut score: Vec<f32> = (0..c).map(|j| start[j] + em[j]).collect();
    let mut back = vec![0u32; t * c];
    for s in 1..t {
        let mut next = vec![f32::NEG_INFINITY; c];
        for j in 0..c {
            let (mut best, mut arg) = (f32::NEG_INFINITY, 0);
            for i in 0..c {
                let v = score[i] + trans[i * c + j];
                if v > best {
                    (best, arg) = (v, i);
                }
            }
            next[j] = best + em[s * c + j];
            back[s * c + j] = arg as u32;
        }
        score = next;
    }
    let mut last = 0;
    let mut best = f32::NEG_INFINITY;
    for j in 0..c {
        let v = score[j] + end[j];
        if v > best {
            (best, last) = (v, j);
        }
    }
    let mut path = vec![0u32; t];
    path[t - 1] = last as u32;
    for s in (1..t).rev() {
        path[s - 1] = back[s * c + path[s] as usize];
    }
    path
}

/// Emission softmax of each row's chosen labels: the probability reported
/// with a CRF prediction (not the CRF marginal).
pub fn emission_probs(emissions: &Tensor, paths: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
    let probs = candle_nn::ops::softmax(emissions, D::Minus1)?.to_vec3::<f32>()?;
    Ok(probs
        .iter()
        .zip(paths)
        .map(|(row, path)| path.iter().zip(row).map(|(&y, p)| p[y as usize]).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random(rng: &mut StdRng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect()
    }

    /// Every path of length `t` over `c` labels.
    fn paths(c: usize, t: usize) -> Vec<Vec<usize>> {
        (0..c.pow(t as u32))
            .map(|mut k| {
                (0..t)
                    .map(|_| {
                        let y = k % c;
                        k /= c;
                        y
                    })
                    .collect()
            })
            .collect()
    }

    fn path_score(em: &[f32], c: usize, tr: &[f32], st: &[f32], en: &[f32], y: &[usize]) -> f64 {
        let mut s = f64::from(st[y[0]] + en[y[y.len() - 1]]);
        for (p, &yi) in y.iter().enumerate() {
            s += f64::from(em[p * c + yi]);
            if p > 0 {
                s += f64::from(tr[y[p - 1] * c + yi]);
            }
        }
        s
    }

    /// The loss equals `log Σ_paths exp(score) - score(gold)` enumerated
    /// over all 81 paths, with the scored positions scattered among
    /// ignored ones, and a second row of another length.
    #[test]
    fn nll_matches_brute_force_enumeration() {
        let d = Device::Cpu;
        let (c, t) = (3, 6);
        let mut rng = StdRng::seed_from_u64(4);
        for _ in 0..20 {
            let em = random(&mut rng, 2 * t * c);
            let tr = random(&mut rng, c * c);
            let st = random(&mut rng, c);
            let en = random(&mut rng, c);
            // Row 0 scores positions 1, 2, 4, 5 (T = 4); row 1 positions 0, 3.
            let mut targets = vec![-100i32; 2 * t];
            let pos0 = [1usize, 2, 4, 5];
            let pos1 = [0usize, 3];
            for &p in &pos0 {
                targets[p] = rng.random_range(0..c as i32);
            }
            for &p in &pos1 {
                targets[t + p] = rng.random_range(0..c as i32);
            }
            let brute = |row: usize, pos: &[usize]| -> f64 {
                let e: Vec<f32> = pos
                    .iter()
                    .flat_map(|&p| em[(row * t + p) * c..(row * t + p + 1) * c].to_vec())
                    .collect();
                let gold: Vec<usize> = pos.iter().map(|&p| targets[row * t + p] as usize).collect();
                let all: Vec<f64> = paths(c, pos.len())
                    .iter()
                    .map(|y| path_score(&e, c, &tr, &st, &en, y))
                    .collect();
                assert_eq!(all.len(), c.pow(pos.len() as u32));
                let m = all.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let log_z = m + all.iter().map(|s| (s - m).exp()).sum::<f64>().ln();
                log_z - path_score(&e, c, &tr, &st, &en, &gold)
            };
            let scored = (pos0.len() + pos1.len()) as f64;
            let want = (brute(0, &pos0) + brute(1, &pos1)) / scored;
            let got = nll(
                &Tensor::from_vec(em.clone(), (2, t, c), &d).unwrap(),
                &targets,
                &Tensor::from_vec(tr.clone(), (c, c), &d).unwrap(),
                &Tensor::from_vec(st.clone(), c, &d).unwrap(),
                &Tensor::from_vec(en.clone(), c, &d).unwrap(),
            )
            .unwrap()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
            assert!((f64::from(got) - want).abs() < 1e-4, "{got} vs {want}");
            assert!(got > 0.0);
        }
        // Nothing scored: no loss.
        let z = Tensor::zeros((1, 2, 2), candle_core::DType::F32, &d).unwrap();
        let tr = Tensor::zeros((2, 2), candle_core::DType::F32, &d).unwrap();
        let s = Tensor::zeros(2, candle_core::DType::F32, &d).unwrap();
        assert!(nll(&z, &[-100, -100], &tr, &s, &s).unwrap().is_none());
        assert!(nll(&z, &[2, -100], &tr, &s, &s).is_err());
    }

    #[test]
    fn viterbi_matches_brute_force_argmax() {
        let (c, t) = (3, 4);
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..50 {
            let em = random(&mut rng, t * c);
            let tr = random(&mut rng, c * c);
            let st = random(&mut rng, c);
            let en = random(&mut rng, c);
            let best = paths(c, t)
                .into_iter()
                .max_by(|a, b| {
                    path_score(&em, c, &tr, &st, &en, a)
                        .total_cmp(&path_score(&em, c, &tr, &st, &en, b))
                })
                .unwrap();
            let got: Vec<usize> = viterbi(&em, c, &tr, &st, &en)
                .into_iter()
                .map(|y| y as usize)
                .collect();
            assert_eq!(got, best);
        }
        assert!(viterbi(&[], 3, &[0.0; 9], &[0.0; 3], &[0.0; 3]).is_empty());
    }

    /// Whatever the emissions, a constrained BIO head never decodes an
    /// `I-X` that does not continue a `B-X`/`I-X`.
    #[test]
    fn constrained_decoding_is_always_valid_bio() {
        use mtl_core::task::SpanScheme;
        let d = Device::Cpu;
        let names: Vec<String> = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let constraints = CrfConstraints::for_scheme(&names, SpanScheme::Bio);
        let mut p = ParamStore::new(3, &d);
        let head = CrfHead::new(&mut p, 4, 5, &constraints).unwrap();
        let mut rng = StdRng::seed_from_u64(2);
        let mut saw_inside = false;
        for _ in 0..200 {
            let t = rng.random_range(1..9);
            // Emissions favouring I- labels so that invalid paths tempt.
            let em: Vec<f32> = (0..2 * t * 5)
                .map(|k| {
                    rng.random_range(-3.0f32..3.0)
                        + if k % 5 == 2 || k % 5 == 4 { 2.0 } else { 0.0 }
                })
                .collect();
            let em = Tensor::from_vec(em, (2, t, 5), &d).unwrap();
            let paths = head.decode(&em, &[t, t.saturating_sub(2).max(1)]).unwrap();
            assert_eq!(paths[0].len(), t);
            for path in paths {
                let mut prev: &str = "O";
                for &y in &path {
                    let name = names[y as usize].as_str();
                    if let Some(ty) = name.strip_prefix("I-") {
                        saw_inside = true;
                        assert!(
                            prev == format!("B-{ty}") || prev == name,
                            "invalid {path:?}"
                        );
                    }
                    prev = name;
                }
            }
        }
        assert!(saw_inside);
    }
}
