//! The model's shape, saved as `model.json` in every bundle so that a model
//! can be rebuilt without the pipeline config.

use std::collections::BTreeMap;
use std::path::Path;

use mtl_core::TaskKind;
use mtl_core::TaskLabels;
use mtl_core::config::{
    CharCnnConfig, CleanOptions, EncoderKind, ModelConfig, Pooling, TokenizeConfig, Truncation,
};
use mtl_core::task::{SpanScheme, TargetStats};
use serde::{Deserialize, Serialize};

/// `kind` of the BiLSTM encoder (the only kind of bundles written before
/// other encoders existed).
pub const BILSTM: &str = "bilstm";
/// `kind` of the BiGRU encoder.
pub const BIGRU: &str = "bigru";
/// `kind` of the pre-LN transformer encoder.
pub const TRANSFORMER: &str = "transformer";
/// `kind` of the pretrained BERT-family encoder.
pub const BERT: &str = "bert";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderSpec {
    /// [`BILSTM`], [`BIGRU`], [`TRANSFORMER`] or [`BERT`]: the names of
    /// `mtl_core::config::EncoderKind`.
    pub kind: String,
    pub vocab_size: usize,
    /// Width of the token embeddings of the recurrent encoders; the
    /// attention encoders embed into `hidden_dim` and ignore it.
    pub embedding_dim: usize,
    /// State per direction (recurrent encoders) or model width
    /// (transformer, BERT's `hidden_size`).
    pub hidden_dim: usize,
    pub layers: usize,
    pub dropout: f32,
    /// Attention heads (transformer and BERT); must divide `hidden_dim`.
    #[serde(default = "default_heads")]
    pub heads: usize,
    /// Feed-forward width (transformer and BERT); `None` means
    /// `4 * hidden_dim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ff_dim: Option<usize>,
    /// Learned positions (transformer and BERT): the longest batch, padding
    /// included, the model accepts.
    #[serde(default = "default_max_positions")]
    pub max_positions: usize,
    /// BERT only: what its `config.json` says beyond the sizes above. The
    /// spec carries every size, so a bundle rebuilds the model without the
    /// pretrained folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bert: Option<BertSpec>,
    /// Character-CNN word features (`model.char_cnn`); bundles written
    /// before it have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub char_cnn: Option<CharCnnSpec>,
}

/// The character CNN of [`crate::encoder::charcnn`]: `model.char_cnn` plus
/// the size of the character vocabulary it embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharCnnSpec {
    /// Ids of `chars.json`, padding (0) and unknown (1) included.
    pub vocab_size: usize,
    pub char_dim: usize,
    /// Width of each word's vector.
    pub filters: usize,
    /// Characters per convolution window.
    pub width: usize,
}

impl CharCnnSpec {
    pub fn new(c: &CharCnnConfig, vocab_size: usize) -> Self {
        Self {
            vocab_size,
            char_dim: c.char_dim,
            filters: c.filters,
            width: c.width,
        }
    }
}

/// The parts of a BERT `config.json` that [`EncoderSpec`]'s common fields
/// do not hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertSpec {
    /// Rows of `token_type_embeddings`; every position uses row 0.
    pub type_vocab_size: usize,
    /// The epsilon of every layer norm (1e-12 in BERT checkpoints).
    pub layer_norm_eps: f64,
    /// The feed-forward activation, as `config.json` names it: `gelu`
    /// (erf form), `gelu_new`, `gelu_pytorch_tanh` (tanh form) or `relu`.
    pub hidden_act: String,
}

fn default_heads() -> usize {
    4
}

fn default_max_positions() -> usize {
    512
}

impl Default for EncoderSpec {
    /// A small BiLSTM over an empty vocabulary: set `vocab_size` (and what
    /// else differs) with struct update syntax.
    fn default() -> Self {
        Self {
            kind: BILSTM.into(),
            vocab_size: 0,
            embedding_dim: 64,
            hidden_dim: 64,
            layers: 1,
            dropout: 0.1,
            heads: default_heads(),
            ff_dim: None,
            max_positions: default_max_positions(),
            bert: None,
            char_cnn: None,
        }
    }
}

impl EncoderSpec {
    /// The encoder the pipeline config asks for. `max_positions` is the
    /// longest batch the trainer builds (`tokenize.pad_to`, else
    /// `tokenize.max_length`). `model.char_cnn` is left off: it needs the
    /// character vocabulary's size, see [`EncoderSpec::with_char_cnn`].
    /// For `encoder = "bert"` use
    /// [`EncoderSpec::from_pretrained`]: the sizes come from the checkpoint,
    /// and a spec built here has none (building it is an error).
    pub fn from_config(m: &ModelConfig, vocab_size: usize, max_positions: usize) -> Self {
        let kind = match m.encoder {
            EncoderKind::Bilstm => BILSTM,
            EncoderKind::Bigru => BIGRU,
            EncoderKind::Transformer => TRANSFORMER,
            EncoderKind::Bert => BERT,
        };
        Self {
            kind: kind.into(),
            vocab_size,
            embedding_dim: m.embedding_dim,
            hidden_dim: m.hidden_dim,
            layers: m.layers,
            dropout: m.dropout as f32,
            heads: m.heads,
            ff_dim: m.ff_dim,
            max_positions,
            bert: None,
            char_cnn: None,
        }
    }

    /// Turns on `model.char_cnn` (when set) over a character vocabulary of
    /// `char_vocab_size` ids (`CharVocab::len` of the tokenize stage's
    /// `chars.json`).
    pub fn with_char_cnn(mut self, m: &ModelConfig, char_vocab_size: usize) -> Self {
        self.char_cnn = m
            .char_cnn
            .as_ref()
            .map(|c| CharCnnSpec::new(c, char_vocab_size));
        self
    }

    /// The `bert` encoder of the checkpoint in `dir` (`model.pretrained`,
    /// resolved): every size from `dir/config.json`, dropout from the
    /// pipeline config. Load its weights with
    /// [`crate::MultiTaskModel::with_pretrained`].
    pub fn from_pretrained(m: &ModelConfig, dir: &Path) -> crate::Result<Self> {
        Ok(crate::encoder::bert::BertConfig::read(dir)?.encoder_spec(m.dropout as f32))
    }

    /// Width of the encoder's output per position: both directions of a
    /// recurrent encoder, the model width of a transformer or BERT.
    pub fn output_dim(&self) -> usize {
        if self.kind == TRANSFORMER || self.kind == BERT {
            self.hidden_dim
        } else {
            2 * self.hidden_dim
        }
    }

    /// Feed-forward width of the transformer.
    pub fn ff_dim(&self) -> usize {
        self.ff_dim.unwrap_or(4 * self.hidden_dim)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadSpec {
    pub name: String,
    pub kind: TaskKind,
    /// Size of the label vocabulary; 0 for regression, whose head has one
    /// output.
    pub num_labels: usize,
    /// Side inputs of a sentence-level head, in input order (the task's
    /// `selected` features in `features.json`). Empty for token heads and in
    /// bundles written before side inputs existed.
    #[serde(default)]
    pub features: Vec<String>,
    /// Regression only: the training targets' statistics. The head learns
    /// the standardized target `(y - mean) / std` and predicts in target
    /// units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetStats>,
    /// Token heads only: decode with a linear-chain CRF (learned
    /// transitions, forward-algorithm loss, Viterbi decoding).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub crf: bool,
    /// CRF heads of span tasks: the transitions the tagging scheme rules
    /// out, precomputed from the label names so a bundle needs no
    /// `labels.json` to decode validly.
    #[serde(default, skip_serializing_if = "CrfConstraints::is_empty")]
    pub crf_constraints: CrfConstraints,
    /// Sentence heads only: how the encoder's positions are pooled
    /// (`model.pooling`); bundles written before it pool by the mean.
    #[serde(default)]
    pub pooling: Pooling,
}

/// Transitions a CRF may never take (label ids). Decoding scores each
/// -inf, so no decoded word sequence takes one; they are not learned, and
/// the training loss leaves them out (see `heads::crf`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrfConstraints {
    /// Labels a sequence may not start with (`I-X`; also `E-X` in BIOES).
    #[serde(default)]
    pub start: Vec<u32>,
    /// Labels a sequence may not end with (BIOES `B-X`, `I-X`).
    #[serde(default)]
    pub end: Vec<u32>,
    /// `[from, to]` pairs that may not follow each other.
    #[serde(default)]
    pub pairs: Vec<[u32; 2]>,
}

impl CrfConstraints {
    pub fn is_empty(&self) -> bool {
        self.start.is_empty() && self.end.is_empty() && self.pairs.is_empty()
    }

    /// The constraints of a BIO or BIOES label vocabulary. Labels are
    /// `<P>-<type>` with `P` one of `B`, `I`, `E`, `S`; anything else
    /// counts as outside (`O`).
    pub fn for_scheme(labels: &[String], scheme: SpanScheme) -> Self {
        // (prefix, type); prefix 'O' for outside.
        let parsed: Vec<(char, &str)> = labels
            .iter()
            .map(|l| match l.split_once('-') {
                Some((p, t)) if matches!(p, "B" | "I" | "E" | "S") => {
                    (p.chars().next().unwrap_or('O'), t)
                }
                _ => ('O', ""),
            })
            .collect();
        let bioes = scheme == SpanScheme::Bioes;
        // Whether `next` may follow `prev` (`None` = sequence start).
        let allowed = |prev: Option<(char, &str)>, next: (char, &str)| -> bool {
            let inside = matches!(next.0, 'I') || (bioes && next.0 == 'E');
            match prev {
                Some((p, t)) if p == 'B' || p == 'I' => {
                    if inside {
                        t == next.1
                    } else {
                        // BIOES: an open entity must continue with I or E.
                        !bioes
                    }
                }
                _ => !inside,
            }
        };
        let mut c = CrfConstraints::default();
        for (j, &next) in parsed.iter().enumerate() {
            if !allowed(None, next) {
                c.start.push(j as u32);
            }
            if bioes && matches!(next.0, 'B' | 'I') {
                c.end.push(j as u32);
            }
            for (i, &prev) in parsed.iter().enumerate() {
                if !allowed(Some(prev), next) {
                    c.pairs.push([i as u32, j as u32]);
                }
            }
        }
        c
    }
}

impl HeadSpec {
    /// A head without side inputs or target statistics.
    pub fn new(name: impl Into<String>, kind: TaskKind, num_labels: usize) -> Self {
        Self {
            name: name.into(),
            kind,
            num_labels,
            features: Vec::new(),
            target: None,
            crf: false,
            crf_constraints: CrfConstraints::default(),
            pooling: Pooling::Mean,
        }
    }

    /// Sets the pooling of a sentence head; token heads keep the default,
    /// as they pool nothing.
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = if self.kind.is_token_level() {
            Pooling::Mean
        } else {
            pooling
        };
        self
    }

    /// Turns the CRF on (`crf = true`, token heads only) with the
    /// constraints of the task's scheme (spans) from its labels.
    pub fn with_crf(mut self, crf: bool, labels: &TaskLabels) -> Self {
        self.crf = crf && matches!(self.kind, TaskKind::Tagging | TaskKind::Spans);
        self.crf_constraints = if self.crf && self.kind == TaskKind::Spans {
            CrfConstraints::for_scheme(&labels.labels, labels.scheme.unwrap_or_default())
        } else {
            CrfConstraints::default()
        };
        self
    }

    /// Width of the head's output per row (or per position for token
    /// heads).
    pub fn output_dim(&self) -> usize {
        match self.kind {
            TaskKind::Regression => 1,
            _ => self.num_labels,
        }
    }

    /// `(mean, std)` used to standardize regression targets; `(0, 1)`
    /// without statistics, and a degenerate std counts as 1.
    pub fn target_scale(&self) -> (f64, f64) {
        match self.target {
            Some(t) => {
                let std = if t.std.is_finite() && t.std > 0.0 {
                    t.std
                } else {
                    1.0
                };
                (t.mean, std)
            }
            None => (0.0, 1.0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub encoder: EncoderSpec,
    pub tasks: Vec<HeadSpec>,
}

impl ModelSpec {
    pub fn head(&self, name: &str) -> Option<&HeadSpec> {
        self.tasks.iter().find(|h| h.name == name)
    }
}

/// What prediction must replay before the model sees raw text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    /// Cleaning options per training dataset.
    pub clean: BTreeMap<String, CleanOptions>,
    /// Sub-tokens per example, specials included.
    pub max_length: usize,
    /// How examples longer than `max_length` were handled in training.
    /// Bundles written before these keys existed predict as they did: cut,
    /// no fixed padding.
    #[serde(default)]
    pub truncation: Truncation,
    /// Words shared by consecutive windows.
    #[serde(default = "default_stride")]
    pub stride: usize,
    /// Every batch padded to this many sub-tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_to: Option<usize>,
}

fn default_stride() -> usize {
    TokenizeConfig::default().stride
}

impl Default for Preprocess {
    fn default() -> Self {
        let t = TokenizeConfig::default();
        Self {
            clean: BTreeMap::new(),
            max_length: t.max_length,
            truncation: t.truncation,
            stride: t.stride,
            pad_to: t.pad_to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `model.json` of a bundle written before other encoders existed.
    #[test]
    fn an_old_bilstm_spec_still_reads() {
        let old = r#"{"kind":"bilstm","vocab_size":30,"embedding_dim":8,
                      "hidden_dim":6,"layers":2,"dropout":0.1}"#;
        let spec: EncoderSpec = serde_json::from_str(old).unwrap();
        assert_eq!(spec.kind, BILSTM);
        assert_eq!((spec.vocab_size, spec.layers), (30, 2));
        assert_eq!(spec.output_dim(), 12);
        assert_eq!(spec.char_cnn, None);
        // And what is written now reads back the same.
        let again: EncoderSpec =
            serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(again, spec);
    }

    fn names(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bio_constraints_forbid_what_bio_forbids() {
        let l = names(&["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]);
        let c = CrfConstraints::for_scheme(&l, SpanScheme::Bio);
        assert_eq!(c.start, vec![2, 4]);
        assert!(c.end.is_empty());
        let mut pairs = c.pairs.clone();
        pairs.sort();
        // O → I-*, B/I-PER → I-LOC, B/I-LOC → I-PER.
        assert_eq!(pairs, vec![[0, 2], [0, 4], [1, 4], [2, 4], [3, 2], [4, 2]]);
    }

    #[test]
    fn bioes_constraints_close_every_entity() {
        let l = names(&["O", "B-X", "I-X", "E-X", "S-X"]);
        let c = CrfConstraints::for_scheme(&l, SpanScheme::Bioes);
        assert_eq!((c.start.clone(), c.end.clone()), (vec![2, 3], vec![1, 2]));
        let forbidden = |a: u32, b: u32| c.pairs.contains(&[a, b]);
        assert!(forbidden(1, 0) && forbidden(1, 1) && forbidden(1, 4) && forbidden(0, 3));
        assert!(!forbidden(1, 2) && !forbidden(1, 3) && !forbidden(2, 3) && !forbidden(3, 1));
        assert!(!forbidden(4, 4) && !forbidden(3, 0) && !forbidden(0, 1));
    }

    #[test]
    fn the_config_picks_the_kind_and_its_width() {
        let mut m = ModelConfig {
            hidden_dim: 32,
            heads: 8,
            ..Default::default()
        };
        let s = EncoderSpec::from_config(&m, 100, 64);
        assert_eq!((s.kind.as_str(), s.output_dim()), (BILSTM, 64));
        m.encoder = EncoderKind::Bigru;
        assert_eq!(EncoderSpec::from_config(&m, 100, 64).kind, BIGRU);
        m.encoder = EncoderKind::Transformer;
        m.ff_dim = Some(48);
        let s = EncoderSpec::from_config(&m, 100, 64);
        assert_eq!((s.kind.as_str(), s.output_dim()), (TRANSFORMER, 32));
        assert_eq!((s.heads, s.ff_dim(), s.max_positions), (8, 48, 64));
        assert_eq!(s.vocab_size, 100);
        m.ff_dim = None;
        assert_eq!(EncoderSpec::from_config(&m, 100, 64).ff_dim(), 128);
    }

    #[test]
    fn char_cnn_comes_from_the_config_and_the_char_vocabulary() {
        let mut m = ModelConfig::default();
        let s = EncoderSpec::from_config(&m, 100, 64).with_char_cnn(&m, 40);
        assert_eq!(s.char_cnn, None);
        m.char_cnn = Some(CharCnnConfig {
            char_dim: 5,
            filters: 7,
            width: 2,
        });
        let s = EncoderSpec::from_config(&m, 100, 64).with_char_cnn(&m, 40);
        let c = s.char_cnn.unwrap();
        assert_eq!(
            (c.vocab_size, c.char_dim, c.filters, c.width),
            (40, 5, 7, 2)
        );
        // The encoder's output width does not change; model.json round-trips.
        assert_eq!(s.output_dim(), 128);
        let again: EncoderSpec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again, s);
    }
}
