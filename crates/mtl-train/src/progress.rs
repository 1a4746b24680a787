//! What a person watching sees: an `indicatif` bar on stderr (step, loss per
//! task, tokens/s, ETA) when stderr is a terminal, and one line per
//! evaluation. `--quiet` silences both; the log file is written either way.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Smoothing of the per-task losses shown on the bar.
const EMA: f32 = 0.9;

pub struct Progress {
    bar: ProgressBar,
    quiet: bool,
    smoothed: BTreeMap<String, f32>,
}

impl Progress {
    /// A bar over `total` steps, `done` of them already taken (resume).
    pub fn new(total: usize, done: usize, quiet: bool) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::default_bar()
                .template("  {bar:30} {pos}/{len} steps  ETA {eta}  {msg}")
            {
                bar.set_style(style);
            }
            bar
        };
        bar.set_position(done as u64);
        bar.reset_eta();
        Self {
            bar,
            quiet,
            smoothed: BTreeMap::new(),
        }
    }

    /// After a step with these unweighted task losses.
    pub fn step(&mut self, losses: &BTreeMap<String, f32>, tokens_per_second: f64) {
        for (task, &l) in losses {
            self.smoothed
                .entry(task.clone())
                .and_modify(|s| *s = EMA * *s + (1.0 - EMA) * l)
                .or_insert(l);
        }
        self.bar.inc(1);
        if !self.bar.is_hidden() {
            let losses: Vec<String> = self
                .smoothed
                .iter()
                .map(|(t, l)| format!("{t} {l:.3}"))
                .collect();
            self.bar.set_message(format!(
                "loss {}  {tokens_per_second:.0} tok/s",
                losses.join(" ")
            ));
        }
    }

    /// A line above the bar (or on stderr without one).
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
