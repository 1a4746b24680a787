use std::path::PathBuf;

use clap::Parser;
use mtl_predict::PredictOptions;

/// Predict every task for raw texts with a trained model bundle.
#[derive(Parser)]
#[command(name = "mtl-predict", version, after_help = OUTPUT_HELP)]
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

const OUTPUT_HELP: &str = "\
Output: one JSON object per input text with `text`, the cleaned `words`, and per task:
  classification  {\"label\": \"pos\", \"prob\": 0.93}
  tagging         {\"tags\": [...], \"probs\": [...]}  one per word, null where truncated
  spans           as tagging, plus \"spans\": [{\"label\", \"start_word\", \"end_word\", \"text\"}]
  multilabel      {\"labels\": [\"sports\"], \"probs\": {\"sports\": 0.8, \"tech\": 0.3}}
                  labels: every label with probability >= 0.5 (possibly none)
  regression      the predicted number, e.g. 3.71";

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
