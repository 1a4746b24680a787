//! A pretrained BERT-family encoder (post-LN, as in Devlin et al.): token,
//! position and token-type embeddings and a layer norm, then per layer
//! `LN(x + attn(x))` and `LN(x + ffn(x))`. Every position uses token type 0
//! and positions run `0..T`.
//!
//! candle-transformers' `BertModel` cannot be fine-tuned here: it is built
//! from candle 0.11's fused `softmax_last_dim` and `LayerNorm`, which pass
//! no gradient, so only the heads above it would learn. This one uses the
//! differentiable [`crate::norm`] and `candle_nn::ops::softmax`, and its
//! parameters carry the checkpoint's own names (`embeddings.…`,
//! `encoder.layer.N.…`, below the model's `encoder.` scope) in the
//! checkpoint's `(out, in)` layout, so that loading copies tensors as they
//! are ([`load_weights`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{D, DType, Tensor};
use candle_nn::VarMap;
use rand::rngs::StdRng;
use serde::Deserialize;

use crate::dropout::dropout;
use crate::error::{Error, Result};
use crate::norm::LayerNorm;
use crate::params::ParamStore;
use crate::spec::{BERT, BertSpec, EncoderSpec};

/// The checkpoint's configuration, in a pretrained folder.
pub const CONFIG_FILE: &str = "config.json";
/// The checkpoint's weights, in a pretrained folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The prefix some checkpoints (those saved from a task model such as
/// `BertForSequenceClassification`) put before every encoder tensor.
const CHECKPOINT_PREFIX: &str = "bert.";

/// Added to the attention score of a padded key (see the transformer
/// encoder): large and finite, so a fully padded row stays finite.
const MASKED_SCORE: f64 = -1e9;
/// BERT's `initializer_range`: the std of weights built before a
/// checkpoint (or a bundle) overwrites them.
const INIT_STD: f64 = 0.02;

/// What the encoder needs from a Hugging Face BERT `config.json`; other
/// keys are ignored. Defaults are those of `transformers.BertConfig`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    #[serde(default)]
    pub model_type: Option<String>,
}

fn default_max_position_embeddings() -> usize {
    512
}

fn default_type_vocab_size() -> usize {
    2
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}

fn default_hidden_act() -> String {
    "gelu".into()
}

impl BertConfig {
    /// Reads and checks `dir/config.json`; an error names the file and the
    /// key.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        let bad = |message: String| Error::Bundle {
            path: path.clone(),
            message,
        };
        let bytes = std::fs::read(&path).map_err(|e| {
            bad(format!(
                "cannot read the pretrained model's configuration ({e}); a pretrained folder \
                 holds {CONFIG_FILE}, {WEIGHTS_FILE} and tokenizer.json"
            ))
        })?;
        let cfg: BertConfig =
            serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a BERT config: {e}")))?;
        cfg.check()
            .map_err(|(key, m)| bad(format!("key `{key}`: {m}")))?;
        Ok(cfg)
    }

    /// The key at fault and why.
    fn check(&self) -> std::result::Result<(), (&'static str, String)> {
        if let Some(t) = self.model_type.as_deref().filter(|t| *t != "bert") {
            return Err((
                "model_type",
                format!("`{t}` is not supported (only \"bert\")"),
            ));
        }
        if let Some(p) = self
            .position_embedding_type
            .as_deref()
            .filter(|p| *p != "absolute")
        {
            return Err((
                "position_embedding_type",
                format!("`{p}` is not supported (only \"absolute\")"),
            ));
        }
        if Activation::parse(&self.hidden_act).is_none() {
            return Err(("hidden_act", unknown_activation(&self.hidden_act)));
        }
        for (key, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if v == 0 {
                return Err((key, "must be > 0".into()));
            }
        }
        let heads = self.num_attention_heads;
        if heads == 0 || !self.hidden_size.is_multiple_of(heads) {
            return Err((
                "num_attention_heads",
                format!(
                    "{heads} must be > 0 and divide hidden_size ({})",
                    self.hidden_size
                ),
            ));
        }
        if !(self.layer_norm_eps.is_finite() && self.layer_norm_eps >= 0.0) {
            return Err(("layer_norm_eps", "must be a finite number >= 0".into()));
        }
        Ok(())
    }

    /// The encoder spec of this checkpoint: every size from here, so that a
    /// bundle rebuilds the model without the pretrained folder.
    pub fn encoder_spec(&self, dropout: f32) -> EncoderSpec {
        EncoderSpec {
            kind: BERT.into(),
            vocab_size: self.vocab_size,
            embedding_dim: self.hidden_size,
            hidden_dim: self.hidden_size,
            layers: self.num_hidden_layers,
            dropout,
            heads: self.num_attention_heads,
            ff_dim: Some(self.intermediate_size),
            max_positions: self.max_position_embeddings,
            bert: Some(BertSpec {
                type_vocab_size: self.type_vocab_size,
                layer_norm_eps: self.layer_norm_eps,
                hidden_act: self.hidden_act.clone(),
            }),
            char_cnn: None,
        }
    }
}

fn unknown_activation(name: &str) -> String {
    format!(
        "activation `{name}` is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast or \
         relu)"
    )
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Activation {
    /// `x * Φ(x)`: Hugging Face's `gelu`.
    GeluErf,
    /// The tanh approximation: `gelu_new`, `gelu_pytorch_tanh`, `gelu_fast`.
    GeluTanh,
    Relu,
}

impl Activation {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "gelu" => Activation::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            _ => return None,
        })
    }

    fn apply(self, xs: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Activation::GeluErf => xs.gelu_erf()?,
            Activation::GeluTanh => xs.gelu()?,
            Activation::Relu => xs.relu()?,
        })
    }
}

/// An affine layer in PyTorch's layout: `weight` is `(out, in)`.
struct Dense {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Dense {
    fn new(p: &mut ParamStore, input: usize, output: usize, bias: bool) -> Result<Self> {
        Ok(Self {
            weight: p.normal("weight", &[output, input], INIT_STD)?,
            bias: if bias {
                Some(p.zeros("bias", &[output])?)
            } else {
                None
            },
        })
    }

    /// `xs @ weight^T + bias` on the last dimension of `(B, T, in)`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (b, t, input) = xs.dims3()?;
        let out = xs.reshape((b * t, input))?.matmul(&self.weight.t()?)?;
        let out = match &self.bias {
            Some(bias) => out.broadcast_add(bias)?,
            None => out,
        };
        Ok(out.reshape((b, t, self.weight.dim(0)?))?)
    }
}

struct Layer {
    query: Dense,
    /// No bias: the checkpoint's `attention.self.key.bias` adds `q · b` to
    /// every score of a query, the same for every key, which softmax
    /// cancels. It changes no output and would never get a gradient, so it
    /// is not loaded.
    key: Dense,
    value: Dense,
    attn_out: Dense,
    attn_norm: LayerNorm,
    ff_in: Dense,
    ff_out: Dense,
    ff_norm: LayerNorm,
}

pub struct BertEncoder {
    /// `(V, H)`, `(P, H)` and `(types, H)`.
    words: Tensor,
    positions: Tensor,
    token_types: Tensor,
    embed_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    activation: Activation,
    dropout: f32,
}

impl BertEncoder {
    /// The architecture `spec` describes, with random weights; the model
    /// then loads a checkpoint ([`load_weights`]) or a bundle over them.
    pub fn new(p: &mut ParamStore, spec: &EncoderSpec) -> Result<Self> {
        let bad = |m: String| Error::Invalid(format!("bert encoder: {m}"));
        let bert = spec.bert.as_ref().ok_or_else(|| {
            bad(
                "the spec has no `bert` section (build it with EncoderSpec::from_pretrained)"
                    .into(),
            )
        })?;
        let activation = Activation::parse(&bert.hidden_act)
            .ok_or_else(|| bad(unknown_activation(&bert.hidden_act)))?;
        let h = spec.hidden_dim;
        if spec.heads == 0 || !h.is_multiple_of(spec.heads) {
            return Err(bad(format!(
                "heads ({}) must be > 0 and divide hidden_dim ({h})",
                spec.heads
            )));
        }
        if spec.max_positions == 0 || spec.ff_dim() == 0 || bert.type_vocab_size == 0 {
            return Err(bad(
                "max_positions, ff_dim and type_vocab_size must be > 0".into()
            ));
        }
        let eps = bert.layer_norm_eps;
        let ff = spec.ff_dim();
        let (words, positions, token_types, embed_norm) = p.scoped("embeddings", |p| {
            Ok((
                p.scoped("word_embeddings", |p| {
                    p.normal("weight", &[spec.vocab_size, h], INIT_STD)
                })?,
                p.scoped("position_embeddings", |p| {
                    p.normal("weight", &[spec.max_positions, h], INIT_STD)
                })?,
                p.scoped("token_type_embeddings", |p| {
                    p.normal("weight", &[bert.type_vocab_size, h], INIT_STD)
                })?,
                p.scoped("LayerNorm", |p| LayerNorm::plain(p, h, eps))?,
            ))
        })?;
        let mut layers = Vec::with_capacity(spec.layers);
        for l in 0..spec.layers {
            layers.push(p.scoped(&format!("encoder.layer.{l}"), |p| {
                let (query, key, value, attn_out, attn_norm) = p.scoped("attention", |p| {
                    let (q, k, v) = p.scoped("self", |p| {
                        Ok((
                            p.scoped("query", |p| Dense::new(p, h, h, true))?,
                            p.scoped("key", |p| Dense::new(p, h, h, false))?,
                            p.scoped("value", |p| Dense::new(p, h, h, true))?,
                        ))
                    })?;
                    let (o, n) = p.scoped("output", |p| {
                        Ok((
                            p.scoped("dense", |p| Dense::new(p, h, h, true))?,
                            p.scoped("LayerNorm", |p| LayerNorm::plain(p, h, eps))?,
                        ))
                    })?;
                    Ok((q, k, v, o, n))
                })?;
                let ff_in = p.scoped("intermediate.dense", |p| Dense::new(p, h, ff, true))?;
                let (ff_out, ff_norm) = p.scoped("output", |p| {
                    Ok((
                        p.scoped("dense", |p| Dense::new(p, ff, h, true))?,
                        p.scoped("LayerNorm", |p| LayerNorm::plain(p, h, eps))?,
                    ))
                })?;
                Ok(Layer {
                    query,
                    key,
                    value,
                    attn_out,
                    attn_norm,
                    ff_in,
                    ff_out,
                    ff_norm,
                })
            })?);
        }
        Ok(Self {
            words,
            positions,
            token_types,
            embed_norm,
            layers,
            heads: spec.heads,
            activation,
            dropout: spec.dropout,
        })
    }

    /// `ids`: `(B, T)` u32, `mask`: `(B, T)` f32 with 1 on real tokens.
    /// Returns `(B, T, H)`. `rng` turns dropout on (on embeddings,
    /// attention weights and each sub-layer's output, as BERT). No position
    /// attends to a padded key.
    pub fn forward(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        mut rng: Option<&mut StdRng>,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let max = self.positions.dim(0)?;
        if t > max {
            return Err(Error::Invalid(format!(
                "a batch of {t} positions is longer than the bert encoder's {max} \
                 (max_position_embeddings)"
            )));
        }
        let mut drop = |x: Tensor| match rng.as_deref_mut() {
            Some(rng) => dropout(&x, self.dropout, rng),
            None => Ok(x),
        };
        let xs = super::embed(&self.words, ids)?
            .broadcast_add(&self.positions.narrow(0, 0, t)?)?
            .broadcast_add(&self.token_types.narrow(0, 0, 1)?)?;
        let mut xs = drop(self.embed_norm.forward(&xs)?)?;
        let key_bias = mask
            .affine(-MASKED_SCORE, MASKED_SCORE)?
            .reshape((b, 1, 1, t))?;
        for layer in &self.layers {
            let a = self.attention(layer, &xs, &key_bias, &mut drop)?;
            let a = drop(layer.attn_out.forward(&a)?)?;
            xs = layer.attn_norm.forward(&a.add(&xs)?)?;
            let f = self.activation.apply(&layer.ff_in.forward(&xs)?)?;
            let f = drop(layer.ff_out.forward(&f)?)?;
            xs = layer.ff_norm.forward(&f.add(&xs)?)?;
        }
        Ok(xs)
    }

    /// Multi-head self-attention of `(B, T, H)`, before the output
    /// projection.
    fn attention(
        &self,
        layer: &Layer,
        xs: &Tensor,
        key_bias: &Tensor,
        drop: &mut impl FnMut(Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let (b, t, h) = xs.dims3()?;
        let nh = self.heads;
        let dh = h / nh;
        // (B, T, H) -> (B, nh, T, dh)
        let split = |x: Tensor| -> Result<Tensor> {
            Ok(x.reshape((b, t, nh, dh))?.transpose(1, 2)?.contiguous()?)
        };
        let q = split(layer.query.forward(xs)?)?.affine(1.0 / (dh as f64).sqrt(), 0.0)?;
        let k = split(layer.key.forward(xs)?)?;
        let v = split(layer.value.forward(xs)?)?;
        let scores = q.matmul(&k.t()?)?.broadcast_add(key_bias)?;
        let weights = drop(candle_nn::ops::softmax(&scores, D::Minus1)?)?;
        Ok(weights.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h))?)
    }
}

/// Copies a checkpoint's tensors into every variable under `scope.` (the
/// model's encoder): variable `scope.NAME` takes the file's `NAME`, or
/// `bert.NAME`. Other variables (the heads) keep their values, and tensors
/// the encoder does not use (the pooler, `position_ids`, the key biases)
/// are ignored. Tensors of another float type are converted to f32.
/// Returns how many variables were loaded.
pub fn load_weights(varmap: &VarMap, scope: &str, file: &Path) -> Result<usize> {
    let bad = |message: String| Error::Bundle {
        path: file.to_path_buf(),
        message,
    };
    if !file.is_file() {
        return Err(bad(format!(
            "not found (a pretrained folder holds {CONFIG_FILE}, {WEIGHTS_FILE} and \
             tokenizer.json)"
        )));
    }
    let data = varmap
        .data()
        .lock()
        .map_err(|_| bad("variables locked".into()))?;
    let Some(device) = data.values().next().map(|v| v.device().clone()) else {
        return Ok(0);
    };
    let tensors: HashMap<String, Tensor> = candle_core::safetensors::load(file, &device)
        .map_err(|e| bad(format!("cannot read safetensors: {e}")))?;
    let prefix = format!("{scope}.");
    let mut loaded = 0;
    for (name, var) in data.iter() {
        let Some(key) = name.strip_prefix(&prefix) else {
            continue;
        };
        let prefixed = format!("{CHECKPOINT_PREFIX}{key}");
        let (found, t) = match tensors.get(key) {
            Some(t) => (key, t),
            None => match tensors.get(&prefixed) {
                Some(t) => (prefixed.as_str(), t),
                None => {
                    return Err(bad(format!(
                        "no tensor `{key}` (nor `{prefixed}`): not a BERT checkpoint of the \
                         shape its {CONFIG_FILE} describes"
                    )));
                }
            },
        };
        if t.dims() != var.dims() {
            return Err(bad(format!(
                "tensor `{found}` has shape {:?}, but {CONFIG_FILE} makes it {:?}",
                t.dims(),
                var.dims()
            )));
        }
        if !t.dtype().is_float() {
            return Err(bad(format!(
                "tensor `{found}` is {:?}, not a float type",
                t.dtype()
            )));
        }
        var.set(&t.to_dtype(DType::F32)?)
            .map_err(|e| bad(format!("tensor `{found}`: {e}")))?;
        loaded += 1;
    }
    Ok(loaded)
}

/// The pretrained folder's weights file.
pub fn weights_file(dir: &Path) -> PathBuf {
    dir.join(WEIGHTS_FILE)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::Device;
    use rand::{Rng, SeedableRng};

    /// A checkpoint's tensors: name as in the file, shape, values.
    pub(crate) type Checkpoint = Vec<(String, Vec<usize>, Vec<f32>)>;

    /// A BERT-shaped checkpoint small enough for tests.
    pub(crate) fn tiny_config() -> BertConfig {
        BertConfig {
            vocab_size: 50,
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 32,
            max_position_embeddings: 24,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
            position_embedding_type: Some("absolute".into()),
            model_type: Some("bert".into()),
        }
    }

    /// Every tensor of a Hugging Face `BertModel` checkpoint of `cfg`'s
    /// shape (the pooler and `position_ids` included), named as in the
    /// file, with values uniform in `[-1, 1]` (layer norm scales around 1).
    pub(crate) fn checkpoint_tensors(cfg: &BertConfig, seed: u64) -> Checkpoint {
        let (h, f) = (cfg.hidden_size, cfg.intermediate_size);
        let mut shapes: Vec<(String, Vec<usize>)> = vec![
            (
                "embeddings.word_embeddings.weight".into(),
                vec![cfg.vocab_size, h],
            ),
            (
                "embeddings.position_embeddings.weight".into(),
                vec![cfg.max_position_embeddings, h],
            ),
            (
                "embeddings.token_type_embeddings.weight".into(),
                vec![cfg.type_vocab_size, h],
            ),
            ("embeddings.LayerNorm.weight".into(), vec![h]),
            ("embeddings.LayerNorm.bias".into(), vec![h]),
            ("pooler.dense.weight".into(), vec![h, h]),
            ("pooler.dense.bias".into(), vec![h]),
        ];
        for l in 0..cfg.num_hidden_layers {
            let at = |s: &str| format!("encoder.layer.{l}.{s}");
            for m in ["query", "key", "value"] {
                shapes.push((at(&format!("attention.self.{m}.weight")), vec![h, h]));
                shapes.push((at(&format!("attention.self.{m}.bias")), vec![h]));
            }
            shapes.extend([
                (at("attention.output.dense.weight"), vec![h, h]),
                (at("attention.output.dense.bias"), vec![h]),
                (at("attention.output.LayerNorm.weight"), vec![h]),
                (at("attention.output.LayerNorm.bias"), vec![h]),
                (at("intermediate.dense.weight"), vec![f, h]),
                (at("intermediate.dense.bias"), vec![f]),
                (at("output.dense.weight"), vec![h, f]),
                (at("output.dense.bias"), vec![h]),
                (at("output.LayerNorm.weight"), vec![h]),
                (at("output.LayerNorm.bias"), vec![h]),
            ]);
        }
        let mut rng = StdRng::seed_from_u64(seed);
        shapes
            .into_iter()
            .map(|(name, shape)| {
                let n = shape.iter().product();
                let centre = if name.ends_with("LayerNorm.weight") {
                    1.0
                } else {
                    0.0
                };
                let v = (0..n)
                    .map(|_| centre + rng.random_range(-1.0f32..=1.0))
                    .collect();
                (name, shape, v)
            })
            .collect()
    }

    /// Writes `config.json` and `model.safetensors` of `tensors` into
    /// `dir`, each name prefixed with `prefix`, as `transformers` saves
    /// them.
    pub(crate) fn write_checkpoint(
        dir: &Path,
        cfg: &BertConfig,
        tensors: &[(String, Vec<usize>, Vec<f32>)],
        prefix: &str,
    ) {
        let d = Device::Cpu;
        let mut map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, s, v)| {
                (
                    format!("{prefix}{n}"),
                    Tensor::from_vec(v.clone(), s.as_slice(), &d).unwrap(),
                )
            })
            .collect();
        let ids: Vec<i64> = (0..cfg.max_position_embeddings as i64).collect();
        map.insert(
            format!("{prefix}embeddings.position_ids"),
            Tensor::from_vec(ids, (1, cfg.max_position_embeddings), &d).unwrap(),
        );
        candle_core::safetensors::save(&map, dir.join(WEIGHTS_FILE)).unwrap();
        let json = serde_json::json!({
            "architectures": ["BertModel"],
            "model_type": cfg.model_type,
            "vocab_size": cfg.vocab_size,
            "hidden_size": cfg.hidden_size,
            "num_hidden_layers": cfg.num_hidden_layers,
            "num_attention_heads": cfg.num_attention_heads,
            "intermediate_size": cfg.intermediate_size,
            "max_position_embeddings": cfg.max_position_embeddings,
            "type_vocab_size": cfg.type_vocab_size,
            "layer_norm_eps": cfg.layer_norm_eps,
            "hidden_act": cfg.hidden_act,
            "hidden_dropout_prob": 0.1,
            "pad_token_id": 0,
        });
        std::fs::write(dir.join(CONFIG_FILE), json.to_string()).unwrap();
    }

    /// An encoder built from `dir` alone: config, random init, then the
    /// checkpoint, as the model does it.
    fn load(dir: &Path) -> Result<(BertEncoder, VarMap)> {
        let spec = BertConfig::read(dir)?.encoder_spec(0.0);
        let mut p = ParamStore::new(3, &Device::Cpu);
        let enc = p.scoped("encoder", |p| BertEncoder::new(p, &spec))?;
        let varmap = p.into_varmap();
        load_weights(&varmap, "encoder", &weights_file(dir))?;
        Ok((enc, varmap))
    }

    fn ids_and_mask() -> (Tensor, Tensor) {
        let d = Device::Cpu;
        let ids = Tensor::new(&[[1u32, 7, 8, 9, 2], [1, 30, 2, 0, 0]], &d).unwrap();
        let mask =
            Tensor::new(&[[1f32, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0, 0.0]], &d).unwrap();
        (ids, mask)
    }

    #[test]
    fn a_checkpoint_loads_into_the_encoder_as_saved() {
        let cfg = tiny_config();
        let tensors = checkpoint_tensors(&cfg, 1);
        for prefix in ["", "bert."] {
            let dir = tempfile::tempdir().unwrap();
            write_checkpoint(dir.path(), &cfg, &tensors, prefix);
            let (enc, varmap) = load(dir.path()).unwrap();
            let data = varmap.data().lock().unwrap();
            // Everything but the pooler and the key biases.
            assert_eq!(data.len(), 5 + 15 * cfg.num_hidden_layers, "{prefix}");
            for (name, shape, values) in &tensors {
                let var = data.get(&format!("encoder.{name}"));
                if name.starts_with("pooler.") || name.ends_with("self.key.bias") {
                    assert!(var.is_none(), "{name} should not be a parameter");
                    continue;
                }
                let var = var.unwrap_or_else(|| panic!("no variable for {name}"));
                assert_eq!(var.dims(), shape.as_slice(), "{name}");
                let got = var
                    .as_tensor()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                assert_eq!(&got, values, "{prefix}{name}");
            }
            drop(data);
            let (ids, mask) = ids_and_mask();
            let out = enc.forward(&ids, &mask, None).unwrap();
            assert_eq!(out.dims(), &[2, 5, 16]);
            let v = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(v.iter().all(|x| x.is_finite()));
        }
    }

    #[test]
    fn a_missing_or_misshapen_tensor_names_the_file_and_the_tensor() {
        let cfg = tiny_config();
        let mut tensors = checkpoint_tensors(&cfg, 1);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(WEIGHTS_FILE);
        let missing = "encoder.layer.1.attention.self.value.bias";
        let kept: Vec<_> = tensors.iter().filter(|t| t.0 != missing).cloned().collect();
        write_checkpoint(dir.path(), &cfg, &kept, "");
        let err = load(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains(&file.display().to_string()) && err.contains(&format!("`{missing}`")),
            "{err}"
        );
        // A word table of another size.
        tensors[0].1 = vec![49, 16];
        tensors[0].2.truncate(49 * 16);
        write_checkpoint(dir.path(), &cfg, &tensors, "");
        let err = load(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains(&file.display().to_string())
                && err.contains("`embeddings.word_embeddings.weight`")
                && err.contains("[49, 16]")
                && err.contains("[50, 16]"),
            "{err}"
        );
        std::fs::remove_file(&file).unwrap();
        let err = load(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains(&file.display().to_string()) && err.contains("not found"),
            "{err}"
        );
    }

    /// all-MiniLM-L6-v2's `config.json`, as published.
    const MINILM_CONFIG: &str = r#"{
      "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
      "architectures": ["BertModel"],
      "attention_probs_dropout_prob": 0.1,
      "gradient_checkpointing": false,
      "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1,
      "hidden_size": 384,
      "initializer_range": 0.02,
      "intermediate_size": 1536,
      "layer_norm_eps": 1e-12,
      "max_position_embeddings": 512,
      "model_type": "bert",
      "num_attention_heads": 12,
      "num_hidden_layers": 6,
      "pad_token_id": 0,
      "position_embedding_type": "absolute",
      "transformers_version": "4.8.2",
      "type_vocab_size": 2,
      "use_cache": true,
      "vocab_size": 30522
    }"#;

    #[test]
    fn the_config_gives_every_size() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), MINILM_CONFIG).unwrap();
        let spec = BertConfig::read(dir.path()).unwrap().encoder_spec(0.1);
        assert_eq!(spec.kind, BERT);
        assert_eq!(
            (spec.vocab_size, spec.hidden_dim, spec.layers, spec.heads),
            (30522, 384, 6, 12)
        );
        assert_eq!(
            (spec.ff_dim(), spec.max_positions, spec.output_dim()),
            (1536, 512, 384)
        );
        let bert = spec.bert.unwrap();
        assert_eq!(bert.layer_norm_eps, 1e-12);
        assert_eq!(
            (bert.type_vocab_size, bert.hidden_act.as_str()),
            (2, "gelu")
        );
    }

    #[test]
    fn a_bad_config_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        for (from, to, key) in [
            (
                r#""hidden_act": "gelu""#,
                r#""hidden_act": "swish""#,
                "hidden_act",
            ),
            (r#""hidden_size": 384,"#, "", "hidden_size"),
            (
                r#""num_attention_heads": 12"#,
                r#""num_attention_heads": 5"#,
                "num_attention_heads",
            ),
            (
                r#""model_type": "bert""#,
                r#""model_type": "roberta""#,
                "model_type",
            ),
            (
                r#""position_embedding_type": "absolute""#,
                r#""position_embedding_type": "relative_key""#,
                "position_embedding_type",
            ),
        ] {
            assert!(MINILM_CONFIG.contains(from), "{from}");
            std::fs::write(&path, MINILM_CONFIG.replace(from, to)).unwrap();
            let err = BertConfig::read(dir.path()).err().unwrap().to_string();
            assert!(
                err.contains(&path.display().to_string()) && err.contains(key),
                "{key}: {err}"
            );
        }
        std::fs::remove_file(&path).unwrap();
        let err = BertConfig::read(dir.path()).err().unwrap().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    /// `erf` to about 1e-7 (Abramowitz and Stegun 7.1.26).
    fn erf(x: f64) -> f64 {
        let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
        let poly = t
            * (0.254_829_592
                + t * (-0.284_496_736
                    + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
        let y = 1.0 - poly * (-x * x).exp();
        if x < 0.0 { -y } else { y }
    }

    /// Hugging Face's `BertModel` written out with loops, from the
    /// checkpoint's tensors as saved (`(out, in)` weights, the key bias
    /// included). `scale` is the attention's `1 / sqrt(d_head)`.
    fn reference(
        cfg: &BertConfig,
        w: &HashMap<String, Vec<f32>>,
        ids: &[Vec<u32>],
        mask: &[Vec<f32>],
        scale: f64,
    ) -> Vec<Vec<Vec<f64>>> {
        let h = cfg.hidden_size;
        let get = |n: &str| -> Vec<f64> { w[n].iter().map(|&x| f64::from(x)).collect() };
        // y[o] = sum_i W[o][i] x[i] + b[o], W stored (out, in).
        let dense = |x: &[f64], name: &str| -> Vec<f64> {
            let (wt, b) = (get(&format!("{name}.weight")), get(&format!("{name}.bias")));
            let input = x.len();
            (0..b.len())
                .map(|o| b[o] + (0..input).map(|i| wt[o * input + i] * x[i]).sum::<f64>())
                .collect()
        };
        let norm = |x: &[f64], name: &str| -> Vec<f64> {
            let (g, b) = (get(&format!("{name}.weight")), get(&format!("{name}.bias")));
            let n = x.len() as f64;
            let mean = x.iter().sum::<f64>() / n;
            let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
            let sd = (var + cfg.layer_norm_eps).sqrt();
            (0..x.len())
                .map(|i| (x[i] - mean) / sd * g[i] + b[i])
                .collect()
        };
        let (we, pe, te) = (
            get("embeddings.word_embeddings.weight"),
            get("embeddings.position_embeddings.weight"),
            get("embeddings.token_type_embeddings.weight"),
        );
        let nh = cfg.num_attention_heads;
        let dh = h / nh;
        let mut out = Vec::new();
        for (row, m) in ids.iter().zip(mask) {
            let mut xs: Vec<Vec<f64>> = row
                .iter()
                .enumerate()
                .map(|(p, &id)| {
                    let e: Vec<f64> = (0..h)
                        .map(|i| we[id as usize * h + i] + pe[p * h + i] + te[i])
                        .collect();
                    norm(&e, "embeddings.LayerNorm")
                })
                .collect();
            for l in 0..cfg.num_hidden_layers {
                let at = |s: &str| format!("encoder.layer.{l}.{s}");
                let q: Vec<_> = xs
                    .iter()
                    .map(|x| dense(x, &at("attention.self.query")))
                    .collect();
                let k: Vec<_> = xs
                    .iter()
                    .map(|x| dense(x, &at("attention.self.key")))
                    .collect();
                let v: Vec<_> = xs
                    .iter()
                    .map(|x| dense(x, &at("attention.self.value")))
                    .collect();
                let t = xs.len();
                let mut next = Vec::with_capacity(t);
                for i in 0..t {
                    let mut ctx = vec![0.0; h];
                    for head in 0..nh {
                        let r = head * dh..(head + 1) * dh;
                        let scores: Vec<f64> = (0..t)
                            .map(|j| {
                                let s: f64 = r.clone().map(|c| q[i][c] * k[j][c]).sum();
                                s * scale + if m[j] > 0.0 { 0.0 } else { -1e9 }
                            })
                            .collect();
                        let top = scores.iter().cloned().fold(f64::MIN, f64::max);
                        let e: Vec<f64> = scores.iter().map(|s| (s - top).exp()).collect();
                        let z: f64 = e.iter().sum();
                        for c in r {
                            ctx[c] = (0..t).map(|j| e[j] / z * v[j][c]).sum();
                        }
                    }
                    let a = dense(&ctx, &at("attention.output.dense"));
                    let sum: Vec<f64> = a.iter().zip(&xs[i]).map(|(a, x)| a + x).collect();
                    let x1 = norm(&sum, &at("attention.output.LayerNorm"));
                    let inner: Vec<f64> = dense(&x1, &at("intermediate.dense"))
                        .into_iter()
                        .map(|u| 0.5 * u * (1.0 + erf(u / std::f64::consts::SQRT_2)))
                        .collect();
                    let f = dense(&inner, &at("output.dense"));
                    let sum: Vec<f64> = f.iter().zip(&x1).map(|(f, x)| f + x).collect();
                    next.push(norm(&sum, &at("output.LayerNorm")));
                }
                xs = next;
            }
            out.push(xs);
        }
        out
    }

    /// The forward pass against [`reference`]: a transposed weight, a
    /// missing scale, a post-LN/pre-LN mix-up or a wrong mask would all
    /// show. Real (unpadded) positions are compared.
    #[test]
    fn the_forward_pass_matches_a_plain_loop_reference() {
        let cfg = BertConfig {
            vocab_size: 12,
            hidden_size: 8,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 12,
            max_position_embeddings: 6,
            ..tiny_config()
        };
        let tensors = checkpoint_tensors(&cfg, 4);
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), &cfg, &tensors, "");
        let (enc, _) = load(dir.path()).unwrap();
        let ids = vec![vec![1u32, 5, 9, 3, 11], vec![2, 7, 4, 0, 0]];
        let mask = vec![vec![1f32; 5], vec![1.0, 1.0, 1.0, 0.0, 0.0]];
        let d = Device::Cpu;
        let got = enc
            .forward(
                &Tensor::new(ids.clone(), &d).unwrap(),
                &Tensor::new(mask.clone(), &d).unwrap(),
                None,
            )
            .unwrap()
            .to_vec3::<f32>()
            .unwrap();
        let w: HashMap<String, Vec<f32>> = tensors.into_iter().map(|(n, _, v)| (n, v)).collect();
        let max_diff = |want: &[Vec<Vec<f64>>]| {
            let mut worst = 0f64;
            for (b, m) in mask.iter().enumerate() {
                for (p, _) in m.iter().enumerate().filter(|(_, m)| **m > 0.0) {
                    for (g, w) in got[b][p].iter().zip(&want[b][p]) {
                        worst = worst.max((f64::from(*g) - w).abs());
                    }
                }
            }
            worst
        };
        let scale = 1.0 / ((cfg.hidden_size / cfg.num_attention_heads) as f64).sqrt();
        let diff = max_diff(&reference(&cfg, &w, &ids, &mask, scale));
        assert!(diff < 1e-4, "max difference {diff}");
        // The comparison can fail: without the scale the outputs differ.
        let unscaled = max_diff(&reference(&cfg, &w, &ids, &mask, 1.0));
        assert!(unscaled > 1e-2, "{unscaled}");
    }

    /// The check the issue asks of every encoder, at the encoder level
    /// (the model-level test runs it with every head kind).
    #[test]
    fn every_parameter_receives_a_gradient_through_dropout() {
        let cfg = tiny_config();
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), &cfg, &checkpoint_tensors(&cfg, 2), "");
        let spec = BertConfig::read(dir.path()).unwrap().encoder_spec(0.1);
        let mut p = ParamStore::new(3, &Device::Cpu);
        let enc = p.scoped("encoder", |p| BertEncoder::new(p, &spec)).unwrap();
        let varmap = p.into_varmap();
        load_weights(&varmap, "encoder", &weights_file(dir.path())).unwrap();
        let (ids, mask) = ids_and_mask();
        let mut rng = StdRng::seed_from_u64(1);
        let out = enc.forward(&ids, &mask, Some(&mut rng)).unwrap();
        // A weighted sum, so no gradient vanishes by symmetry.
        let n = out.elem_count();
        let weights: Vec<f32> = (0..n).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let loss = out
            .mul(&Tensor::from_vec(weights, out.shape(), &Device::Cpu).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        crate::model::tests::assert_every_gradient_nonzero(&loss, &varmap, "bert");
    }
}
