//! Throughput: predictions per second of one or several bundles on the same
//! texts, each bundle on its own and all of them one after another.
//!
//! With one multi-task bundle this is "all tasks at once"; with the k
//! single-task bundles of the same tasks (`--model` repeated), the `total`
//! row is what serving every task with separate models costs, so the two
//! numbers compare directly. A prediction is everything [`Predictor::predict`]
//! does for a text: cleaning, tokenizing, side inputs, the model, and the
//! JSON record; loading the bundle is timed apart, once per bundle.

use std::path::{Path, PathBuf};
use std::time::Instant;

use mtl_model::Bundle;
use serde::Serialize;

use crate::error::Result;
use crate::{PredictOptions, Predictor};

/// One bundle's (or the total's) throughput.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// The bundle folder, or `total` for all of them one after another.
    pub model: String,
    /// Tasks the bundle predicts.
    pub tasks: usize,
    /// Texts predicted (the input's texts times the passes).
    pub rows: usize,
    pub load_seconds: f64,
    pub predict_seconds: f64,
}

impl Throughput {
    pub fn rows_per_second(&self) -> f64 {
        if self.predict_seconds > 0.0 {
            self.rows as f64 / self.predict_seconds
        } else {
            f64::INFINITY
        }
    }
}

/// Predicts `texts` `passes` times with each bundle in turn; one row per
/// bundle, then the total (the sum of the times, for the same texts). The
/// texts go to the model in chunks of `chunk`, as a file job does.
pub fn measure(
    models: &[PathBuf],
    texts: &[String],
    opts: &PredictOptions,
    passes: usize,
    chunk: usize,
) -> Result<Vec<Throughput>> {
    let passes = passes.max(1);
    let mut rows = Vec::with_capacity(models.len() + 1);
    for model in models {
        rows.push(measure_one(model, texts, opts, passes, chunk.max(1))?);
    }
    if !rows.is_empty() {
        let total = Throughput {
            model: "total".into(),
            tasks: rows.iter().map(|r| r.tasks).sum(),
            rows: texts.len() * passes,
            load_seconds: rows.iter().map(|r| r.load_seconds).sum(),
            predict_seconds: rows.iter().map(|r| r.predict_seconds).sum(),
        };
        rows.push(total);
    }
    Ok(rows)
}

fn measure_one(
    model: &Path,
    texts: &[String],
    opts: &PredictOptions,
    passes: usize,
    chunk: usize,
) -> Result<Throughput> {
    let started = Instant::now();
    let bundle = Bundle::load(model, &opts.device.open()?)?;
    let predictor = Predictor::new(&bundle, opts)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut n = 0;
    for _ in 0..passes {
        for c in texts.chunks(chunk) {
            n += predictor.predict(c)?.len();
        }
    }
    Ok(Throughput {
        model: model.display().to_string(),
        tasks: bundle.spec.tasks.len(),
        rows: n,
        load_seconds,
        predict_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The rows as an aligned table.
pub fn table(rows: &[Throughput]) -> String {
    let width = rows.iter().map(|r| r.model.len()).max().unwrap_or(5).max(5);
    let mut s = format!(
        "{:<width$}  {:>5}  {:>7}  {:>7}  {:>9}  {:>10}\n",
        "model", "tasks", "rows", "load_s", "predict_s", "rows/s"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<width$}  {:>5}  {:>7}  {:>7.3}  {:>9.3}  {:>10.1}\n",
            r.model,
            r.tasks,
            r.rows,
            r.load_seconds,
            r.predict_seconds,
            r.rows_per_second()
        ));
    }
    s
}
