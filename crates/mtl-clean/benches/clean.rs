//! Criterion micro-benchmark of the clean stage library: `mtl_clean::run`
//! on `data/sample/reviews.jsonl` with the sample pipeline's dataset and
//! tasks, reported in rows (lines read) per second.
//!
//! Run with `cargo bench -p mtl-clean` or `cargo xtask bench clean
//! --criterion`. The big-file comparison with pandas (wall time, MB/s,
//! peak RSS) is `cargo xtask bench clean`.

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mtl_core::PipelineConfig;

/// The sample pipeline's dataset and tasks, reading the sample by its
/// absolute path so the config can live in a temporary folder.
fn config(dir: &Path, sample: &Path) -> PipelineConfig {
    let text = format!(
        r#"
[pipeline]
name = "bench"

[[datasets]]
name = "reviews"
format = "jsonl"
files = {{ all = "{sample}" }}
id = "id"

[datasets.clean]
mask_urls = true

[[tasks]]
name = "sentiment"
dataset = "reviews"
column = "sentiment"
type = "classification"

[[tasks]]
name = "topic"
dataset = "reviews"
column = "topic"
type = "classification"

[[tasks]]
name = "entities"
dataset = "reviews"
column = "ner"
type = "spans"
"#,
        sample = sample.display()
    );
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).expect("writing the bench config");
    PipelineConfig::load(&path, None).expect("loading the bench config")
}

fn sample_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/sample/reviews.jsonl")
}

fn clean_sample(c: &mut Criterion) {
    let sample = sample_path();
    let rows = std::fs::read_to_string(&sample)
        .expect("reading the sample")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count() as u64;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let cfg = config(dir.path(), &sample);
    let out = dir.path().join("clean");

    let mut group = c.benchmark_group("clean");
    group.throughput(Throughput::Elements(rows));
    group.sample_size(20);
    group.bench_function("sample_reviews", |b| {
        // `force`: every iteration does the work instead of finding its
        // own output current.
        b.iter(|| mtl_clean::run(&cfg, &out, true).expect("cleaning the sample"))
    });
    group.finish();
}

criterion_group!(benches, clean_sample);
criterion_main!(benches);
