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
    /// Where to train: `cpu`, `cuda` or `cuda:N` (CUDA needs a build with
    /// `--features cuda`) [default: $MTL_DEVICE, else cpu].
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
}

fn main() -> anyhow::Result<()> {
    mtl_model::malloc::keep_freed_memory();
    let cli = Cli::parse();
    let device = mtl_model::DeviceSpec::from_flag_or_env(cli.device.as_deref())?;
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
            device,
        },
    )?;
    println!("{}", outcome.summary());
    Ok(())
}
