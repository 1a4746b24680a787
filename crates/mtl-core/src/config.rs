//! The pipeline config: one TOML file describes datasets, tasks and every
//! stage's settings. Stages read only their own section; the fingerprint of a
//! stage covers exactly the sections it reads (see [`crate::Stage`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use crate::task::{SpanScheme, TaskKind};

/// Environment variable naming the shared data directory (`$DATA_DIR` in paths).
pub const DATA_DIR_ENV: &str = "MTL_DATA_DIR";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub pipeline: PipelineSection,
    #[serde(default)]
    pub datasets: Vec<DatasetConfig>,
    #[serde(default)]
    pub tasks: Vec<TaskConfig>,
    #[serde(default)]
    pub split: SplitConfig,
    #[serde(default)]
    pub features: FeaturesConfig,
    #[serde(default)]
    pub tokenize: TokenizeConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    /// Where the config came from; used to resolve relative paths.
    #[serde(skip)]
    pub source: ConfigSource,
}

#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The config file itself.
    pub path: PathBuf,
    /// `--data-dir` or `$MTL_DATA_DIR`, substituted for `$DATA_DIR` in paths.
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    pub name: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Root of all run artifacts; relative paths are taken from the current
    /// directory, as a scheduler would expect.
    #[serde(default = "default_runs_dir")]
    pub runs_dir: PathBuf,
}

fn default_seed() -> u64 {
    13
}
fn default_runs_dir() -> PathBuf {
    PathBuf::from("runs")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    Jsonl,
    Csv,
    Tsv,
    Parquet,
    Conllu,
    Conll,
    Lines,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitFiles {
    /// One file holding every example; the split stage assigns splits.
    pub all: Option<String>,
    pub train: Option<String>,
    pub dev: Option<String>,
    pub test: Option<String>,
}

impl SplitFiles {
    /// `(split name, raw path)` pairs, `all` first. The split name is `None`
    /// for `all`.
    pub fn entries(&self) -> Vec<(Option<&'static str>, &str)> {
        let mut out = Vec::new();
        if let Some(p) = &self.all {
            out.push((None, p.as_str()));
        }
        for (name, p) in [
            ("train", &self.train),
            ("dev", &self.dev),
            ("test", &self.test),
        ] {
            if let Some(p) = p {
                out.push((Some(name), p.as_str()));
            }
        }
        out
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    pub name: String,
    pub format: DatasetFormat,
    pub files: SplitFiles,
    /// Column holding the raw text.
    #[serde(default = "default_text_column")]
    pub text: String,
    /// Column holding a stable example key. Without it the key is
    /// `dataset:file:line`, stable as long as the file is append-only.
    pub id: Option<String>,
    /// Column holding a document or group id for group-aware splitting.
    pub group: Option<String>,
    /// Field separator for `csv` (default `,`), `tsv` (default tab) and
    /// `conll` (default: any run of spaces or tabs). One character.
    pub delimiter: Option<String>,
    /// Quote character for `csv`/`tsv` (default `"`). One character.
    pub quote: Option<String>,
    /// Whether the first `csv`/`tsv` line names the columns (default true).
    #[serde(default = "yes")]
    pub header: bool,
    /// Column names: required for `conll` (e.g. `["word", "pos", "ner"]`),
    /// and for `csv`/`tsv` files without a header.
    #[serde(default)]
    pub columns: Vec<String>,
    #[serde(default)]
    pub clean: CleanOptions,
}

fn yes() -> bool {
    true
}

fn default_text_column() -> String {
    "text".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    #[default]
    Nfc,
    Nfkc,
    None,
}

/// Per-dataset cleaning switches. Defaults are what a careful practitioner
/// would apply to web text without changing its meaning. Whitespace is always
/// collapsed: text is rebuilt from its words joined by one space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CleanOptions {
    pub normalize: Normalization,
    pub strip_html: bool,
    pub remove_control: bool,
    pub lowercase: bool,
    pub mask_urls: bool,
    pub mask_emails: bool,
    pub mask_users: bool,
    pub min_chars: usize,
    pub max_chars: Option<usize>,
    pub dedup: bool,
}

impl Default for CleanOptions {
    fn default() -> Self {
        Self {
            normalize: Normalization::Nfc,
            strip_html: true,
            remove_control: true,
            lowercase: false,
            mask_urls: false,
            mask_emails: false,
            mask_users: false,
            min_chars: 1,
            max_chars: None,
            dedup: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    pub name: String,
    pub dataset: String,
    pub column: String,
    #[serde(rename = "type")]
    pub kind: TaskKind,
    /// Tag scheme for `spans` tasks.
    #[serde(default)]
    pub scheme: SpanScheme,
    /// Loss weight of the task (static weighting).
    #[serde(default = "one")]
    pub weight: f64,
    /// Per-class loss weights for classification and token tasks.
    pub class_weights: Option<ClassWeights>,
    /// Overrides `split.unknown_labels` for this task.
    pub unknown_labels: Option<UnknownLabels>,
    /// For `multilabel` tasks whose column is a string: the separator
    /// between labels (a JSON list needs none).
    pub separator: Option<String>,
    /// Decode `spans` (or `tagging`) with a linear-chain CRF: forward
    /// algorithm loss, Viterbi decoding, and for spans transitions that
    /// only allow valid BIO/BIOES sequences.
    #[serde(default)]
    pub crf: bool,
    /// The headline metric eval reports (and train selects models on);
    /// default per kind: macro_f1 (classification), accuracy (tagging),
    /// entity_f1 (spans), micro_f1 (multilabel), pearson (regression).
    pub metric: Option<HeadlineMetric>,
}

/// A task's headline metric: a metric name eval knows (`"macro_f1"`,
/// `"macro_recall"`, `"accuracy"`, ...), or the mean F1 of some classes,
/// e.g. `{ f1_of = ["irony"] }` or `{ f1_of = ["against", "favor"] }`
/// (TweetEval's irony and stance).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum HeadlineMetric {
    Named(String),
    F1Of { f1_of: Vec<String> },
}

/// Per-class loss weights. Split resolves them into one weight per label id
/// (`TaskLabels::class_weights`) so that train only multiplies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ClassWeights {
    /// `"balanced"`: `n_train / (n_classes * count)`, as scikit-learn does.
    Preset(ClassWeightPreset),
    /// `{ label = weight, ... }`; labels left out weigh 1.
    Explicit(std::collections::BTreeMap<String, f64>),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeightPreset {
    Balanced,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "kebab-case", tag = "policy")]
pub enum UnknownLabels {
    /// Fail, naming the label, the file and the line.
    #[default]
    Error,
    /// Replace with a fallback label that must exist in the vocabulary.
    MapTo { label: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplitConfig {
    pub train: f64,
    pub dev: f64,
    pub test: f64,
    /// Classification task whose label stratifies hash-based splits.
    pub stratify: Option<String>,
    /// Labels seen fewer times than this in train are not in the vocabulary.
    pub min_label_count: usize,
    pub unknown_labels: UnknownLabels,
    /// Remove from dev and test the rows whose normalized text is also in
    /// train (they are always reported, removed or not).
    pub drop_leaked: bool,
    /// Fraction of a dataset's train rows that become its dev set when the
    /// dataset brings its own splits but no dev rows (a train file, often a
    /// test file, and no dev file), in (0, 0.5]; default 0.1. The rows are
    /// chosen by the same stable hashes that divide an `all` file: by group
    /// where a row has one (a group never straddles train and dev), ranked
    /// per label where the dataset carries the `stratify` task. The split
    /// report and summary say which datasets got a carved dev and how many
    /// rows. A dataset with its own dev rows, or without own splits, is
    /// untouched.
    pub dev_from_train: f64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            train: 0.8,
            dev: 0.1,
            test: 0.1,
            stratify: None,
            min_label_count: 1,
            unknown_labels: UnknownLabels::Error,
            drop_leaked: false,
            dev_from_train: 0.1,
        }
    }
}

/// Which clean-stage features reach sentence-level heads as side inputs.
/// With neither `select` nor `top_k`, no features are used. Split ranks
/// every feature by mutual information with each task's training labels
/// either way, and writes the choice to `split/features.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FeaturesConfig {
    /// Explicit feature names (see [`crate::artifact::FEATURES`]), the same
    /// for every sentence-level task.
    pub select: Vec<String>,
    /// The k features with the highest mutual information, per task.
    pub top_k: Option<usize>,
    /// Equal-frequency bins used to discretize a feature for mutual
    /// information.
    pub bins: usize,
}

impl Default for FeaturesConfig {
    fn default() -> Self {
        Self {
            select: Vec::new(),
            top_k: None,
            bins: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenizerKind {
    Wordpiece,
    Bpe,
    Unigram,
    /// Load `tokenizer.json` from `pretrained`.
    Pretrained,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenizeConfig {
    pub kind: TokenizerKind,
    /// Path of a `tokenizer.json` (or a folder holding one) for `pretrained`.
    pub pretrained: Option<String>,
    pub vocab_size: usize,
    pub min_frequency: u64,
    pub lowercase: bool,
    /// Sub-tokens per example, special tokens included.
    pub max_length: usize,
    /// Put word labels on every sub-token instead of the first one only.
    pub label_all_subtokens: bool,
    /// What happens to an example longer than `max_length` sub-tokens.
    pub truncation: Truncation,
    /// Words shared by consecutive windows with `truncation = "window"`.
    pub stride: usize,
    /// Pad every batch to exactly this many sub-tokens (deterministic
    /// shapes); without it a batch is padded to its longest row.
    pub pad_to: Option<usize>,
    /// Store character ids per word (`char_ids` column and
    /// `tokenize/chars.json`), for a character-level word encoder.
    pub char_ids: bool,
    /// Characters kept per word in `char_ids` (the rest are cut).
    pub max_word_chars: usize,
    /// Special tokens of a trained tokenizer (ids 0 to 3 in this order).
    pub special_tokens: SpecialTokens,
}

/// The special tokens a trained tokenizer reserves, as written in its
/// vocabulary. A pretrained tokenizer keeps its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpecialTokens {
    pub pad: String,
    pub unk: String,
    /// Starts every encoded example.
    pub cls: String,
    /// Ends every encoded example.
    pub sep: String,
}

impl Default for SpecialTokens {
    fn default() -> Self {
        Self {
            pad: "[PAD]".into(),
            unk: "[UNK]".into(),
            cls: "[CLS]".into(),
            sep: "[SEP]".into(),
        }
    }
}

impl SpecialTokens {
    /// In id order: pad, unk, cls, sep.
    pub fn all(&self) -> [&str; 4] {
        [&self.pad, &self.unk, &self.cls, &self.sep]
    }
}

/// Handling of examples longer than `tokenize.max_length`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Truncation {
    /// Keep the first `max_length` sub-tokens; the words after them are
    /// lost, and counted in the tokenize report.
    #[default]
    Cut,
    /// Split the words into overlapping windows that each fit, score every
    /// word in exactly one of them, and merge word predictions back into
    /// the example. Sentence-level labels ride on the first window only.
    Window,
}

impl Default for TokenizeConfig {
    fn default() -> Self {
        Self {
            kind: TokenizerKind::Wordpiece,
            pretrained: None,
            vocab_size: 4000,
            min_frequency: 2,
            lowercase: true,
            max_length: 128,
            label_all_subtokens: false,
            truncation: Truncation::Cut,
            stride: 8,
            pad_to: None,
            char_ids: false,
            max_word_chars: 16,
            special_tokens: SpecialTokens::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderKind {
    /// Bidirectional LSTM over sub-token embeddings.
    Bilstm,
    /// Bidirectional GRU over sub-token embeddings.
    Bigru,
    /// From-scratch pre-LN transformer encoder with learned positions.
    Transformer,
    /// A pretrained BERT-family encoder from `model.pretrained` (a folder
    /// with `config.json`, `model.safetensors` and `tokenizer.json`); the
    /// tokenize stage must load the same `tokenizer.json`. Its sizes come
    /// from `config.json`; `embedding_dim`, `hidden_dim`, `layers`, `heads`
    /// and `ff_dim` are ignored. Freeze it with
    /// `train.encoder_learning_rate = 0`.
    Bert,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub encoder: EncoderKind,
    pub embedding_dim: usize,
    /// Recurrent state per direction (bilstm, bigru) or model width
    /// (transformer; then `embedding_dim` is ignored).
    pub hidden_dim: usize,
    pub layers: usize,
    pub dropout: f64,
    /// Attention heads of the transformer; must divide `hidden_dim`.
    pub heads: usize,
    /// Feed-forward width of the transformer; default `4 * hidden_dim`.
    pub ff_dim: Option<usize>,
    /// Folder of the pretrained model for `encoder = "bert"`.
    pub pretrained: Option<String>,
    /// How sentence-level heads pool the encoder's positions.
    pub pooling: Pooling,
    /// Character-CNN word features, e.g.
    /// `char_cnn = { char_dim = 30, filters = 50, width = 3 }`; absent =
    /// off. Each word's characters (the tokenize stage's `char_ids`, so it
    /// needs `tokenize.char_ids = true`) are embedded, convolved and
    /// max-pooled into one vector, which every sub-token of the word gets
    /// (special tokens get zeros). bilstm and bigru concatenate it to the
    /// token embeddings; the transformer projects it to `hidden_dim` and
    /// adds it to them; not for `bert`, whose pretrained embeddings expect
    /// nothing else.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub char_cnn: Option<CharCnnConfig>,
}

/// `model.char_cnn`: sizes of the character CNN (each key optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CharCnnConfig {
    /// Width of the character embeddings.
    pub char_dim: usize,
    /// Convolution filters: the width of each word's vector.
    pub filters: usize,
    /// Characters each filter sees at once.
    pub width: usize,
}

impl Default for CharCnnConfig {
    fn default() -> Self {
        Self {
            char_dim: 30,
            filters: 50,
            width: 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Mean over the real (unpadded) positions.
    #[default]
    Mean,
    /// The first position (`[CLS]`).
    First,
    /// A learned attention over the real positions, one per head.
    Attention,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            encoder: EncoderKind::Bilstm,
            embedding_dim: 64,
            hidden_dim: 64,
            layers: 1,
            dropout: 0.1,
            heads: 4,
            ff_dim: None,
            pretrained: None,
            pooling: Pooling::Mean,
            char_cnn: None,
        }
    }
}

/// How the trainer picks the task of the next batch. With `n_t` training
/// examples for task `t`, the probability of `t` is proportional to:
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// `n_t`.
    #[default]
    Proportional,
    /// `n_t^(1/T)` with `T = train.temperature`.
    Temperature,
    /// 1: every task equally often (round-robin order).
    Uniform,
    /// `n_t^(1/T)` with `T` rising linearly from 1 (proportional) at the
    /// first epoch to `train.temperature` at the last.
    Annealed,
}

/// How per-task losses combine into one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    /// The tasks' `weight`s.
    #[default]
    Static,
    /// Learned homoscedastic uncertainty (Kendall et al. 2018).
    Uncertainty,
    /// Dynamic weight averaging (Liu et al. 2019).
    Dwa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// Linear warmup, then linear decay to zero.
    #[default]
    Linear,
    /// Linear warmup, then cosine decay to zero.
    Cosine,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    /// Stop after this many optimizer steps even if epochs remain.
    pub max_steps: Option<usize>,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub grad_clip: Option<f64>,
    pub sampling: Sampling,
    /// `T` of temperature and annealed sampling (and of DWA's softmax).
    pub temperature: f64,
    /// Most training examples a task contributes per epoch, by task name.
    pub task_caps: std::collections::BTreeMap<String, usize>,
    pub weighting: Weighting,
    /// Project conflicting task gradients (PCGrad, Yu et al. 2020). Costs
    /// one backward pass per task in each multi-task batch.
    pub pcgrad: bool,
    pub schedule: Schedule,
    /// Share of the steps spent warming up the learning rate.
    pub warmup: f64,
    /// Learning rate of the encoder (embeddings included); the heads use
    /// `learning_rate`. Default: `learning_rate` for both.
    pub encoder_learning_rate: Option<f64>,
    /// Evaluate on dev (and checkpoint) every this many steps; default
    /// once per epoch.
    pub eval_every: Option<usize>,
    /// Stop after this many evaluations without a better dev average of
    /// the tasks' headline scores.
    pub patience: Option<usize>,
    /// Most sub-tokens (padding included) in one batch; a batch that
    /// would exceed it is split.
    pub max_tokens: Option<usize>,
    /// CPU threads for the tensor kernels; `None` uses every core.
    pub threads: Option<usize>,
    /// After training, choose each multilabel label's decision threshold
    /// on dev (the one maximizing that label's F1) and store it in the
    /// bundle; off, every label uses 0.5.
    pub tune_thresholds: bool,
    /// Word dropout: the probability that a training sub-token is replaced
    /// by the unknown token (`tokenize.special_tokens.unk`) for one step,
    /// so that the model learns to label words it has no embedding for
    /// from their context and characters (Kiperwasser & Goldberg 2016,
    /// as in Stanza and UDPipe). Special tokens are never replaced; dev,
    /// test and predict see every token. 0 = off.
    pub word_dropout: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            max_steps: None,
            batch_size: 16,
            learning_rate: 3e-3,
            weight_decay: 0.01,
            grad_clip: Some(5.0),
            sampling: Sampling::Proportional,
            temperature: 2.0,
            task_caps: std::collections::BTreeMap::new(),
            weighting: Weighting::Static,
            pcgrad: false,
            schedule: Schedule::Linear,
            warmup: 0.1,
            encoder_learning_rate: None,
            eval_every: None,
            patience: None,
            max_tokens: None,
            threads: None,
            tune_thresholds: true,
            word_dropout: 0.0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Splits scored and reported.
    pub splits: Vec<String>,
    pub batch_size: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            splits: vec!["dev".into(), "test".into()],
            batch_size: 64,
        }
    }
}

impl PipelineConfig {
    /// Reads and validates a pipeline config. `data_dir` overrides
    /// `$MTL_DATA_DIR`.
    pub fn load(path: &Path, data_dir: Option<&Path>) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| CoreError::io(path, e))?;
        let mut cfg = Self::from_toml_str(&text, path)?;
        cfg.source.data_dir = data_dir
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(DATA_DIR_ENV).map(PathBuf::from));
        Ok(cfg)
    }

    /// Parses config text; `path` is only used in messages and to resolve
    /// relative paths.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Self> {
        let mut cfg: PipelineConfig =
            toml::from_str(text).map_err(|e| CoreError::ConfigSyntax {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        cfg.source.path = path.to_path_buf();
        cfg.validate()?;
        Ok(cfg)
    }

    fn bad(&self, key: impl Into<String>, message: impl Into<String>) -> CoreError {
        CoreError::ConfigValue {
            path: self.source.path.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn validate(&self) -> Result<()> {
        if !is_identifier(&self.pipeline.name, true) {
            return Err(self.bad(
                "pipeline.name",
                "use letters, digits, '_' and '-' only (it names the run folder)",
            ));
        }
        if self.datasets.is_empty() {
            return Err(self.bad("datasets", "at least one [[datasets]] entry is required"));
        }
        if self.tasks.is_empty() {
            return Err(self.bad("tasks", "at least one [[tasks]] entry is required"));
        }
        for (i, d) in self.datasets.iter().enumerate() {
            if !is_identifier(&d.name, true) {
                return Err(self.bad(
                    format!("datasets[{i}].name"),
                    "use letters, digits, '_' and '-'",
                ));
            }
            if self.datasets[..i].iter().any(|o| o.name == d.name) {
                return Err(self.bad(
                    format!("datasets[{i}].name"),
                    format!("duplicate dataset `{}`", d.name),
                ));
            }
            let f = &d.files;
            if f.all.is_none() && f.train.is_none() {
                return Err(self.bad(
                    format!("datasets[{i}].files"),
                    "give `all` (one file, split by mtl) or at least `train`",
                ));
            }
            if f.all.is_some() && (f.train.is_some() || f.dev.is_some() || f.test.is_some()) {
                return Err(self.bad(
                    format!("datasets[{i}].files"),
                    "give either `all` or per-split files, not both",
                ));
            }
        }
        for (i, t) in self.tasks.iter().enumerate() {
            if !is_identifier(&t.name, false) {
                return Err(self.bad(
                    format!("tasks[{i}].name"),
                    "use lowercase letters, digits and '_' (it names columns)",
                ));
            }
            if self.tasks[..i].iter().any(|o| o.name == t.name) {
                return Err(self.bad(
                    format!("tasks[{i}].name"),
                    format!("duplicate task `{}`", t.name),
                ));
            }
            if !self.datasets.iter().any(|d| d.name == t.dataset) {
                return Err(self.bad(
                    format!("tasks[{i}].dataset"),
                    format!("no dataset named `{}`", t.dataset),
                ));
            }
            if !(t.weight.is_finite() && t.weight > 0.0) {
                return Err(self.bad(format!("tasks[{i}].weight"), "must be a positive number"));
            }
            if t.class_weights.is_some()
                && matches!(
                    t.kind,
                    TaskKind::Regression | TaskKind::Multilabel | TaskKind::Dependency
                )
            {
                return Err(self.bad(
                    format!("tasks[{i}].class_weights"),
                    "only for classification, tagging and spans tasks",
                ));
            }
            if let Some(ClassWeights::Explicit(m)) = &t.class_weights
                && let Some((label, _)) = m.iter().find(|(_, w)| !(w.is_finite() && **w > 0.0))
            {
                return Err(self.bad(
                    format!("tasks[{i}].class_weights.{label}"),
                    "must be a positive number",
                ));
            }
            if t.separator.is_some() && t.kind != TaskKind::Multilabel {
                return Err(self.bad(format!("tasks[{i}].separator"), "only for multilabel tasks"));
            }
            if t.crf && !matches!(t.kind, TaskKind::Tagging | TaskKind::Spans) {
                return Err(self.bad(
                    format!("tasks[{i}].crf"),
                    "only for tagging and spans tasks",
                ));
            }
            if t.kind == TaskKind::Dependency {
                let format = self
                    .datasets
                    .iter()
                    .find(|d| d.name == t.dataset)
                    .map(|d| d.format);
                if format != Some(DatasetFormat::Conllu) {
                    return Err(self.bad(
                        format!("tasks[{i}].type"),
                        "a dependency task needs a `conllu` dataset: its heads are the HEAD column",
                    ));
                }
                // A tree whose words sit in different windows has arcs no
                // window can score, so parsing needs every sentence whole.
                if self.tokenize.truncation == Truncation::Window {
                    return Err(self.bad(
                        "tokenize.truncation",
                        format!(
                            "task `{}` parses sentences whole; use `cut` with a max_length \
                             that fits them (the tokenize report counts any cut words)",
                            t.name
                        ),
                    ));
                }
            }
            if t.separator.as_deref() == Some("") {
                return Err(self.bad(format!("tasks[{i}].separator"), "must not be empty"));
            }
        }
        for (i, d) in self.datasets.iter().enumerate() {
            for (key, v) in [("delimiter", &d.delimiter), ("quote", &d.quote)] {
                if let Some(v) = v
                    && v.chars().count() != 1
                {
                    return Err(self.bad(
                        format!("datasets[{i}].{key}"),
                        format!("must be one character, not `{v}`"),
                    ));
                }
            }
            if d.format == DatasetFormat::Conll && d.columns.is_empty() {
                return Err(self.bad(
                    format!("datasets[{i}].columns"),
                    "a conll dataset must name its columns, e.g. [\"word\", \"pos\", \"ner\"]",
                ));
            }
            if matches!(d.format, DatasetFormat::Csv | DatasetFormat::Tsv)
                && !d.header
                && d.columns.is_empty()
            {
                return Err(self.bad(
                    format!("datasets[{i}].columns"),
                    "a csv/tsv file without a header needs `columns`",
                ));
            }
        }
        let f = &self.features;
        if !f.select.is_empty() && f.top_k.is_some() {
            return Err(self.bad("features", "give either `select` or `top_k`, not both"));
        }
        for (i, name) in f.select.iter().enumerate() {
            if !crate::artifact::FEATURES.contains(&name.as_str()) {
                return Err(self.bad(
                    format!("features.select[{i}]"),
                    format!(
                        "unknown feature `{name}`; known: {}",
                        crate::artifact::FEATURES.join(", ")
                    ),
                ));
            }
        }
        if f.top_k == Some(0) || f.top_k.is_some_and(|k| k > crate::artifact::FEATURES.len()) {
            return Err(self.bad(
                "features.top_k",
                format!("must be in 1..={}", crate::artifact::FEATURES.len()),
            ));
        }
        if f.bins < 2 {
            return Err(self.bad("features.bins", "must be at least 2"));
        }
        let s = &self.split;
        for (key, v) in [
            ("split.train", s.train),
            ("split.dev", s.dev),
            ("split.test", s.test),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(self.bad(key, "must be a fraction in [0, 1]"));
            }
        }
        if (s.train + s.dev + s.test - 1.0).abs() > 1e-6 {
            return Err(self.bad("split", "train + dev + test must sum to 1"));
        }
        if !(s.dev_from_train > 0.0 && s.dev_from_train <= 0.5) {
            return Err(self.bad(
                "split.dev_from_train",
                format!("must be a fraction in (0, 0.5], not {}", s.dev_from_train),
            ));
        }
        if let Some(name) = &s.stratify {
            match self.task(name) {
                Some(t) if t.kind == TaskKind::Classification => {}
                Some(_) => {
                    return Err(self.bad("split.stratify", "must name a classification task"));
                }
                None => return Err(self.bad("split.stratify", format!("no task named `{name}`"))),
            }
        }
        let tk = &self.tokenize;
        if tk.kind == TokenizerKind::Pretrained && tk.pretrained.is_none() {
            return Err(self.bad("tokenize.pretrained", "required when kind = \"pretrained\""));
        }
        if tk.max_length < 4 {
            return Err(self.bad("tokenize.max_length", "must be at least 4"));
        }
        if let Some(p) = tk.pad_to
            && p < tk.max_length
        {
            return Err(self.bad(
                "tokenize.pad_to",
                format!("must be at least max_length ({})", tk.max_length),
            ));
        }
        if tk.truncation == Truncation::Window && tk.stride * 2 >= tk.max_length {
            return Err(self.bad(
                "tokenize.stride",
                "must be less than half of max_length, or windows would not advance",
            ));
        }
        let sp = tk.special_tokens.all();
        for (i, t) in sp.iter().enumerate() {
            if t.trim().is_empty() || t.chars().any(char::is_whitespace) {
                return Err(self.bad(
                    "tokenize.special_tokens",
                    format!("`{t}` must be non-empty and without spaces"),
                ));
            }
            if sp[..i].contains(t) {
                return Err(self.bad(
                    "tokenize.special_tokens",
                    format!("`{t}` is used twice; the four tokens must differ"),
                ));
            }
        }
        if tk.max_word_chars == 0 {
            return Err(self.bad("tokenize.max_word_chars", "must be at least 1"));
        }
        let m = &self.model;
        if m.embedding_dim == 0 || m.hidden_dim == 0 || !(1..=3).contains(&m.layers) {
            return Err(self.bad(
                "model",
                "embedding_dim and hidden_dim must be > 0, layers in 1..=3",
            ));
        }
        if !(0.0..1.0).contains(&m.dropout) {
            return Err(self.bad("model.dropout", "must be in [0, 1)"));
        }
        if m.encoder == EncoderKind::Transformer
            && (m.heads == 0 || !m.hidden_dim.is_multiple_of(m.heads))
        {
            return Err(self.bad("model.heads", "must be > 0 and divide model.hidden_dim"));
        }
        if m.encoder == EncoderKind::Bert {
            if m.pretrained.is_none() {
                return Err(self.bad("model.pretrained", "required when encoder = \"bert\""));
            }
            if tk.kind != TokenizerKind::Pretrained {
                return Err(self.bad(
                    "tokenize.kind",
                    "must be \"pretrained\" (the model's own tokenizer.json) when encoder = \"bert\"",
                ));
            }
        } else if m.pretrained.is_some() {
            return Err(self.bad("model.pretrained", "only for encoder = \"bert\""));
        }
        if m.ff_dim == Some(0) {
            return Err(self.bad("model.ff_dim", "must be > 0"));
        }
        if let Some(c) = &m.char_cnn {
            if !tk.char_ids {
                return Err(self.bad(
                    "model.char_cnn",
                    "needs tokenize.char_ids = true (the character ids it reads)",
                ));
            }
            if m.encoder == EncoderKind::Bert {
                return Err(self.bad(
                    "model.char_cnn",
                    "not for encoder = \"bert\" (only bilstm, bigru and transformer)",
                ));
            }
            if c.char_dim == 0 || c.filters == 0 || c.width == 0 {
                return Err(self.bad("model.char_cnn", "char_dim, filters and width must be > 0"));
            }
        }
        let tr = &self.train;
        if tr.batch_size == 0 || tr.epochs == 0 {
            return Err(self.bad("train", "batch_size and epochs must be > 0"));
        }
        if !(tr.temperature.is_finite() && tr.temperature >= 1.0) {
            return Err(self.bad("train.temperature", "must be a number >= 1"));
        }
        for (name, cap) in &tr.task_caps {
            if self.task(name).is_none() {
                return Err(self.bad(
                    format!("train.task_caps.{name}"),
                    format!("no task named `{name}`"),
                ));
            }
            if *cap == 0 {
                return Err(self.bad(format!("train.task_caps.{name}"), "must be > 0"));
            }
        }
        if !(0.0..1.0).contains(&tr.warmup) {
            return Err(self.bad("train.warmup", "must be in [0, 1)"));
        }
        if let Some(lr) = tr.encoder_learning_rate
            && !(lr.is_finite() && lr >= 0.0)
        {
            return Err(self.bad(
                "train.encoder_learning_rate",
                "must be a number >= 0 (0 freezes the encoder)",
            ));
        }
        for (key, v) in [
            ("train.eval_every", tr.eval_every),
            ("train.patience", tr.patience),
            ("train.max_tokens", tr.max_tokens),
        ] {
            if v == Some(0) {
                return Err(self.bad(key, "must be > 0"));
            }
        }
        if !(tr.learning_rate.is_finite() && tr.learning_rate > 0.0) {
            return Err(self.bad("train.learning_rate", "must be a positive number"));
        }
        if !(0.0..1.0).contains(&tr.word_dropout) {
            return Err(self.bad("train.word_dropout", "must be in [0, 1)"));
        }
        for (i, sp) in self.eval.splits.iter().enumerate() {
            if !crate::artifact::SPLITS.contains(&sp.as_str()) {
                return Err(self.bad(format!("eval.splits[{i}]"), "must be train, dev or test"));
            }
        }
        Ok(())
    }

    /// The unknown-label policy of a task: its own, else `split`'s.
    pub fn unknown_labels<'a>(&'a self, task: &'a TaskConfig) -> &'a UnknownLabels {
        task.unknown_labels
            .as_ref()
            .unwrap_or(&self.split.unknown_labels)
    }

    pub fn task(&self, name: &str) -> Option<&TaskConfig> {
        self.tasks.iter().find(|t| t.name == name)
    }

    pub fn dataset(&self, name: &str) -> Option<&DatasetConfig> {
        self.datasets.iter().find(|d| d.name == name)
    }

    /// Tasks fed by one dataset, in config order.
    pub fn tasks_of<'a>(&'a self, dataset: &'a str) -> impl Iterator<Item = &'a TaskConfig> + 'a {
        self.tasks.iter().filter(move |t| t.dataset == dataset)
    }

    /// Resolves a path from the config: `$DATA_DIR/...` against the data
    /// directory, other relative paths against the config file's folder.
    pub fn resolve_path(&self, key: &str, raw: &str) -> Result<PathBuf> {
        if let Some(rest) = raw.strip_prefix("$DATA_DIR") {
            let dir = self.source.data_dir.as_ref().ok_or_else(|| {
                self.bad(
                    key,
                    format!(
                        "`{raw}` needs a data directory: pass --data-dir or set {DATA_DIR_ENV}"
                    ),
                )
            })?;
            return Ok(dir.join(rest.trim_start_matches(['/', '\\'])));
        }
        let p = Path::new(raw);
        if p.is_absolute() {
            return Ok(p.to_path_buf());
        }
        let base = self.source.path.parent().unwrap_or(Path::new("."));
        Ok(base.join(p))
    }

    /// `runs/<pipeline name>`.
    pub fn run_dir(&self) -> PathBuf {
        self.pipeline.runs_dir.join(&self.pipeline.name)
    }
}

fn is_identifier(s: &str, allow_upper_dash: bool) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == '_'
                || (allow_upper_dash && (c.is_ascii_uppercase() || c == '-'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[pipeline]
name = "t"

[[datasets]]
name = "d"
format = "jsonl"
files = { all = "d.jsonl" }

[[tasks]]
name = "sentiment"
dataset = "d"
column = "label"
type = "classification"
"#;

    fn parse(text: &str) -> Result<PipelineConfig> {
        PipelineConfig::from_toml_str(text, Path::new("pipelines/t.toml"))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let cfg = parse(MINIMAL).unwrap();
        assert_eq!(cfg.pipeline.seed, 13);
        assert_eq!(cfg.tokenize.kind, TokenizerKind::Wordpiece);
        assert_eq!(cfg.run_dir(), PathBuf::from("runs/t"));
        assert_eq!(
            cfg.resolve_path("k", "d.jsonl").unwrap(),
            PathBuf::from("pipelines/d.jsonl")
        );
    }

    #[test]
    fn char_cnn_needs_char_ids_and_a_non_bert_encoder() {
        let off = parse(MINIMAL).unwrap();
        assert_eq!(off.model.char_cnn, None);
        // Off leaves the model section's fingerprint as it was.
        assert!(
            serde_json::to_value(&off.model)
                .unwrap()
                .get("char_cnn")
                .is_none()
        );
        let with = |extra: &str| parse(&format!("{MINIMAL}{extra}"));
        let cfg =
            with("[tokenize]\nchar_ids = true\n[model]\nchar_cnn = { filters = 8 }\n").unwrap();
        assert_eq!(
            cfg.model.char_cnn,
            Some(CharCnnConfig {
                char_dim: 30,
                filters: 8,
                width: 3
            })
        );
        let err = with("[model]\nchar_cnn = {}\n").unwrap_err().to_string();
        assert!(
            err.contains("model.char_cnn") && err.contains("tokenize.char_ids"),
            "{err}"
        );
        let err = with("[tokenize]\nchar_ids = true\n[model]\nchar_cnn = { width = 0 }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.char_cnn") && err.contains("width"),
            "{err}"
        );
        let err = with(
            "[tokenize]\nchar_ids = true\nkind = \"pretrained\"\npretrained = \"m\"\n\
             [model]\nencoder = \"bert\"\npretrained = \"m\"\nchar_cnn = {}\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("model.char_cnn") && err.contains("bert"),
            "{err}"
        );
        let err = with("[tokenize]\nchar_ids = true\n[model]\nchar_cnn = { size = 3 }\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("size"), "{err}");
    }

    #[test]
    fn a_dependency_task_needs_conllu_whole_sentences_and_no_crf() {
        const UD: &str = r#"
[pipeline]
name = "t"

[[datasets]]
name = "ud"
format = "conllu"
files = { train = "t.conllu" }

[[tasks]]
name = "deps"
dataset = "ud"
column = "deprel"
type = "dependency"
"#;
        let cfg = parse(UD).unwrap();
        assert_eq!(cfg.tasks[0].kind, TaskKind::Dependency);
        assert!(cfg.tasks[0].kind.is_token_level());
        let err = parse(&UD.replace("\"conllu\"", "\"jsonl\""))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tasks[0].type") && err.contains("conllu"),
            "{err}"
        );
        let err = parse(&format!("{UD}\n[tokenize]\ntruncation = \"window\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tokenize.truncation") && err.contains("deps"),
            "{err}"
        );
        let err = parse(&UD.replace("type = \"dependency\"", "type = \"dependency\"\ncrf = true"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("tasks[0].crf"), "{err}");
        let err = parse(&UD.replace(
            "type = \"dependency\"",
            "type = \"dependency\"\nclass_weights = \"balanced\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("tasks[0].class_weights"), "{err}");
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let err = parse("[pipeline]\nname = \n").unwrap_err().to_string();
        assert!(err.contains("pipelines/t.toml"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = parse(&format!("{MINIMAL}\n[train]\nepoch = 3\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("epoch"), "{err}");
    }

    #[test]
    fn word_dropout_must_be_a_probability_below_one() {
        for bad in ["1.0", "-0.1", "nan"] {
            let err = parse(&format!("{MINIMAL}\n[train]\nword_dropout = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("train.word_dropout"), "{bad}: {err}");
        }
        let cfg = parse(&format!("{MINIMAL}\n[train]\nword_dropout = 0.25\n")).unwrap();
        assert_eq!(cfg.train.word_dropout, 0.25);
    }

    #[test]
    fn bad_reference_names_the_key() {
        let text = MINIMAL.replace("dataset = \"d\"", "dataset = \"nope\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("tasks[0].dataset"), "{err}");
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn ratios_must_sum_to_one() {
        let err = parse(&format!("{MINIMAL}\n[split]\ntrain = 0.5\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sum to 1"), "{err}");
    }

    #[test]
    fn data_dir_substitution() {
        let mut cfg = parse(MINIMAL).unwrap();
        assert!(
            cfg.resolve_path("files.train", "$DATA_DIR/x")
                .unwrap_err()
                .to_string()
                .contains("--data-dir")
        );
        cfg.source.data_dir = Some(PathBuf::from("/data"));
        assert_eq!(
            cfg.resolve_path("k", "$DATA_DIR/x/y").unwrap(),
            PathBuf::from("/data/x/y")
        );
    }
}
