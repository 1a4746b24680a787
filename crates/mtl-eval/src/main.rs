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
    /// Single-task scores to show beside the multi-task ones in report.html
    /// (schema: `mtl_eval::baselines`) [default: runs/<pipeline>/baselines.json, if present].
    #[arg(long, value_name = "FILE")]
    baselines: Option<PathBuf>,
    /// Where to run the model: `cpu`, `cuda` or `cuda:N` (CUDA needs a
    /// build with `--features cuda`) [default: $MTL_DEVICE, else cpu].
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
}

fn main() -> anyhow::Result<()> {
    mtl_model::malloc::keep_freed_memory();
    let cli = Cli::parse();
    let device = mtl_model::DeviceSpec::from_flag_or_env(cli.device.as_deref())?;
    let cfg = cli.args.load_config()?;
    let input = cli.args.input_dir(&cfg, Stage::Tokenize);
    let train = cli
        .model
        .clone()
        .unwrap_or_else(|| cfg.run_dir().join(Stage::Train.name()));
    let out = cli.args.out_dir(&cfg, Stage::Eval);
    let baselines = cli
        .baselines
        .clone()
        .unwrap_or_else(|| mtl_eval::default_baselines_path(&out));
    if cli.baselines.is_some() && !baselines.is_file() {
        anyhow::bail!("{}: no such baselines file", baselines.display());
    }
    let outcome = mtl_eval::run_on_device(
        &cfg,
        &input,
        &train,
        &out,
        cli.args.force,
        &baselines,
        device,
    )?;
    println!("{}", outcome.summary());
    let metrics = mtl_eval::Metrics::read(&out)
        .with_context(|| format!("reading the metrics in {}", out.display()))?;
    print!("{}", mtl_eval::render_table(&metrics));
    println!(
        "report: {} and {}",
        out.join(mtl_eval::REPORT_MD).display(),
        out.join(mtl_eval::REPORT_HTML).display()
    );
    Ok(())
}
