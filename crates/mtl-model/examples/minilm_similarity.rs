//! A sanity check of the `bert` encoder on a real checkpoint: loads
//! sentence-transformers' all-MiniLM-L6-v2 (fetch it with `cargo xtask
//! fetch-model minilm`), mean-pools the encoder's output over real tokens
//! (as sentence-transformers does) and prints the cosine similarity of
//! every pair of sentences: related sentences should score clearly higher
//! than unrelated ones. Not a test (it needs the downloaded model); run it
//! by hand:
//!
//! ```text
//! cargo run --release -p mtl-model --example minilm_similarity [-- MODEL_DIR]
//! ```

use std::path::PathBuf;

use candle_core::{D, Device, Tensor};
use mtl_core::config::{EncoderKind, ModelConfig};
use mtl_model::{Batch, EncoderSpec, ModelSpec, MultiTaskModel};

/// The sentences and their ids from the model's own `tokenizer.json`
/// (uncased WordPiece, `[CLS]` … `[SEP]`).
const SENTENCES: [(&str, &[u32]); 5] = [
    (
        "A man is eating food.",
        &[101, 1037, 2158, 2003, 5983, 2833, 1012, 102],
    ),
    (
        "A man is eating a piece of bread.",
        &[
            101, 1037, 2158, 2003, 5983, 1037, 3538, 1997, 7852, 1012, 102,
        ],
    ),
    (
        "The girl is carrying a baby.",
        &[101, 1996, 2611, 2003, 4755, 1037, 3336, 1012, 102],
    ),
    (
        "A man is riding a horse.",
        &[101, 1037, 2158, 2003, 5559, 1037, 3586, 1012, 102],
    ),
    (
        "A woman is playing violin.",
        &[101, 1037, 2450, 2003, 2652, 6710, 1012, 102],
    ),
];

fn main() -> mtl_model::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/all-MiniLM-L6-v2")
        });
    let d = Device::Cpu;
    let cfg = ModelConfig {
        encoder: EncoderKind::Bert,
        dropout: 0.0,
        ..Default::default()
    };
    let spec = ModelSpec {
        encoder: EncoderSpec::from_pretrained(&cfg, &dir)?,
        tasks: vec![],
    };
    let (model, _) = MultiTaskModel::with_pretrained(&spec, 0, &d, &dir)?;
    let rows: Vec<&[u32]> = SENTENCES.iter().map(|s| s.1).collect();
    let batch = Batch::pad(&rows, &d)?;
    let hidden = model.encode(&batch, None)?;
    // Mean over real tokens, then unit length.
    let mask = batch.mask.unsqueeze(2)?;
    let pooled = hidden
        .broadcast_mul(&mask)?
        .sum(1)?
        .broadcast_div(&mask.sum(1)?)?;
    let unit = pooled.broadcast_div(&pooled.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)?;
    let first: Vec<f32> = pooled.get(0)?.narrow(0, 0, 8)?.to_vec1()?;
    println!("mean-pooled embedding of sentence 0, first 8 values: {first:?}");
    let cos: Vec<Vec<f32>> = unit.matmul(&unit.t()?)?.to_vec2()?;
    for (i, (s, _)) in SENTENCES.iter().enumerate() {
        let row: Vec<String> = cos[i].iter().map(|c| format!("{c:6.3}")).collect();
        println!("{}  {s}", row.join(" "));
    }
    // The same sentence alone gives the same embedding as in the padded
    // batch.
    let alone = model.encode(&Batch::pad(&rows[2..3], &d)?, None)?;
    let alone: Tensor = alone.mean(1)?.get(0)?;
    let diff = alone
        .sub(&pooled.get(2)?)?
        .abs()?
        .max(0)?
        .to_scalar::<f32>()?;
    println!("largest difference, sentence 2 alone vs padded in the batch: {diff:e}");
    Ok(())
}
