//! Linear-chain CRF for token tasks with `crf = true`: per-position
//! emissions from a linear layer (as the tagging head), learned transition
//! scores `[C, C]` (from, to) and start/end scores.
//!
//! The chain is word-level: one step per word, at the word's first
//! sub-token, where `mtl_core::align` puts the word's label. Specials
//! (`[CLS]`, `[SEP]`) and continuation pieces are not steps, so transitions
//! are scored between words, the start and end scores apply to the first
//! and last word, and a label on a continuation piece is never part of the
//! path. Training, eval and predict run that same chain:
//!
//! - The loss ([`nll`]) runs the forward algorithm over each row's scored
//!   words: positions with a target (>= 0) that are word starts
//!   ([`crate::Batch::word_starts`]). A batch without word starts takes
//!   every position with a target, which are exactly the word starts under
//!   the default alignment (first sub-token only); with
//!   `tokenize.label_all_subtokens` the batch needs word starts, or the
//!   continuation pieces become steps.
//! - Decoding ([`CrfHead::decode`]) runs Viterbi over the word starts of
//!   each row: every word the row holds (in a window, the context words
//!   that a neighbouring window scores as well). The output keeps one label
//!   per real position: each word's label on its first sub-token, copied
//!   onto its continuation pieces and onto the specials after it (specials
//!   before the first word take the first word's label); a row without
//!   words gets each position's best emission. Readers that take a word's
//!   label at its first sub-token (eval, predict, `mtl_core::align`) thus
//!   read the Viterbi path itself. A batch without word starts falls back to
//!   a chain over every real position, specials and pieces included: eval
//!   and predict build batches with `Batch::with_word_ids`.
//!
//! Scheme constraints (`HeadSpec::crf_constraints`) make the transitions,
//! first labels and last labels the scheme rules out impossible in
//! decoding: they score [`FORBIDDEN`] (-inf), so no row decodes to a word
//! sequence that breaks BIO (an `I-X` only after `B-X`/`I-X`) or BIOES
//! (also: `E-X` only after `B-X`/`I-X`, an open entity continues with
//! `I-X`/`E-X`, no sequence starts with `I`/`E` or ends with `B`/`I`). The
//! loss uses the learned scores alone, without constraints: gold windows
//! cut mid-entity start with `I-X` (or end with an open entity), and a
//! likelihood that forbids their gold path would be infinite. The learned
//! scores learn to rate never-seen transitions low anyway. Each row is
//! decoded on its own: where eval and predict merge an example's windows,
//! the word before a junction and the word after it come from different
//! rows, and nothing constrains that pair.

use candle_core::{D, Tensor};

use super::Linear;
use crate::error::{Error, Result};
use crate::params::ParamStore;
use crate::spec::CrfConstraints;

/// Score of a transition, first label or last label the scheme rules out,
/// in decoding: no decoded path takes it.
pub const FORBIDDEN: f32 = f32::NEG_INFINITY;

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

    /// Mean negative log-likelihood of the gold word paths; see [`nll`].
    /// `word_starts`: the batch's [`crate::Batch::word_starts`].
    pub fn loss(
        &self,
        emissions: &Tensor,
        targets: &[i32],
        word_starts: Option<&[Vec<usize>]>,
    ) -> Result<Option<Tensor>> {
        nll(
            emissions,
            targets,
            word_starts,
            &self.transitions,
            &self.start,
            &self.end,
        )
    }

    /// The learned scores with the scheme's constraints as [`FORBIDDEN`]:
    /// `(transitions C * C, start C, end C)`.
    fn constrained_scores(&self) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let c = self.start.dim(0)?;
        let mut trans = self.transitions.flatten_all()?.to_vec1::<f32>()?;
        let mut start = self.start.to_vec1::<f32>()?;
        let mut end = self.end.to_vec1::<f32>()?;
        for &j in &self.constraints.start {
            start[j as usize] = FORBIDDEN;
        }
        for &j in &self.constraints.end {
            end[j as usize] = FORBIDDEN;
        }
        for &[i, j] in &self.constraints.pairs {
            trans[i as usize * c + j as usize] = FORBIDDEN;
        }
        Ok((trans, start, end))
    }

    /// Per row, one label per real position (the first `lengths[i]`): the
    /// constrained Viterbi path over the row's words (`word_starts`, see the
    /// module docs), each word's label on its first sub-token and copied
    /// onto the positions up to the next word. Without word starts, the
    /// path over every real position.
    pub fn decode(
        &self,
        emissions: &Tensor,
        lengths: &[usize],
        word_starts: Option<&[Vec<usize>]>,
    ) -> Result<Vec<Vec<u32>>> {
        let (b, _, c) = emissions.dims3()?;
        if lengths.len() != b || word_starts.is_some_and(|w| w.len() != b) {
            return Err(Error::Invalid(format!(
                "CRF decoding of {b} rows with {} lengths and word starts for {:?}",
                lengths.len(),
                word_starts.map(<[_]>::len)
            )));
        }
        let (trans, start, end) = self.constrained_scores()?;
        let em = emissions.to_vec3::<f32>()?;
        Ok(em
            .iter()
            .zip(lengths)
            .enumerate()
            .map(|(i, (row, &n))| {
                let n = n.min(row.len());
                let Some(starts) = word_starts.map(|w| &w[i]) else {
                    let flat: Vec<f32> = row[..n].iter().flatten().copied().collect();
                    return viterbi(&flat, c, &trans, &start, &end);
                };
                let steps: Vec<usize> = starts.iter().copied().filter(|&p| p < n).collect();
                if steps.is_empty() {
                    return row[..n].iter().map(|e| argmax(e)).collect();
                }
                let flat: Vec<f32> = steps.iter().flat_map(|&p| row[p].iter().copied()).collect();
                spread(&viterbi(&flat, c, &trans, &start, &end), &steps, n)
            })
            .collect())
    }
}

/// The index of the largest score (the first of ties).
fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (j, &x) in scores.iter().enumerate() {
        if x > scores[best] {
            best = j;
        }
    }
    best as u32
}

/// One label per position `0..n` from one label per word (`path[k]` at
/// position `steps[k]`, ascending): each position takes the label of the
/// last word starting at or before it, positions before the first word the
/// first word's.
pub fn spread(path: &[u32], steps: &[usize], n: usize) -> Vec<u32> {
    let mut out = Vec::with_capacity(n);
    let mut k = 0;
    for p in 0..n {
        while k + 1 < steps.len() && steps[k + 1] <= p {
            k += 1;
        }
        out.push(path[k]);
    }
    out
}

/// `log Σ exp` over `dim` (removed), from elementary ops so the gradient
/// flows; the max is detached as the result does not depend on it.
fn logsumexp(x: &Tensor, dim: usize) -> Result<Tensor> {
    let m = x.max_keepdim(dim)?.detach();
    let s = x.broadcast_sub(&m)?.exp()?.sum_keepdim(dim)?.log()?;
    Ok(s.add(&m)?.squeeze(dim)?)
}

/// `emissions`: `(B, T, C)`; `targets`: `B * T` label ids, negative =
/// position not scored; `word_starts`: per row, the positions of its words'
/// first sub-tokens ([`crate::Batch::word_starts`]). `log Z - score(gold)`
/// summed over the rows, the chain running over each row's scored words
/// in order (positions with a target that are word starts; every position
/// with a target when `word_starts` is `None`), divided by the number of
/// chain steps: a per-word loss on the scale of the other heads'
/// token-mean cross-entropy, so that a CRF task does not outweigh the
/// others in the shared encoder. Learned scores only, no scheme
/// constraints (see the module docs). `None` if no word is scored.
pub fn nll(
    emissions: &Tensor,
    targets: &[i32],
    word_starts: Option<&[Vec<usize>]>,
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
    if let Some(w) = word_starts.filter(|w| w.len() != b) {
        return Err(Error::Invalid(format!(
            "word starts for {} rows, but the batch has {b}",
            w.len()
        )));
    }
    // Per kept row: (flat position, label) of each scored word.
    let rows: Vec<Vec<(usize, usize)>> = (0..b)
        .map(|i| {
            let positions: Box<dyn Iterator<Item = usize>> = match word_starts {
                Some(w) => Box::new(w[i].iter().copied().filter(|&p| p < t)),
                None => Box::new(0..t),
            };
            positions
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
/// `trans`: `C * C` (from-major), `start`/`end`: `C`. A score of -inf
/// ([`FORBIDDEN`]) rules its step out: the path takes none while any path
/// of finite score exists.
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
            let loss = |targets: &[i32], starts: Option<&[Vec<usize>]>| -> f32 {
                nll(
                    &Tensor::from_vec(em.clone(), (2, t, c), &d).unwrap(),
                    targets,
                    starts,
                    &Tensor::from_vec(tr.clone(), (c, c), &d).unwrap(),
                    &Tensor::from_vec(st.clone(), c, &d).unwrap(),
                    &Tensor::from_vec(en.clone(), c, &d).unwrap(),
                )
                .unwrap()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
            };
            let got = loss(&targets, None);
            assert!((f64::from(got) - want).abs() < 1e-4, "{got} vs {want}");
            assert!(got > 0.0);
            // With word starts, only scored word starts are steps: labels
            // on continuation pieces (`label_all_subtokens`: row 0's
            // position 3, row 1's position 1) and word starts without a
            // target (row 0's position 0, row 1's 4) are left out.
            let mut all_pieces = targets.clone();
            all_pieces[3] = rng.random_range(0..c as i32);
            all_pieces[t + 1] = rng.random_range(0..c as i32);
            let starts = vec![vec![0, 1, 2, 4, 5], vec![0, 3, 4]];
            let got = loss(&all_pieces, Some(&starts));
            assert!((f64::from(got) - want).abs() < 1e-4, "{got} vs {want}");
        }
        // Nothing scored: no loss.
        let z = Tensor::zeros((1, 2, 2), candle_core::DType::F32, &d).unwrap();
        let tr = Tensor::zeros((2, 2), candle_core::DType::F32, &d).unwrap();
        let s = Tensor::zeros(2, candle_core::DType::F32, &d).unwrap();
        assert!(nll(&z, &[-100, -100], None, &tr, &s, &s).unwrap().is_none());
        // A target only off the word starts: nothing scored either.
        let starts = [vec![0]];
        let off = nll(&z, &[-100, 1], Some(&starts), &tr, &s, &s).unwrap();
        assert!(off.is_none());
        assert!(nll(&z, &[2, -100], None, &tr, &s, &s).is_err());
        assert!(nll(&z, &[0, 0], Some(&[]), &tr, &s, &s).is_err());
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

    /// The first violation of the scheme in a word-level tag sequence, as
    /// a reader of entities sees it: BIO allows `I-X` only after `B-X` or
    /// `I-X`; BIOES also `E-X` only there, requires `B-X`/`I-X` to be
    /// followed by `I-X`/`E-X` and forbids ending an entity open. Written
    /// from the schemes' rules, not from [`CrfConstraints`].
    fn scheme_violation(tags: &[&str], bioes: bool) -> Option<String> {
        let split = |t: &str| -> (char, String) {
            match t.split_once('-') {
                Some((p, ty)) => (p.chars().next().unwrap(), ty.to_string()),
                None => ('O', String::new()),
            }
        };
        let mut open: Option<String> = None;
        for (k, tag) in tags.iter().enumerate() {
            let (p, ty) = split(tag);
            let continues = matches!(p, 'I') || (bioes && p == 'E');
            if continues && open.as_deref() != Some(ty.as_str()) {
                return Some(format!(
                    "word {k}: {tag} continues no {ty} entity: {tags:?}"
                ));
            }
            if bioes && !continues && open.is_some() {
                return Some(format!("word {k}: {tag} inside an open entity: {tags:?}"));
            }
            open = match p {
                'B' | 'I' => Some(ty),
                _ => None,
            };
        }
        (bioes && open.is_some()).then(|| format!("ends inside an entity: {tags:?}"))
    }

    #[test]
    fn the_violation_check_can_fail() {
        let bio = |t: &[&str]| scheme_violation(t, false);
        let bioes = |t: &[&str]| scheme_violation(t, true);
        assert!(bio(&["B-A", "I-A", "O", "B-B", "I-B", "I-B"]).is_none());
        assert!(bio(&["I-A"]).is_some());
        assert!(bio(&["O", "I-A"]).is_some());
        assert!(bio(&["B-A", "I-B"]).is_some());
        assert!(bioes(&["S-A", "B-B", "I-B", "E-B", "O"]).is_none());
        assert!(bioes(&["B-A", "O"]).is_some());
        assert!(bioes(&["B-A"]).is_some());
        assert!(bioes(&["E-A"]).is_some());
        assert!(bioes(&["B-A", "E-B"]).is_some());
        assert!(bioes(&["B-A", "S-A"]).is_some());
    }

    /// A random row as a WordPiece tokenizer lays it out: `[CLS]`, words of
    /// one to three pieces, `[SEP]`; `word_ids` with -1 for the specials.
    fn random_word_ids(rng: &mut StdRng, words: usize) -> Vec<i32> {
        let mut ids = vec![-1];
        for w in 0..words as i32 {
            for _ in 0..rng.random_range(1..4) {
                ids.push(w);
            }
        }
        ids.push(-1);
        ids
    }

    /// Emissions for one row of `word_ids` over `names` that tempt every
    /// mistake a sub-token chain makes: `[CLS]` favours `B-`, the first
    /// word `I-`/`E-`, continuation pieces `B-`, words `I-`/`E-` of random
    /// types; at `scale` 1e5 they outweigh any finite penalty.
    fn tempting(rng: &mut StdRng, names: &[String], word_ids: &[i32], scale: f32) -> Vec<f32> {
        let mut em = Vec::new();
        for (p, &w) in word_ids.iter().enumerate() {
            let first = w >= 0 && (p == 0 || word_ids[p - 1] != w);
            for name in names {
                let bonus = match name.chars().next().unwrap() {
                    'B' if w < 0 || !first => 3.0,
                    'I' | 'E' if w == 0 => 3.0,
                    'I' | 'E' if first => 1.5,
                    _ => 0.0,
                };
                em.push(scale * (rng.random_range(-1.0f32..1.0) + bonus));
            }
        }
        em
    }

    /// Whatever the emissions, the word tags a CRF head's output gives
    /// where eval and predict read them (each word's first sub-token, via
    /// `mtl_core::align`) are valid BIO / BIOES, on rows with specials and
    /// multi-piece words, of several lengths in one padded batch, and with
    /// emissions large enough to beat any finite penalty. The same rows
    /// decoded without word starts (the sub-token chain) do break the
    /// scheme, so the check can fail.
    #[test]
    fn decoded_word_tags_are_always_valid() {
        use mtl_core::align::first_subtoken_positions;
        use mtl_core::task::SpanScheme;
        let d = Device::Cpu;
        let schemes = [
            (
                SpanScheme::Bio,
                vec!["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
            ),
            (
                SpanScheme::Bioes,
                vec![
                    "O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC",
                ],
            ),
        ];
        for (scheme, names) in schemes {
            let bioes = scheme == SpanScheme::Bioes;
            let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
            let c = names.len();
            let constraints = CrfConstraints::for_scheme(&names, scheme);
            let mut p = ParamStore::new(3, &d);
            let head = CrfHead::new(&mut p, 4, c, &constraints).unwrap();
            let mut rng = StdRng::seed_from_u64(2);
            let (mut inside, mut sub_token_broken) = (0, 0);
            for trial in 0..150 {
                let scale = if trial % 3 == 0 { 1e5 } else { 1.0 };
                let rows: Vec<Vec<i32>> = (0..3)
                    .map(|_| {
                        let words = rng.random_range(1..7);
                        random_word_ids(&mut rng, words)
                    })
                    .collect();
                let t = rows.iter().map(Vec::len).max().unwrap();
                let mut em = Vec::new();
                for r in &rows {
                    em.extend(tempting(&mut rng, &names, r, scale));
                    em.extend(std::iter::repeat_n(0.0, (t - r.len()) * c));
                }
                let em = Tensor::from_vec(em, (rows.len(), t, c), &d).unwrap();
                let lengths: Vec<usize> = rows.iter().map(Vec::len).collect();
                let starts: Vec<Vec<usize>> =
                    rows.iter().map(|r| crate::batch::word_starts(r)).collect();
                let words = |labels: &[Vec<u32>], i: usize| -> Vec<String> {
                    let n = rows[i].iter().max().map_or(0, |&w| w as usize + 1);
                    first_subtoken_positions(&rows[i], n)
                        .into_iter()
                        .map(|p| names[labels[i][p.unwrap()] as usize].clone())
                        .collect()
                };
                let labels = head.decode(&em, &lengths, Some(&starts)).unwrap();
                let fallback = head.decode(&em, &lengths, None).unwrap();
                for (i, r) in rows.iter().enumerate() {
                    assert_eq!(labels[i].len(), r.len());
                    let tags = words(&labels, i);
                    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
                    if let Some(bad) = scheme_violation(&tags, bioes) {
                        panic!("{scheme:?}, scale {scale}: {bad}");
                    }
                    inside += tags.iter().filter(|t| t.starts_with("I-")).count();
                    // Continuation pieces and specials repeat a word's tag.
                    for (p, &w) in r.iter().enumerate() {
                        let word = if w >= 0 {
                            w as usize
                        } else if p == 0 {
                            0
                        } else {
                            tags.len() - 1
                        };
                        assert_eq!(names[labels[i][p] as usize], tags[word], "{r:?}");
                    }
                    let old = words(&fallback, i);
                    let old: Vec<&str> = old.iter().map(String::as_str).collect();
                    sub_token_broken += usize::from(scheme_violation(&old, bioes).is_some());
                }
            }
            assert!(inside > 50, "{scheme:?}: only {inside} I- tags decoded");
            assert!(
                sub_token_broken > 0,
                "{scheme:?}: the sub-token chain never broke"
            );
        }
    }

    /// Forbidden steps are impossible, not merely penalized: emissions of
    /// 1e6 for `I-X` on the first word and after `O` still give `B-X`/`O`.
    #[test]
    fn forbidden_steps_are_never_taken() {
        use mtl_core::task::SpanScheme;
        let d = Device::Cpu;
        let names: Vec<String> = ["O", "B-X", "I-X"].iter().map(|s| s.to_string()).collect();
        let constraints = CrfConstraints::for_scheme(&names, SpanScheme::Bio);
        let head = CrfHead::new(&mut ParamStore::new(1, &d), 4, 3, &constraints).unwrap();
        // Word 0: I-X by 1e6; word 1: O by 1e6; word 2: I-X by 1e6.
        let em = vec![0.0f32, 1.0, 1e6, 1e6, 0.0, 0.0, 0.0, 1.0, 1e6];
        let em = Tensor::from_vec(em, (1, 3, 3), &d).unwrap();
        let path = head.decode(&em, &[3], Some(&[vec![0, 1, 2]])).unwrap();
        assert_eq!(path, [[1, 0, 1]]);
        let (trans, start, _) = head.constrained_scores().unwrap();
        assert_eq!(start[2], f32::NEG_INFINITY);
        assert_eq!(trans[2], f32::NEG_INFINITY, "O -> I-X");
    }

    #[test]
    fn word_labels_spread_over_their_pieces() {
        // [CLS] w0 w0 w1 [SEP] [PAD]: steps at 1 and 3.
        assert_eq!(spread(&[4, 7], &[1, 3], 5), [4, 4, 4, 7, 7]);
        assert_eq!(spread(&[2], &[0], 1), [2]);
        // A row of specials only takes each position's best emission.
        let d = Device::Cpu;
        let head = CrfHead::new(
            &mut ParamStore::new(1, &d),
            2,
            3,
            &CrfConstraints::default(),
        )
        .unwrap();
        let em = Tensor::from_vec(vec![0.0f32, 2.0, 1.0, 3.0, 0.0, 1.0], (1, 2, 3), &d).unwrap();
        let starts = [vec![]];
        assert_eq!(head.decode(&em, &[2], Some(&starts)).unwrap(), [[1, 0]]);
        assert!(head.decode(&em, &[2, 2], None).is_err());
    }
}
