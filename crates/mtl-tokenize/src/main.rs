//! `mtl-tokenize`: runs the tokenize stage from the command line.

use anyhow::Context;
use clap::Parser;
use mtl_core::{Stage, StageArgs};

/// Fit (or load) a sub-word tokenizer on the split stage's train words and
/// encode train, dev and test into sub-token ids with aligned targets.
#[derive(Debug, Parser)]
#[command(name = "mtl-tokenize", version)]
struct Cli {
    #[command(flatten)]
    args: StageArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = cli.args.load_config()?;
    let input = cli.args.input_dir(&cfg, Stage::Split);
    let out = cli.args.out_dir(&cfg, Stage::Tokenize);
    let outcome = mtl_tokenize::run(&cfg, &input, &out, cli.args.force)
        .with_context(|| format!("tokenize: {} -> {}", input.display(), out.display()))?;
    println!("{}", outcome.summary());
    match mtl_tokenize::Report::read(&out) {
        Ok(report) => println!("{}", report.summary()),
        Err(e) => eprintln!("warning: cannot read the report: {e}"),
    }
    Ok(())
}
