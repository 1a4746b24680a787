//! Multi-task batch sampling. Each step picks a task, then draws the next
//! batch from that task's shuffled pool. A row that carries several tasks
//! (EWT: one sentence, many tag sets) trains all of them in that batch: the
//! pool only decides which rows are drawn, the batch carries every target
//! its rows have.
//!
//! Which task (`train.sampling`), with `n_t` the rows of task `t` that one
//! epoch may use (its pool, at most `train.task_caps[t]`):
//!
//! | strategy | P(t) |
//! |---|---|
//! | proportional | `n_t / Σ n` |
//! | temperature | `n_t^(1/T)` normalized, `T = train.temperature` |
//! | uniform | round-robin: every task in turn |
//! | annealed | as temperature, with `T` rising linearly from 1 at the first epoch to `train.temperature` at the last |
//!
//! A cap is a hard bound: once a task has contributed `cap` rows in the
//! current epoch it is not drawn again until the next one (its last batch
//! is cut short), and the others share its probability. A capped task walks
//! on through its shuffled pool, so each epoch sees different rows.
//!
//! An epoch is `⌈N · Σ n_t / Σ |pool_t| / batch_size⌉` steps, `N` being the
//! rows that carry at least one task: one pass over the data without caps.
//!
//! Pools are bucketed: after each shuffle, runs of [`BUCKET_BATCHES`]
//! batches' worth of rows are sorted by length and cut into batches, and the
//! batches are shuffled again. Batches then hold rows of similar length, so
//! per-batch padding (and the recurrent steps spent on it) stays small while
//! the order stays random.
//!
//! Everything the sampler remembers between steps is in [`SamplerState`]
//! (serializable, for checkpoints); the randomness comes from the generator
//! the caller passes to each call.

use mtl_core::config::{Sampling, TrainConfig};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::Example;

/// Batches whose rows are sorted together by length.
pub const BUCKET_BATCHES: usize = 32;

/// The sampler's memory: pool orders, positions, per-epoch counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplerState {
    pub tasks: Vec<String>,
    /// Per task, its rows in the current shuffled order.
    pools: Vec<Vec<u32>>,
    /// Per task, the next position in its pool (`>= len`: reshuffle first).
    cursors: Vec<usize>,
    /// Per task, rows drawn in the current epoch (for the caps).
    drawn: Vec<usize>,
    /// Round-robin position (uniform sampling).
    next_task: usize,
    /// The current epoch, 1-based (annealing).
    epoch: usize,
}

pub struct Sampler {
    strategy: Sampling,
    temperature: f64,
    epochs: usize,
    batch_size: usize,
    caps: Vec<Option<usize>>,
    lengths: Vec<usize>,
    steps_per_epoch: usize,
    state: SamplerState,
}

impl Sampler {
    /// A sampler over `examples` for `tasks`, configured by `tc`
    /// (`sampling`, `temperature`, `task_caps`, `batch_size`, `epochs`).
    pub fn new(examples: &[Example], tasks: &[String], tc: &TrainConfig) -> Self {
        let pools: Vec<Vec<u32>> = tasks
            .iter()
            .map(|t| {
                (0..examples.len())
                    .filter(|&i| examples[i].targets.contains_key(t))
                    .map(|i| i as u32)
                    .collect()
            })
            .collect();
        let caps: Vec<Option<usize>> = tasks.iter().map(|t| tc.task_caps.get(t).copied()).collect();
        // Rows that carry a task being trained: a single-task baseline reads
        // the multi-task table, whose other rows must not stretch its epoch.
        let carrying = examples
            .iter()
            .filter(|e| tasks.iter().any(|t| e.targets.contains_key(t)))
            .count();
        let full: usize = pools.iter().map(Vec::len).sum();
        let usable: usize = pools
            .iter()
            .zip(&caps)
            .map(|(p, c)| c.map_or(p.len(), |c| c.min(p.len())))
            .sum();
        let rows = if full == 0 {
            0.0
        } else {
            carrying as f64 * usable as f64 / full as f64
        };
        let batch_size = tc.batch_size.max(1);
        Self {
            strategy: tc.sampling,
            temperature: tc.temperature,
            epochs: tc.epochs.max(1),
            batch_size,
            caps,
            lengths: examples.iter().map(|e| e.input_ids.len()).collect(),
            steps_per_epoch: ((rows / batch_size as f64).ceil() as usize).max(1),
            state: SamplerState {
                tasks: tasks.to_vec(),
                cursors: vec![usize::MAX; pools.len()],
                drawn: vec![0; pools.len()],
                pools,
                next_task: 0,
                epoch: 1,
            },
        }
    }

    /// Steps in one epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }

    /// Starts epoch `epoch` (1-based): caps count from zero again.
    pub fn start_epoch(&mut self, epoch: usize) {
        self.state.epoch = epoch;
        self.state.drawn.iter_mut().for_each(|d| *d = 0);
    }

    /// `T` of the current epoch (1 = proportional).
    pub fn current_temperature(&self) -> f64 {
        match self.strategy {
            Sampling::Proportional | Sampling::Uniform => 1.0,
            Sampling::Temperature => self.temperature,
            Sampling::Annealed => {
                if self.epochs <= 1 {
                    1.0
                } else {
                    let progress = (self.state.epoch.saturating_sub(1) as f64
                        / (self.epochs - 1) as f64)
                        .min(1.0);
                    1.0 + (self.temperature - 1.0) * progress
                }
            }
        }
    }

    /// Rows task `k` may contribute per epoch.
    fn usable(&self, k: usize) -> usize {
        let n = self.state.pools[k].len();
        self.caps[k].map_or(n, |c| c.min(n))
    }

    fn eligible(&self, k: usize) -> bool {
        self.usable(k) > 0 && self.caps[k].is_none_or(|c| self.state.drawn[k] < c)
    }

    /// The target probability of each task this epoch, before caps run out
    /// (uniform: the share of round-robin turns).
    pub fn probabilities(&self) -> Vec<f64> {
        let w: Vec<f64> = (0..self.state.pools.len())
            .map(|k| self.weight(self.usable(k)))
            .collect();
        let sum: f64 = w.iter().sum();
        w.iter()
            .map(|x| if sum > 0.0 { x / sum } else { 0.0 })
            .collect()
    }

    /// Unnormalized probability of a task with `n` usable rows.
    fn weight(&self, n: usize) -> f64 {
        if n == 0 {
            return 0.0;
        }
        match self.strategy {
            Sampling::Uniform => 1.0,
            _ => (n as f64).powf(1.0 / self.current_temperature()),
        }
    }

    /// The task chosen (index into `tasks`) and the row indices of its next
    /// batch; `None` when no task may be drawn any more this epoch.
    pub fn next_batch(&mut self, rng: &mut StdRng) -> Option<(usize, Vec<usize>)> {
        let k = self.pick(rng)?;
        if self.state.cursors[k] >= self.state.pools[k].len() {
            self.reshuffle(k, rng);
            self.state.cursors[k] = 0;
        }
        let pool = &self.state.pools[k];
        let start = self.state.cursors[k];
        let mut take = self.batch_size.min(pool.len() - start);
        if let Some(cap) = self.caps[k] {
            take = take.min(cap - self.state.drawn[k]);
        }
        let rows: Vec<usize> = pool[start..start + take]
            .iter()
            .map(|&i| i as usize)
            .collect();
        self.state.cursors[k] = start + take;
        self.state.drawn[k] += take;
        Some((k, rows))
    }

    fn pick(&mut self, rng: &mut StdRng) -> Option<usize> {
        let n = self.state.pools.len();
        if self.strategy == Sampling::Uniform {
            let k = (0..n)
                .map(|i| (self.state.next_task + i) % n)
                .find(|&k| self.eligible(k))?;
            self.state.next_task = (k + 1) % n;
            return Some(k);
        }
        let w: Vec<f64> = (0..n)
            .map(|k| {
                if self.eligible(k) {
                    self.weight(self.usable(k))
                } else {
                    0.0
                }
            })
            .collect();
        let total: f64 = w.iter().sum();
        if total <= 0.0 {
            return None;
        }
        let mut x = rng.random::<f64>() * total;
        let last = w.iter().rposition(|&x| x > 0.0)?;
        for (k, &wk) in w.iter().enumerate() {
            if wk > 0.0 && (x < wk || k == last) {
                return Some(k);
            }
            x -= wk;
        }
        Some(last)
    }

    fn reshuffle(&mut self, k: usize, rng: &mut StdRng) {
        let lengths = &self.lengths;
        let pool = &mut self.state.pools[k];
        pool.shuffle(rng);
        let mut batches: Vec<Vec<u32>> = Vec::with_capacity(pool.len().div_ceil(self.batch_size));
        for bucket in pool.chunks_mut(self.batch_size * BUCKET_BATCHES) {
            // Stable sort: equal lengths keep their shuffled order.
            bucket.sort_by_key(|&i| lengths[i as usize]);
            batches.extend(bucket.chunks(self.batch_size).map(<[u32]>::to_vec));
        }
        batches.shuffle(rng);
        *pool = batches.concat();
    }

    pub fn state(&self) -> &SamplerState {
        &self.state
    }

    /// Continues from a saved state; it must come from a sampler over the
    /// same tasks and rows.
    pub fn restore(&mut self, state: SamplerState) -> Result<(), String> {
        if state.tasks != self.state.tasks {
            return Err(format!(
                "sampler tasks {:?} differ from the model's {:?}",
                state.tasks, self.state.tasks
            ));
        }
        let n = state.pools.len();
        if state.cursors.len() != n || state.drawn.len() != n {
            return Err("sampler state has lists of different lengths".into());
        }
        for (k, (saved, ours)) in state.pools.iter().zip(&self.state.pools).enumerate() {
            let mut a = saved.clone();
            a.sort_unstable();
            let mut b = ours.clone();
            b.sort_unstable();
            if a != b {
                return Err(format!(
                    "sampler pool of task `{}` holds other rows than the training data",
                    state.tasks[k]
                ));
            }
        }
        self.state = state;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::RowTarget;
    use rand::SeedableRng;
    use std::collections::BTreeMap;

    fn ex(tasks: &[&str]) -> Example {
        Example {
            input_ids: vec![1, 2],
            targets: tasks
                .iter()
                .map(|t| (t.to_string(), RowTarget::Sentence(0)))
                .collect::<BTreeMap<_, _>>(),
            features: BTreeMap::new(),
            word_ids: None,
            chars: None,
        }
    }

    fn tc(sampling: Sampling, batch_size: usize) -> TrainConfig {
        TrainConfig {
            sampling,
            batch_size,
            ..TrainConfig::default()
        }
    }

    /// 900, 100 and 25 rows of tasks a, b, c.
    fn three_tasks() -> (Vec<Example>, Vec<String>) {
        let mut data: Vec<Example> = (0..900).map(|_| ex(&["a"])).collect();
        data.extend((0..100).map(|_| ex(&["b"])));
        data.extend((0..25).map(|_| ex(&["c"])));
        (data, vec!["a".into(), "b".into(), "c".into()])
    }

    fn frequencies(s: &mut Sampler, draws: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut counts = [0usize; 3];
        for _ in 0..draws {
            counts[s.next_batch(&mut rng).unwrap().0] += 1;
        }
        counts.iter().map(|&c| c as f64 / draws as f64).collect()
    }

    fn assert_close(got: &[f64], want: &[f64], tol: f64) {
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < tol, "got {got:?}, want {want:?}");
        }
    }

    fn normalized(w: &[f64]) -> Vec<f64> {
        let s: f64 = w.iter().sum();
        w.iter().map(|x| x / s).collect()
    }

    #[test]
    fn proportional_frequencies_follow_task_sizes() {
        let (data, tasks) = three_tasks();
        let mut s = Sampler::new(&data, &tasks, &tc(Sampling::Proportional, 10));
        let want = normalized(&[900.0, 100.0, 25.0]);
        assert_close(&s.probabilities(), &want, 1e-12);
        assert_close(&frequencies(&mut s, 20_000, 1), &want, 0.01);
    }

    #[test]
    fn temperature_flattens_the_distribution() {
        let (data, tasks) = three_tasks();
        let mut cfg = tc(Sampling::Temperature, 10);
        cfg.temperature = 2.0;
        let mut s = Sampler::new(&data, &tasks, &cfg);
        // n^(1/2): 30, 10, 5.
        let want = normalized(&[30.0, 10.0, 5.0]);
        assert_close(&s.probabilities(), &want, 1e-12);
        assert_close(&frequencies(&mut s, 20_000, 2), &want, 0.01);
    }

    #[test]
    fn uniform_is_round_robin() {
        let (data, tasks) = three_tasks();
        let mut s = Sampler::new(&data, &tasks, &tc(Sampling::Uniform, 10));
        let mut rng = StdRng::seed_from_u64(0);
        let order: Vec<usize> = (0..9).map(|_| s.next_batch(&mut rng).unwrap().0).collect();
        assert_eq!(order, [0, 1, 2, 0, 1, 2, 0, 1, 2]);
        assert_close(&frequencies(&mut s, 3000, 3), &[1.0 / 3.0; 3], 1e-9);
    }

    #[test]
    fn annealing_goes_from_proportional_to_the_temperature() {
        let (data, tasks) = three_tasks();
        let mut cfg = tc(Sampling::Annealed, 10);
        cfg.temperature = 3.0;
        cfg.epochs = 5;
        let mut s = Sampler::new(&data, &tasks, &cfg);
        s.start_epoch(1);
        assert_eq!(s.current_temperature(), 1.0);
        let want = normalized(&[900.0, 100.0, 25.0]);
        assert_close(&frequencies(&mut s, 20_000, 4), &want, 0.01);
        s.start_epoch(3);
        assert!((s.current_temperature() - 2.0).abs() < 1e-12);
        s.start_epoch(5);
        assert!((s.current_temperature() - 3.0).abs() < 1e-12);
        let cube = |n: f64| n.powf(1.0 / 3.0);
        let want = normalized(&[cube(900.0), cube(100.0), cube(25.0)]);
        assert_close(&s.probabilities(), &want, 1e-12);
        assert_close(&frequencies(&mut s, 20_000, 5), &want, 0.01);
    }

    /// A single-task baseline samples from the multi-task table: its epoch
    /// covers its own 25 rows, not the 1,025 rows of every task.
    #[test]
    fn an_epoch_counts_only_the_rows_of_the_trained_tasks() {
        let (data, _) = three_tasks();
        let s = Sampler::new(&data, &["c".to_string()], &tc(Sampling::Proportional, 10));
        assert_eq!(s.steps_per_epoch(), 3);
        let s = Sampler::new(
            &data,
            &["b".to_string(), "c".to_string()],
            &tc(Sampling::Proportional, 10),
        );
        assert_eq!(s.steps_per_epoch(), 13);
    }

    #[test]
    fn caps_bound_rows_per_epoch_and_shorten_the_epoch() {
        let (data, tasks) = three_tasks();
        let mut cfg = tc(Sampling::Proportional, 10);
        cfg.task_caps.insert("a".into(), 95);
        let mut s = Sampler::new(&data, &tasks, &cfg);
        // 95 + 100 + 25 usable rows: 22 steps.
        assert_eq!(s.steps_per_epoch(), 22);
        assert_close(&s.probabilities(), &normalized(&[95.0, 100.0, 25.0]), 1e-12);
        let mut rng = StdRng::seed_from_u64(6);
        let mut seen_a = std::collections::BTreeSet::new();
        for epoch in 1..=20 {
            s.start_epoch(epoch);
            let mut rows = [0usize; 3];
            for _ in 0..s.steps_per_epoch() {
                let Some((k, idx)) = s.next_batch(&mut rng) else {
                    break;
                };
                assert!(idx.iter().all(|&r| data[r].targets.contains_key(&tasks[k])));
                rows[k] += idx.len();
                if k == 0 {
                    seen_a.extend(idx);
                }
            }
            assert!(rows[0] <= 95, "epoch {epoch}: {rows:?}");
        }
        // The capped task moves on through its pool between epochs.
        assert!(seen_a.len() > 500, "{}", seen_a.len());
    }

    #[test]
    fn when_every_task_is_capped_the_epoch_runs_dry() {
        let (data, tasks) = three_tasks();
        let mut cfg = tc(Sampling::Uniform, 10);
        for t in &tasks {
            cfg.task_caps.insert(t.clone(), 12);
        }
        let mut s = Sampler::new(&data, &tasks, &cfg);
        let mut rng = StdRng::seed_from_u64(7);
        let total: usize = std::iter::from_fn(|| s.next_batch(&mut rng))
            .map(|(_, r)| r.len())
            .sum();
        assert_eq!(total, 36);
        s.start_epoch(2);
        assert!(s.next_batch(&mut rng).is_some());
    }

    #[test]
    fn state_round_trips_through_json_and_continues_identically() {
        let (data, tasks) = three_tasks();
        let mut cfg = tc(Sampling::Temperature, 7);
        cfg.task_caps.insert("b".into(), 30);
        let mut a = Sampler::new(&data, &tasks, &cfg);
        let mut rng = StdRng::seed_from_u64(8);
        for _ in 0..13 {
            a.next_batch(&mut rng);
        }
        let json = serde_json::to_string(a.state()).unwrap();
        let mut b = Sampler::new(&data, &tasks, &cfg);
        b.restore(serde_json::from_str(&json).unwrap()).unwrap();
        let mut rng_b = rng.clone();
        for _ in 0..50 {
            assert_eq!(a.next_batch(&mut rng), b.next_batch(&mut rng_b));
        }
        let other = vec!["a".to_string(), "b".to_string()];
        let mut c = Sampler::new(&data, &other, &cfg);
        assert!(c.restore(a.state().clone()).is_err());
    }

    #[test]
    fn multi_task_rows_sit_in_every_pool_they_carry() {
        let data: Vec<Example> = (0..40).map(|_| ex(&["upos", "xpos"])).collect();
        let tasks = vec!["upos".to_string(), "xpos".to_string()];
        let mut s = Sampler::new(&data, &tasks, &tc(Sampling::Proportional, 8));
        // One pass over the rows, not one per task.
        assert_eq!(s.steps_per_epoch(), 5);
        let mut rng = StdRng::seed_from_u64(1);
        let (_, rows) = s.next_batch(&mut rng).unwrap();
        assert!(rows.iter().all(|&r| data[r].targets.len() == 2));
    }

    #[test]
    fn batches_hold_rows_of_similar_length() {
        let mut rng = StdRng::seed_from_u64(9);
        let data: Vec<Example> = (0..640)
            .map(|_| {
                let mut e = ex(&["t"]);
                e.input_ids = vec![1; rng.random_range(2..100)];
                e
            })
            .collect();
        let mut s = Sampler::new(&data, &["t".to_string()], &tc(Sampling::Proportional, 16));
        let (mut padded, mut real) = (0, 0);
        for _ in 0..40 {
            let rows = s.next_batch(&mut rng).unwrap().1;
            let max = rows.iter().map(|&r| data[r].input_ids.len()).max().unwrap();
            for &r in &rows {
                real += data[r].input_ids.len();
                padded += max;
            }
        }
        let waste = 1.0 - real as f64 / padded as f64;
        // Random batches of lengths U(2, 100) waste about 45%.
        assert!(waste < 0.1, "padding waste {waste}");
    }

    #[test]
    fn a_pass_visits_every_row_once() {
        let data: Vec<Example> = (0..25).map(|_| ex(&["t"])).collect();
        let mut s = Sampler::new(&data, &["t".to_string()], &tc(Sampling::Proportional, 10));
        let mut rng = StdRng::seed_from_u64(3);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.extend(s.next_batch(&mut rng).unwrap().1);
        }
        seen.sort();
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
    }
}
