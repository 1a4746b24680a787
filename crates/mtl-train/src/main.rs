use clap::Parser;
use mtl_core::{Stage, StageArgs};

/// Train: one shared encoder, one head per task, on the tokenized data.
#[derive(Parser)]
#[command(name = "mtl-train", version)]
struct Cli {
    #[command(flatten)]
    args: StageArgs,
    /// Continue an interrupted run from its checkpoint (`<out>.checkpoint/`,
    /// written at each evaluation); without one, start afresh.
    #[arg(long)]
    resume: bool,
    /// No progress bar and no per-evaluation lines on stderr.
    #[arg(long, short)]
    quiet: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cfg = cli.args.load_config()?;
    if let Some(n) = cfg.train.threads
        && std::env::var_os("RAYON_NUM_THREADS").is_none()
    {
        // candle sizes its CPU thread pools from this variable when it first
        // runs a kernel.
        // SAFETY: no other thread exists yet to read the environment.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
    let input = cli.args.input_dir(&cfg, Stage::Tokenize);
    let out = cli.args.out_dir(&cfg, Stage::Train);
    let outcome = mtl_train::run_with(
        &cfg,
        &input,
        &out,
        mtl_train::RunOptions {
            force: cli.args.force,
            resume: cli.resume,
            quiet: cli.quiet,
        },
    )?;
    println!("{}", outcome.summary());
    Ok(())
}
