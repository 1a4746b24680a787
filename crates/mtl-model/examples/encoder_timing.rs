//! Forward + backward time per batch of 32 rows x 30 sub-tokens for each
//! encoder, at the config's default sizes. Not a test (timings depend on the
//! machine); run it by hand:
//!
//! ```text
//! cargo run --release -p mtl-model --example encoder_timing
//! ```

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::Device;
use mtl_core::TaskKind;
use mtl_core::config::{EncoderKind, ModelConfig};
use mtl_model::{Batch, EncoderSpec, HeadSpec, LossWeights, ModelSpec, MultiTaskModel, Targets};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ROWS: usize = 32;
const LEN: usize = 30;
const VOCAB: usize = 8000;
const RUNS: usize = 15;

fn main() -> mtl_model::Result<()> {
    let d = Device::Cpu;
    let mut rng = StdRng::seed_from_u64(1);
    let rows: Vec<Vec<u32>> = (0..ROWS)
        .map(|_| {
            (0..LEN)
                .map(|_| rng.random_range(0..VOCAB as u32))
                .collect()
        })
        .collect();
    let ids: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
    let batch = Batch::pad(&ids, &d)?;
    let tags: Vec<Vec<i32>> = rows
        .iter()
        .map(|r| r.iter().map(|&t| (t % 5) as i32).collect())
        .collect();
    let tag_rows: Vec<Option<&[i32]>> = tags.iter().map(|t| Some(t.as_slice())).collect();
    let targets = BTreeMap::from([
        (
            "sent".to_string(),
            Targets::Sentence((0..ROWS as i32).map(|i| i % 3).collect()),
        ),
        (
            "tags".to_string(),
            Targets::Token(batch.token_targets(&tag_rows)),
        ),
    ]);
    println!("forward + backward, batch {ROWS} x {LEN}, median of {RUNS} runs after 2 warm-up");
    for kind in [
        EncoderKind::Bilstm,
        EncoderKind::Bigru,
        EncoderKind::Transformer,
    ] {
        for layers in [1, 2] {
            let cfg = ModelConfig {
                encoder: kind,
                layers,
                ..Default::default()
            };
            let spec = ModelSpec {
                encoder: EncoderSpec::from_config(&cfg, VOCAB, 128),
                tasks: vec![
                    HeadSpec::new("sent", TaskKind::Classification, 3),
                    HeadSpec::new("tags", TaskKind::Tagging, 5),
                ],
            };
            let (model, _) = MultiTaskModel::new(&spec, 1, &d)?;
            let mut drop_rng = StdRng::seed_from_u64(2);
            let mut step = || -> mtl_model::Result<()> {
                let weights = LossWeights::default();
                if let Some((loss, _)) =
                    model.loss(&batch, &targets, &weights, Some(&mut drop_rng))?
                {
                    loss.backward()?;
                }
                Ok(())
            };
            for _ in 0..2 {
                step()?;
            }
            // The median resists other processes stealing the CPU.
            let mut times = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                let start = Instant::now();
                step()?;
                times.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            times.sort_by(f64::total_cmp);
            let ms = times[RUNS / 2];
            println!(
                "{:<12} layers {layers}  hidden {}  {ms:8.1} ms",
                spec.encoder.kind, spec.encoder.hidden_dim
            );
        }
    }
    Ok(())
}
