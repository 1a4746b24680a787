use clap::Parser;
use mtl_core::{Stage, StageArgs};

/// Split & label: train/dev/test assignment, label vocabularies, task fusion,
/// leakage and feature ranking.
#[derive(Parser)]
#[command(name = "mtl-split", version)]
struct Cli {
    #[command(flatten)]
    args: StageArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = cli.args.load_config()?;
    let input = cli.args.input_dir(&cfg, Stage::Clean);
    let out = cli.args.out_dir(&cfg, Stage::Split);
    let outcome = mtl_split::run(&cfg, &input, &out, cli.args.force)?;
    println!("{}", outcome.summary());
    let report = mtl_split::read_report(&out)?;
    print!("{}", mtl_split::render_summary(&report));
    Ok(())
}
