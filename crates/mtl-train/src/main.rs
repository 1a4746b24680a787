use clap::Parser;
use mtl_core::{Stage, StageArgs};

/// Train: one shared encoder, one head per task, on the tokenized data.
#[derive(Parser)]
#[command(name = "mtl-train", version)]
struct Cli {
    #[command(flatten)]
    args: StageArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = cli.args.load_config()?;
    let input = cli.args.input_dir(&cfg, Stage::Tokenize);
    let out = cli.args.out_dir(&cfg, Stage::Train);
    let outcome = mtl_train::run(&cfg, &input, &out, cli.args.force)?;
    println!("{}", outcome.summary());
    Ok(())
}
