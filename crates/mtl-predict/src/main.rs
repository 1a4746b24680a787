use std::path::PathBuf;

use clap::Parser;
use mtl_predict::PredictOptions;

/// Predict every task for raw texts with a trained model bundle.
#[derive(Parser)]
#[command(name = "mtl-predict", version)]
struct Cli {
    /// Model bundle folder (e.g. runs/sample/train/model).
    #[arg(long)]
    model: PathBuf,
    /// Texts: `.jsonl` (objects with a text field) or plain text, one per line.
    #[arg(long)]
    input: PathBuf,
    /// Output JSONL, one object per input text.
    #[arg(long)]
    output: PathBuf,
    /// Field holding the text in JSONL input.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// Training dataset whose cleaning to replay, if the model has several.
    #[arg(long)]
    dataset: Option<String>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let opts = PredictOptions {
        dataset: cli.dataset.as_deref(),
        batch_size: cli.batch_size,
    };
    let n = mtl_predict::run(&cli.model, &cli.input, &cli.output, &cli.text_field, &opts)?;
    println!("predicted {n} texts -> {}", cli.output.display());
    Ok(())
}
