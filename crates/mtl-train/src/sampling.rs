//! Multi-task batch sampling. Each step picks a task with probability
//! proportional to its number of training examples, then draws the next
//! batch from that task's shuffled pool. A row that carries several tasks
//! trains all of them in that batch.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::data::Example;

pub struct ProportionalSampler {
    tasks: Vec<String>,
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
        let pool = &mut self.pools[k];
        if self.cursors[k] >= pool.len() {
            pool.shuffle(rng);
            self.cursors[k] = 0;
        }
        let start = self.cursors[k];
        let end = (start + self.batch_size).min(pool.len());
        self.cursors[k] = end;
        Some((&self.tasks[k], pool[start..end].to_vec()))
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
