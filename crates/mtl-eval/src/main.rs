use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use mtl_core::{Stage, StageArgs};

/// Eval: scores the trained model on the tokenized dev/test splits, with a
/// majority baseline for every task.
#[derive(Parser)]
#[command(name = "mtl-eval", version)]
struct Cli {
    #[command(flatten)]
    args: StageArgs,
    /// Train stage output folder holding `model/` [default: runs/<pipeline>/train].
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = cli.args.load_config()?;
    let input = cli.args.input_dir(&cfg, Stage::Tokenize);
    let train = cli
        .model
        .clone()
        .unwrap_or_else(|| cfg.run_dir().join(Stage::Train.name()));
    let out = cli.args.out_dir(&cfg, Stage::Eval);
    let outcome = mtl_eval::run(&cfg, &input, &train, &out, cli.args.force)?;
    println!("{}", outcome.summary());
    let metrics = mtl_eval::Metrics::read(&out)
        .with_context(|| format!("reading the metrics in {}", out.display()))?;
    print!("{}", mtl_eval::render_table(&metrics));
    println!("report: {}", out.join(mtl_eval::REPORT_MD).display());
    Ok(())
}
