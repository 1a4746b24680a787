//! Multi-task batch sampling. Each step picks a task with probability
//! proportional to its number of training examples, then draws the next
//! batch from that task's shuffled pool. A row that carries several tasks
//! trains all of them in that batch.
//!
//! Pools are bucketed: after each shuffle, runs of [`BUCKET_BATCHES`]
//! batches' worth of rows are sorted by length and cut into batches, and the
//! batches are shuffled again. Batches then hold rows of similar length, so
//! per-batch padding (and the recurrent steps spent on it) stays small while
//! the order stays random.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::Example;

/// Batches whose rows are sorted together by length.
pub const BUCKET_BATCHES: usize = 32;

pub struct ProportionalSampler {
    tasks: Vec<String>,
    lengths: Vec<usize>,
    pools: Vec<Vec<usize>>,
    cursors: Vec<usize>,
    batch_size: usize,
}

impl ProportionalSampler {
    pub fn new(examples: &[Example], tasks: &[String], batch_size: usize) -> Self {
        let pools: Vec<Vec<usize>> = tasks
            .iter()
            .map(|t| {
                (0..examples.len())
                    .filter(|&i| examples[i].targets.contains_key(t))
                    .collect()
            })
            .collect();
        Self {
            tasks: tasks.to_vec(),
            lengths: examples.iter().map(|e| e.input_ids.len()).collect(),
            cursors: vec![usize::MAX; pools.len()],
            pools,
            batch_size,
        }
    }

    /// Steps in one pass over the data.
    pub fn steps_per_epoch(&self, n_examples: usize) -> usize {
        n_examples.div_ceil(self.batch_size).max(1)
    }

    /// The task chosen and the row indices of its next batch.
    pub fn next_batch(&mut self, rng: &mut StdRng) -> Option<(&str, Vec<usize>)> {
        let total: usize = self.pools.iter().map(Vec::len).sum();
        if total == 0 {
            return None;
        }
        let mut pick = rng.random_range(0..total);
        let mut k = 0;
        while pick >= self.pools[k].len() {
            pick -= self.pools[k].len();
            k += 1;
        }
        if self.cursors[k] >= self.pools[k].len() {
            self.reshuffle(k, rng);
            self.cursors[k] = 0;
        }
        let pool = &self.pools[k];
        let start = self.cursors[k];
        let end = (start + self.batch_size).min(pool.len());
        self.cursors[k] = end;
        Some((&self.tasks[k], pool[start..end].to_vec()))
    }

    fn reshuffle(&mut self, k: usize, rng: &mut StdRng) {
        let lengths = &self.lengths;
        let pool = &mut self.pools[k];
        pool.shuffle(rng);
        let mut batches: Vec<Vec<usize>> = Vec::with_capacity(pool.len().div_ceil(self.batch_size));
        for bucket in pool.chunks_mut(self.batch_size * BUCKET_BATCHES) {
            // Stable sort: equal lengths keep their shuffled order.
            bucket.sort_by_key(|&i| lengths[i]);
            batches.extend(bucket.chunks(self.batch_size).map(<[usize]>::to_vec));
        }
        batches.shuffle(rng);
        *pool = batches.concat();
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
        }
    }

    #[test]
    fn tasks_are_drawn_in_proportion_and_batches_carry_their_task() {
        let mut data: Vec<Example> = (0..300).map(|_| ex(&["big"])).collect();
        data.extend((0..100).map(|_| ex(&["small"])));
        let tasks = vec!["big".to_string(), "small".to_string()];
        let mut s = ProportionalSampler::new(&data, &tasks, 10);
        let mut rng = StdRng::seed_from_u64(0);
        let mut big = 0;
        for _ in 0..2000 {
            let (task, rows) = s.next_batch(&mut rng).unwrap();
            assert!(rows.iter().all(|&r| data[r].targets.contains_key(task)));
            if task == "big" {
                big += 1;
            }
        }
        let share = big as f64 / 2000.0;
        assert!((0.70..0.80).contains(&share), "share of big task {share}");
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
        let mut s = ProportionalSampler::new(&data, &["t".to_string()], 16);
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
        let mut s = ProportionalSampler::new(&data, &["t".to_string()], 10);
        let mut rng = StdRng::seed_from_u64(3);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.extend(s.next_batch(&mut rng).unwrap().1);
        }
        seen.sort();
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
    }
}
