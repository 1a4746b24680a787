use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, error::ErrorKind};
use mtl_predict::batch::{self, DirOptions, EXIT_DONE, EXIT_FAILED};
use mtl_predict::{Format, InputOptions, OutputFormat, PredictOptions, Segment};

/// Predict every task for raw texts with a trained model bundle.
///
/// Three modes: one file (--input FILE --output FILE), a folder of files
/// predicted incrementally for scheduled jobs (--input-dir DIR --output-dir
/// DIR), and a throughput measurement (--bench --input FILE, --model once
/// or several times).
#[derive(Parser)]
#[command(name = "mtl-predict", version, after_help = AFTER_HELP)]
struct Cli {
    /// Model bundle folder (e.g. runs/sample/train/model). Repeat it with
    /// --bench to measure several bundles one after another.
    #[arg(long, required = true, value_name = "DIR")]
    model: Vec<PathBuf>,
    /// Input file: text lines (.txt, .lines), JSONL (.jsonl), CSV (.csv),
    /// TSV (.tsv) or Parquet (.parquet).
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Output file, written atomically: JSONL, one record per input row, or
    /// CoNLL-U (see --output-format).
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// What the output holds: `jsonl`, or `conllu` (one sentence block per
    /// input row, for treebank models) [default: `conllu` for an --output
    /// ending in .conllu or .conll, else `jsonl`; batch mode: `jsonl`].
    #[arg(long, value_enum, value_name = "FORMAT")]
    output_format: Option<OutputFormat>,
    /// How raw text is cut into words: `ud` (UD English / Penn Treebank:
    /// punctuation and clitics split off, `don't` is `do n't`),
    /// `whitespace`, or `auto`: `ud` when the bundle was trained on a
    /// treebank (it has a dependency task, or a tagging task with UPOS or
    /// Penn Treebank tags), else `whitespace`.
    #[arg(long, value_enum, default_value_t = Segment::Auto, value_name = "HOW")]
    segment: Segment,
    /// The input is pre-tokenized: its words are separated by whitespace,
    /// one sentence per row (the same as --segment whitespace).
    #[arg(long, conflicts_with = "segment")]
    pretokenized: bool,
    /// Batch mode: predict every input file of this folder not yet predicted.
    #[arg(long, value_name = "DIR", requires = "output_dir")]
    input_dir: Option<PathBuf>,
    /// Batch mode: where `<file name>.jsonl` (or `.conllu`) and
    /// `<file name>.meta.json` go.
    #[arg(long, value_name = "DIR", requires = "input_dir")]
    output_dir: Option<PathBuf>,
    /// Batch mode: predict every file again, even those already predicted.
    #[arg(long)]
    force: bool,
    /// Input format, instead of guessing it from the extension.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Field (JSONL) or column (CSV, TSV, Parquet) holding the text.
    #[arg(long, default_value = "text", alias = "text-field")]
    text_column: String,
    /// Field or column holding each row's id, copied to its record
    /// [default: the line number].
    #[arg(long)]
    id_column: Option<String>,
    /// Fail on the first bad row instead of writing an error record for it.
    #[arg(long)]
    strict: bool,
    /// Training dataset whose cleaning to replay, if the model has several.
    #[arg(long)]
    dataset: Option<String>,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Measure predictions per second of each --model on --input, and of
    /// all of them one after another; writes no predictions.
    #[arg(long)]
    bench: bool,
    /// With --bench: how many times to predict the input.
    #[arg(long, default_value_t = 3)]
    passes: usize,
    /// Where to run the model: `cpu`, `cuda` or `cuda:N` (CUDA needs a
    /// build with `--features cuda`) [default: $MTL_DEVICE, else cpu].
    #[arg(long, value_name = "DEVICE")]
    device: Option<String>,
}

const AFTER_HELP: &str = "\
Output: one JSON object per input row with `id` (the --id-column value, else the line
number), `line`, `text`, the cleaned `words`, and per task:
  classification  {\"label\": \"pos\", \"prob\": 0.93}
  tagging         {\"tags\": [...], \"probs\": [...]}  one per word, null where truncated
  spans           as tagging, plus \"spans\": [{\"label\", \"start\", \"end\", \"start_word\",
                  \"end_word\", \"text\"}]; start/end are character (Unicode scalar) offsets
                  into the original text, end exclusive; *_word index `words`
  multilabel      {\"labels\": [\"sports\"], \"probs\": {\"sports\": 0.8, \"tech\": 0.3}}
                  labels: every label with probability >= its threshold (possibly
                  none): tuned on dev by mtl-train (thresholds.json), else 0.5
  regression      the predicted number, e.g. 3.71
  dependency      {\"heads\": [2, 0, ...], \"deprels\": [\"nsubj\", \"root\", ...], \"probs\": [...]}
                  per word its head's word number (0 = the root) and relation
A row that cannot be used (invalid JSON, no text) becomes {\"id\", \"line\", \"error\"}
(with --strict: the run fails naming the file and line).

CoNLL-U output (--output-format conllu): per input row `# sent_id` (with --id-column),
`# text`, then one line per word: ID, FORM (as written), LEMMA _, UPOS, XPOS and FEATS
from the tagging tasks named upos, xpos and ufeats (or feats), HEAD and DEPREL from a
dependency task, DEPS _, MISC SpaceAfter=No where the next word follows without a space;
`_` where no task predicts a column. A contraction is a multiword token (`2-3 don't`,
then `2 do`, `3 n't`). Rows that cannot be used, and texts without words, are left out.

Batch mode skips a file whose output exists and whose meta records the same input
SHA-256, model fingerprint and settings. The folder is locked by
OUT/.mtl-predict.lock (the pid); a lock whose process is gone is taken over.

Exit codes:
  0  done: predictions written (batch: at least one file predicted, none failed)
  1  failed: an error, or in batch mode at least one file failed
  2  usage error
  3  nothing to do (batch mode: every file already predicted)";

fn usage(message: &str) -> ! {
    Cli::command()
        .error(ErrorKind::ArgumentConflict, message)
        .exit()
}

fn main() -> ExitCode {
    mtl_model::malloc::keep_freed_memory();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("mtl-predict: error: {e:#}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    let opts = PredictOptions {
        dataset: cli.dataset.as_deref(),
        batch_size: cli.batch_size,
        // A bad value is a usage error (exit 2), like any other flag.
        device: mtl_model::DeviceSpec::from_flag_or_env(cli.device.as_deref())
            .unwrap_or_else(|e| usage(&e.to_string())),
        segment: if cli.pretokenized {
            Segment::Whitespace
        } else {
            cli.segment
        },
    };
    let input_opts = InputOptions {
        format: cli.format,
        text_column: cli.text_column.clone(),
        id_column: cli.id_column.clone(),
        strict: cli.strict,
    };
    if cli.bench {
        let Some(input) = &cli.input else {
            usage("--bench needs --input FILE");
        };
        let records = mtl_predict::input::read(input, &input_opts)?;
        let texts: Vec<String> = records.into_iter().filter_map(|r| r.text.ok()).collect();
        let rows = mtl_predict::bench::measure(&cli.model, &texts, &opts, cli.passes, 1024)?;
        println!(
            "{} texts from {}, {} passes, batch size {}",
            texts.len(),
            input.display(),
            cli.passes.max(1),
            cli.batch_size
        );
        print!("{}", mtl_predict::bench::table(&rows));
        return Ok(EXIT_DONE);
    }
    let [model] = cli.model.as_slice() else {
        usage("give one --model (several only with --bench)");
    };
    match (&cli.input, &cli.output, &cli.input_dir, &cli.output_dir) {
        (Some(input), Some(output), None, None) => {
            let format = cli
                .output_format
                .unwrap_or_else(|| OutputFormat::from_path(output));
            let s = mtl_predict::run(model, input, output, &input_opts, &opts, format)?;
            let errors = match format {
                OutputFormat::Jsonl => format!("{} error records", s.errors),
                OutputFormat::Conllu => format!(
                    "{} unusable and {} without words left out",
                    s.errors, s.empty
                ),
            };
            println!(
                "predicted {} rows ({errors}) -> {} in {:.2}s; words: {}",
                s.predicted,
                output.display(),
                s.seconds,
                s.segmentation
            );
            Ok(EXIT_DONE)
        }
        (None, None, Some(input_dir), Some(output_dir)) => {
            let report = batch::run_dir(&DirOptions {
                model,
                input_dir,
                output_dir,
                input: input_opts,
                predict: opts,
                format: cli.output_format.unwrap_or_default(),
                force: cli.force,
            })?;
            for w in &report.warnings {
                eprintln!("mtl-predict: warning: {w}");
            }
            for (name, s) in &report.predicted {
                println!(
                    "predicted {name}: {} rows ({} error records) in {:.2}s",
                    s.predicted, s.errors, s.seconds
                );
            }
            for name in &report.skipped {
                println!("skipped {name}: already predicted with this model");
            }
            for name in &report.ignored {
                println!("ignored {name}: not an input format (use --format to read it)");
            }
            for (name, why) in &report.failed {
                eprintln!("mtl-predict: failed {name}: {why}");
            }
            let code = report.exit_code();
            println!(
                "{} predicted, {} skipped, {} failed -> {} (exit {code})",
                report.predicted.len(),
                report.skipped.len(),
                report.failed.len(),
                output_dir.display()
            );
            Ok(code)
        }
        _ => usage(
            "give --input FILE and --output FILE, or --input-dir DIR and --output-dir DIR, \
             or --bench with --input FILE",
        ),
    }
}
