//! `mtl-clean`: runs the clean stage of a pipeline config.

use anyhow::Context;
use clap::Parser;
use mtl_core::{Stage, StageArgs};

/// Cleans every dataset of a pipeline config: reads the raw files, cleans
/// and validates each row, drops duplicates, and writes
/// `clean/<dataset>.parquet`, `clean/quarantine.parquet` and
/// `clean/report.json`.
#[derive(Debug, Parser)]
#[command(name = "mtl-clean", version)]
struct Cli {
    #[command(flatten)]
    args: StageArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = cli.args.load_config()?;
    let out = cli.args.out_dir(&cfg, Stage::Clean);
    let outcome = mtl_clean::run(&cfg, &out, cli.args.force)
        .with_context(|| format!("clean stage failed ({})", cli.args.config.display()))?;
    println!("{}", outcome.summary());
    let report = mtl_clean::Report::read(&out)?;
    for (name, ds) in &report.datasets {
        println!("  {name}: {}", ds.summary());
    }
    Ok(())
}
