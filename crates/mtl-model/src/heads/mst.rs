//! Maximum spanning tree decoding for dependency parsing: from arc scores
//! to the highest-scoring well-formed tree (Chu-Liu/Edmonds).
//!
//! Input: `n` words and a row-major `(n + 1) x (n + 1)` matrix whose entry
//! `[d * (n + 1) + h]` scores word `d` (1..=n) taking head `h` (0 = the
//! root, else a word), the layout of a biaffine scorer's `(dependent,
//! head)` output over the root and the words. Row 0 (the root has no head)
//! and the diagonal (a word is never its own head) are never read, so they
//! may hold anything, padding or NaN included.
//!
//! Output: `heads[i]` is the head of word `i + 1` (0 = the root, else the
//! 1-based head word), the convention of CoNLL-U's HEAD column. It is
//! always a tree: every word has one head, exactly one word hangs from the
//! root, no cycles, no self-loops ([`is_tree`]). Among such trees it has
//! the highest total score.
//!
//! Scores: `-inf` marks an arc as forbidden. The decoder first uses as few
//! forbidden arcs as a tree allows (none when some tree avoids them all),
//! then maximises the sum of the others; so a row or column of `-inf`
//! still yields a tree. A NaN or `+inf` score (on an arc that is read) is
//! an error: it means a broken model, and treating it as any number would
//! make a meaningless parse look fine.

use std::cmp::Ordering;
use std::ops::{Add, Sub};

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MstError {
    #[error("{n} words need a (n + 1) x (n + 1) score matrix, got {got} scores")]
    Shape { n: usize, got: usize },
    #[error("the score of head {head} for word {dependent} is {value}")]
    BadScore {
        dependent: usize,
        head: usize,
        value: f32,
    },
}

impl From<MstError> for Error {
    fn from(e: MstError) -> Self {
        Error::Invalid(e.to_string())
    }
}

/// An arc's weight, compared lexicographically: first minus the number of
/// root arcs, then minus the number of forbidden (`-inf`) arcs, then the
/// score. Tuples under componentwise `+`/`-` and lexicographic order form a
/// totally ordered abelian group, which is all Chu-Liu/Edmonds needs (it
/// compares, adds and subtracts weights), so it finds the lexicographic
/// maximum of the summed tuple exactly:
///
/// - Single root: every arborescence from node 0 has at least one root
///   arc, and one with exactly one exists (the graph is complete), so the
///   maximum has exactly one; among those trees the rest of the tuple
///   decides. This is the usual "subtract a large constant from every root
///   arc" trick with the constant made infinite, so no magnitude has to be
///   chosen large enough for the scores at hand (and no precision is lost
///   to a huge constant).
/// - Forbidden arcs are counted instead of summed as `-inf`, which would
///   turn the contraction's subtractions into NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
struct W {
    root: i32,
    forbidden: i32,
    score: f64,
}

impl W {
    const ZERO: W = W {
        root: 0,
        forbidden: 0,
        score: 0.0,
    };

    fn cmp(&self, other: &W) -> Ordering {
        self.root
            .cmp(&other.root)
            .then(self.forbidden.cmp(&other.forbidden))
            .then(self.score.total_cmp(&other.score))
    }
}

impl Add for W {
    type Output = W;
    fn add(self, o: W) -> W {
        W {
            root: self.root + o.root,
            forbidden: self.forbidden + o.forbidden,
            score: self.score + o.score,
        }
    }
}

impl Sub for W {
    type Output = W;
    fn sub(self, o: W) -> W {
        W {
            root: self.root - o.root,
            forbidden: self.forbidden - o.forbidden,
            score: self.score - o.score,
        }
    }
}

/// The highest-scoring tree over `n` words with exactly one root child;
/// see the module docs for the layout of `scores` and of the result.
pub fn decode(scores: &[f32], n: usize) -> Result<Vec<usize>, MstError> {
    let m = n.saturating_add(1);
    if m.checked_mul(m) != Some(scores.len()) {
        return Err(MstError::Shape {
            n,
            got: scores.len(),
        });
    }
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut w = vec![W::ZERO; m * m];
    for d in 1..m {
        for h in (0..m).filter(|&h| h != d) {
            let s = scores[d * m + h];
            if s.is_nan() || s == f32::INFINITY {
                return Err(MstError::BadScore {
                    dependent: d,
                    head: h,
                    value: s,
                });
            }
            let forbidden = s == f32::NEG_INFINITY;
            w[d * m + h] = W {
                root: -i32::from(h == 0),
                forbidden: -i32::from(forbidden),
                score: if forbidden { 0.0 } else { f64::from(s) },
            };
        }
    }
    let heads = arborescence(w, m);
    Ok(heads[1..].to_vec())
}

/// No node / no parent.
const NONE: usize = usize::MAX;

/// Chu-Liu/Edmonds on the complete graph over nodes `0..m` rooted at 0,
/// with `w[d * m + h]` the weight of arc `h -> d`: the heads (`[0]` unused)
/// of the maximum arborescence.
///
/// The dense O(m^2) form (Tarjan 1977; Camerini, Fratta and Maffioli 1979)
/// rather than contracting a cycle and rebuilding the matrix round after
/// round: the single-root weights make no word prefer the root, so every
/// decode contracts until one node is left, about n/2 rounds on real
/// scores, and rebuilding would cost O(n^3): for 200 words, 4-6 ms of CPU
/// against 0.6 ms here.
///
/// Each node, original or contracted ("super"), picks its best incoming
/// arc once, from outside itself; when that closes a cycle of picks, the
/// cycle becomes a new super whose incoming weight from `u` is the best
/// over its members of `w(u -> member) - w(member's pick)`: entering the
/// cycle there replaces that member's pick. Supers get rows of weights
/// indexed by original source node, so contracting costs O(m) per member
/// and the whole run O(m^2). Expansion goes top down: a super entered at
/// an original node `v` gives `v` that head, and every other member of each
/// super on the way down from the super to `v` keeps its own pick.
fn arborescence(w: Vec<W>, m: usize) -> Vec<usize> {
    // Per node (originals 0..m, then supers): incoming weight from each
    // original source, and the original node that arc enters. Reserved
    // for the at most m - 1 supers (each contraction leaves one node
    // fewer), since regrowing these rows was half the run time.
    let mut inw = w;
    inw.reserve(m.saturating_sub(1) * m);
    let mut inv: Vec<usize> = Vec::with_capacity(2 * m * m);
    for x in 0..m {
        inv.extend(std::iter::repeat_n(x, m));
    }
    // The outermost super holding each original node.
    let mut top: Vec<usize> = (0..m).collect();
    let mut parent = vec![NONE; m];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); m];
    let mut inside: Vec<Vec<usize>> = (0..m).map(|x| vec![x]).collect();
    // The chosen incoming arc: (original source, original node entered, weight).
    let mut pick: Vec<Option<(usize, usize, W)>> = vec![None; m];
    let mut todo: Vec<usize> = (1..m).rev().collect();
    while let Some(a) = todo.pop() {
        let row = &inw[a * m..(a + 1) * m];
        // The root is never inside a super, so a source always exists.
        let mut best = 0;
        for u in 1..m {
            if top[u] != a && row[u].cmp(&row[best]) == Ordering::Greater {
                best = u;
            }
        }
        pick[a] = Some((best, inv[a * m + best], row[best]));
        // Does the pick close a cycle of picks?
        let mut cycle = vec![a];
        let mut b = top[best];
        while b != a {
            let Some((u, _, _)) = pick[b] else { break };
            cycle.push(b);
            b = top[u];
        }
        if b != a {
            continue;
        }
        let c = parent.len();
        let mut row_c = vec![W::ZERO; m];
        let mut inv_c = vec![0; m];
        for u in 0..m {
            let mut first = true;
            for &x in &cycle {
                let Some((_, _, picked)) = pick[x] else {
                    continue;
                };
                let gain = inw[x * m + u] - picked;
                if first || gain.cmp(&row_c[u]) == Ordering::Greater {
                    (row_c[u], inv_c[u], first) = (gain, inv[x * m + u], false);
                }
            }
        }
        inw.extend(row_c);
        inv.extend(inv_c);
        let mut nodes = Vec::new();
        for &x in &cycle {
            parent[x] = c;
            nodes.append(&mut inside[x]);
        }
        for &o in &nodes {
            top[o] = c;
        }
        parent.push(NONE);
        members.push(cycle);
        inside.push(nodes);
        pick.push(None);
        todo.push(c);
    }

    let mut head = vec![0; m];
    let mut stack: Vec<usize> = (1..parent.len()).filter(|&x| parent[x] == NONE).collect();
    while let Some(s) = stack.pop() {
        let Some((u, v, _)) = pick[s] else { continue };
        head[v] = u;
        let mut child = v;
        while child != s {
            let p = parent[child];
            stack.extend(members[p].iter().copied().filter(|&x| x != child));
            child = p;
        }
    }
    head
}

/// Whether `heads` (as [`decode`] returns them) is a tree over its words:
/// heads in `0..=n`, no self-loop, exactly one word on the root, and every
/// word reaches the root. No words is the empty tree.
pub fn is_tree(heads: &[usize]) -> bool {
    let n = heads.len();
    if n == 0 {
        return true;
    }
    if heads.iter().enumerate().any(|(i, &h)| h > n || h == i + 1) {
        return false;
    }
    if heads.iter().filter(|&&h| h == 0).count() != 1 {
        return false;
    }
    // 0 = not yet known, 1 = on the walk, 2 = reaches the root.
    let mut state = vec![0u8; n + 1];
    state[0] = 2;
    for start in 1..=n {
        let mut v = start;
        while state[v] == 0 {
            state[v] = 1;
            v = heads[v - 1];
        }
        if state[v] == 1 {
            return false;
        }
        let mut u = start;
        while state[u] == 1 {
            state[u] = 2;
            u = heads[u - 1];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::rng::SplitMix64;

    const NEG: f32 = f32::NEG_INFINITY;

    /// Each node's best head (lowest index among ties, so results are
    /// deterministic); node 0 gets 0.
    fn best_heads(w: &[W], m: usize) -> Vec<usize> {
        let mut head = vec![0; m];
        for d in 1..m {
            let row = &w[d * m..(d + 1) * m];
            let mut best = 0;
            for h in 1..m {
                if h != d && row[h].cmp(&row[best]) == Ordering::Greater {
                    best = h;
                }
            }
            head[d] = best;
        }
        head
    }

    /// A cycle of the head graph (node 0, which has no head, is in none).
    fn find_cycle(head: &[usize]) -> Option<Vec<usize>> {
        const NEW: u8 = 0;
        const ON_PATH: u8 = 1;
        const DONE: u8 = 2;
        let mut state = vec![NEW; head.len()];
        state[0] = DONE;
        for start in 1..head.len() {
            let mut v = start;
            while state[v] == NEW {
                state[v] = ON_PATH;
                v = head[v];
            }
            if state[v] == ON_PATH {
                let mut cycle = vec![v];
                let mut u = head[v];
                while u != v {
                    cycle.push(u);
                    u = head[u];
                }
                return Some(cycle);
            }
            let mut u = start;
            while state[u] == ON_PATH {
                state[u] = DONE;
                u = head[u];
            }
        }
        None
    }

    /// What undoing one contraction needs.
    struct Contraction {
        /// The best heads of the graph that was contracted (the cycle's arcs
        /// survive expansion, but one).
        head: Vec<usize>,
        /// Node of the contracted graph -> node of this graph; the cycle's node
        /// is the last one.
        old_id: Vec<usize>,
        /// For each contracted node `d` outside the cycle: the cycle node that
        /// is its head when it hangs from the cycle.
        exit: Vec<usize>,
        /// For each contracted node `h` outside the cycle: the cycle node whose
        /// head becomes `h` when the cycle hangs from `h`.
        entry: Vec<usize>,
    }

    /// The textbook form as a reference: contract one cycle of best heads
    /// into a node, rebuild the matrix, solve, expand; O(n^3).
    fn reference_arborescence(mut w: Vec<W>, mut m: usize) -> Vec<usize> {
        let mut undo = Vec::new();
        let mut heads = loop {
            let head = best_heads(&w, m);
            let Some(cycle) = find_cycle(&head) else {
                break head;
            };
            let mut in_cycle = vec![false; m];
            for &v in &cycle {
                in_cycle[v] = true;
            }
            let mut old_id: Vec<usize> = (0..m).filter(|&v| !in_cycle[v]).collect();
            let c = old_id.len();
            old_id.push(cycle[0]);
            let mm = c + 1;
            let mut w2 = vec![W::ZERO; mm * mm];
            let (mut exit, mut entry) = (vec![0; mm], vec![0; mm]);
            for (nd, &d) in old_id[..c].iter().enumerate().skip(1) {
                let row = &w[d * m..(d + 1) * m];
                for (nh, &h) in old_id[..c].iter().enumerate() {
                    if nh != nd {
                        w2[nd * mm + nh] = row[h];
                    }
                }
                // Hanging from the cycle: through its best member.
                let mut best = cycle[0];
                for &u in &cycle[1..] {
                    if row[u].cmp(&row[best]) == Ordering::Greater {
                        best = u;
                    }
                }
                w2[nd * mm + c] = row[best];
                exit[nd] = best;
            }
            // The cycle hanging from `h`: entering at `v` replaces `v`'s arc in
            // the cycle, so it gains w(h -> v) - w(head[v] -> v).
            for (nh, &h) in old_id[..c].iter().enumerate() {
                let gain = |v: usize| w[v * m + h] - w[v * m + head[v]];
                let mut best = cycle[0];
                let mut best_gain = gain(best);
                for &v in &cycle[1..] {
                    let g = gain(v);
                    if g.cmp(&best_gain) == Ordering::Greater {
                        (best, best_gain) = (v, g);
                    }
                }
                w2[c * mm + nh] = best_gain;
                entry[nh] = best;
            }
            undo.push(Contraction {
                head,
                old_id,
                exit,
                entry,
            });
            w = w2;
            m = mm;
        };
        while let Some(k) = undo.pop() {
            let c = k.old_id.len() - 1;
            let mut expanded = k.head;
            for nd in 1..c {
                let nh = heads[nd];
                expanded[k.old_id[nd]] = if nh == c { k.exit[nd] } else { k.old_id[nh] };
            }
            let nh = heads[c];
            expanded[k.entry[nh]] = k.old_id[nh];
            heads = expanded;
        }
        heads
    }

    /// Random scores in [-5, 5), with a share of `-inf` arcs.
    fn random_scores(rng: &mut SplitMix64, n: usize, forbidden: f64) -> Vec<f32> {
        let m = n + 1;
        (0..m * m)
            .map(|_| {
                let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                if u < forbidden {
                    NEG
                } else {
                    ((rng.next_u64() >> 40) as f64 / (1u64 << 24) as f64 * 10.0 - 5.0) as f32
                }
            })
            .collect()
    }

    /// (forbidden arcs, summed score of the others), the order the decoder
    /// maximises in (fewer forbidden arcs first).
    fn tree_score(scores: &[f32], heads: &[usize]) -> (usize, f64) {
        let m = heads.len() + 1;
        let mut forbidden = 0;
        let mut sum = 0.0;
        for (i, &h) in heads.iter().enumerate() {
            let s = scores[(i + 1) * m + h];
            if s == NEG {
                forbidden += 1;
            } else {
                sum += f64::from(s);
            }
        }
        (forbidden, sum)
    }

    /// The best tree's score by trying every head vector.
    fn brute_force(scores: &[f32], n: usize) -> (usize, f64) {
        let mut heads = vec![0usize; n];
        let mut best: Option<(usize, f64)> = None;
        loop {
            if is_tree(&heads) {
                let s = tree_score(scores, &heads);
                let better = best.is_none_or(|b| s.0 < b.0 || (s.0 == b.0 && s.1 > b.1));
                if better {
                    best = Some(s);
                }
            }
            // Next head vector, odometer style.
            let mut i = 0;
            loop {
                if i == n {
                    return best.unwrap_or((0, 0.0));
                }
                heads[i] += 1;
                if heads[i] <= n {
                    break;
                }
                heads[i] = 0;
                i += 1;
            }
        }
    }

    fn matrix(rows: &[&[f32]]) -> Vec<f32> {
        rows.iter().flat_map(|r| r.iter().copied()).collect()
    }

    fn root_children(heads: &[usize]) -> usize {
        heads.iter().filter(|&&h| h == 0).count()
    }

    #[test]
    fn equals_brute_force_on_small_random_graphs() {
        let mut rng = SplitMix64::new(14);
        for n in 1..=6 {
            let trials = if n == 6 { 30 } else { 200 };
            for t in 0..trials {
                // Every third graph has forbidden arcs, some with most arcs
                // forbidden.
                let forbidden = [0.0, 0.3, 0.8][t % 3];
                let scores = random_scores(&mut rng, n, forbidden);
                let heads = decode(&scores, n).unwrap();
                assert!(is_tree(&heads), "n={n} {heads:?}");
                let (bf, bs) = brute_force(&scores, n);
                let (f, s) = tree_score(&scores, &heads);
                assert_eq!(f, bf, "n={n} trial {t}: forbidden arcs");
                assert!((s - bs).abs() < 1e-9, "n={n} trial {t}: {s} vs {bs}");
            }
        }
    }

    #[test]
    fn one_word_hangs_from_the_root() {
        // Whatever the scores, the only tree.
        for s in [3.0, -2.0, NEG] {
            assert_eq!(decode(&[0.0, 0.0, s, 0.0], 1).unwrap(), vec![0]);
        }
        assert_eq!(decode(&[0.0], 0).unwrap(), Vec::<usize>::new());
    }

    #[test]
    fn breaks_the_cycle_of_the_greedy_heads() {
        // Greedy: 1 <- 2 (9), 2 <- 1 (8): a cycle; 3 <- 2 (5).
        // Breaking it at word 1 (root -> 1 = 1, loses 9 - 1 = 8):
        //   1 <- 0, 2 <- 1, 3 <- 2: 1 + 8 + 5 = 14.
        // Breaking it at word 2 (root -> 2 = 4, loses 8 - 4 = 4):
        //   2 <- 0, 1 <- 2, 3 <- 2: 4 + 9 + 5 = 18. Best.
        // Entering through word 3 instead (3 <- 0 = 0, 2 <- 3 = 2):
        //   3 <- 0, 2 <- 3, 1 <- 2: 0 + 2 + 9 = 11.
        let d = 0.0; // never read
        let s = matrix(&[
            &[d, d, d, d],
            &[1.0, d, 9.0, 0.0],
            &[4.0, 8.0, d, 2.0],
            &[0.0, 3.0, 5.0, d],
        ]);
        let heads = decode(&s, 3).unwrap();
        assert_eq!(heads, vec![2, 0, 2]);
        assert_eq!(tree_score(&s, &heads), (0, 18.0));
        assert_eq!(brute_force(&s, 3), (0, 18.0));
    }

    #[test]
    fn keeps_one_root_child_where_greedy_takes_two() {
        // Greedy: 1 <- 0 (10) and 2 <- 0 (9): two words on the root.
        // One root child: 1 <- 0, 2 <- 1: 10 + 5 = 15, or 2 <- 0, 1 <- 2:
        // 9 + 2 = 11; so word 2 moves under word 1.
        let d = f32::NAN; // never read
        let s = matrix(&[&[d, d, d], &[10.0, d, 2.0], &[9.0, 5.0, d]]);
        let heads = decode(&s, 2).unwrap();
        assert_eq!(heads, vec![0, 1]);
        // Three root-loving words: still one root child.
        let s = matrix(&[
            &[d, d, d, d],
            &[10.0, d, 0.0, 0.0],
            &[10.0, 1.0, d, 0.0],
            &[10.0, 0.0, 2.0, d],
        ]);
        let heads = decode(&s, 3).unwrap();
        assert!(is_tree(&heads) && root_children(&heads) == 1, "{heads:?}");
        assert_eq!(tree_score(&s, &heads), brute_force(&s, 3));
    }

    #[test]
    fn forbidden_arcs_are_avoided_when_a_tree_allows() {
        // Only the chain 0 -> 1 -> 2 -> 3 is allowed; the forbidden arcs
        // would otherwise be far better (the diagonal is never read).
        let d = 100.0;
        let s = matrix(&[
            &[d, d, d, d],
            &[-5.0, d, NEG, NEG],
            &[NEG, -5.0, d, NEG],
            &[NEG, NEG, -5.0, d],
        ]);
        assert_eq!(decode(&s, 3).unwrap(), vec![0, 1, 2]);
        // No root arc allowed at all: still exactly one root child.
        let s = matrix(&[
            &[d, d, d, d],
            &[NEG, d, 1.0, 1.0],
            &[NEG, 1.0, d, 1.0],
            &[NEG, 1.0, 1.0, d],
        ]);
        let heads = decode(&s, 3).unwrap();
        assert!(is_tree(&heads), "{heads:?}");
        assert_eq!(tree_score(&s, &heads), (1, 2.0));
        // Everything forbidden, or all scores equal: a tree all the same.
        for v in [NEG, 0.0] {
            let heads = decode(&[v; 16], 3).unwrap();
            assert!(is_tree(&heads), "{heads:?}");
        }
    }

    #[test]
    fn bad_scores_and_shapes_are_errors() {
        let mut s = vec![0.0; 9];
        s[2 * 3 + 1] = f32::NAN;
        assert_eq!(
            decode(&s, 2).unwrap_err().to_string(),
            "the score of head 1 for word 2 is NaN"
        );
        s[2 * 3 + 1] = f32::INFINITY;
        assert!(matches!(
            decode(&s, 2),
            Err(MstError::BadScore {
                dependent: 2,
                head: 1,
                ..
            })
        ));
        // NaN where nothing is read (row 0, the diagonal) is fine.
        let mut s = vec![f32::NAN; 9];
        s[3] = 1.0;
        s[5] = 0.0;
        s[6] = 0.0;
        s[7] = 2.0;
        assert_eq!(decode(&s, 2).unwrap(), vec![0, 1]);
        assert_eq!(
            decode(&[0.0; 8], 2).unwrap_err(),
            MstError::Shape { n: 2, got: 8 }
        );
        assert!(matches!(
            decode(&[], usize::MAX),
            Err(MstError::Shape { got: 0, .. })
        ));
        let e: Error = MstError::Shape { n: 1, got: 0 }.into();
        assert!(e.to_string().contains("1 words"), "{e}");
    }

    #[test]
    fn is_tree_rejects_malformed_head_vectors() {
        assert!(is_tree(&[2, 0, 2]));
        assert!(is_tree(&[])); // no words: the empty tree, as decode gives
        assert!(!is_tree(&[0, 0])); // two root children
        assert!(!is_tree(&[1, 0])); // self-loop
        assert!(!is_tree(&[3, 0, 4])); // head outside the sentence
        assert!(!is_tree(&[0, 3, 2])); // cycle 2 <-> 3
    }

    #[test]
    fn long_random_sentences_decode_to_trees() {
        let mut rng = SplitMix64::new(200);
        for (n, forbidden) in [(200, 0.0), (200, 0.5), (120, 0.95), (50, 0.0)] {
            let scores = random_scores(&mut rng, n, forbidden);
            let start = std::time::Instant::now();
            let heads = decode(&scores, n).unwrap();
            let took = start.elapsed();
            assert_eq!(heads.len(), n);
            assert!(is_tree(&heads), "n={n}");
            // Generous: a loaded 2-core machine; it is a few ms at most.
            assert!(took.as_millis() < 2000, "n={n}: {took:?}");
        }
    }

    /// `decode` through the reference algorithm.
    fn reference_decode(scores: &[f32], n: usize) -> Vec<usize> {
        let m = n + 1;
        let mut w = vec![W::ZERO; m * m];
        for d in 1..m {
            for h in (0..m).filter(|&h| h != d) {
                let s = scores[d * m + h];
                let forbidden = s == NEG;
                w[d * m + h] = W {
                    root: -i32::from(h == 0),
                    forbidden: -i32::from(forbidden),
                    score: if forbidden { 0.0 } else { f64::from(s) },
                };
            }
        }
        reference_arborescence(w, m)[1..].to_vec()
    }

    #[test]
    fn equals_the_reference_algorithm_on_larger_graphs() {
        let mut rng = SplitMix64::new(77);
        for t in 0..300 {
            let n = 7 + rng.below(60);
            let forbidden = [0.0, 0.2, 0.9][t % 3];
            let mut scores = random_scores(&mut rng, n, forbidden);
            // Every other graph: peaked on a random tree, as a trained
            // scorer's would be.
            if t % 2 == 0 {
                let m = n + 1;
                for d in 2..=n {
                    let h = rng.below(d);
                    scores[d * m + h] += 6.0;
                }
            }
            let heads = decode(&scores, n).unwrap();
            let reference = reference_decode(&scores, n);
            assert!(is_tree(&heads) && is_tree(&reference), "n={n}");
            let (f, s) = tree_score(&scores, &heads);
            let (rf, rs) = tree_score(&scores, &reference);
            assert_eq!(f, rf, "trial {t} n={n}");
            assert!((s - rs).abs() < 1e-6, "trial {t} n={n}: {s} vs {rs}");
        }
    }
}
