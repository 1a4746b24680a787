//! The pipeline's stages, their order, and what each one's fingerprint covers.

use serde::{Deserialize, Serialize};

use crate::config::PipelineConfig;

/// Stages in run order. A stage reads only the artifacts of earlier stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Clean,
    Split,
    Tokenize,
    Train,
    Eval,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Clean,
        Stage::Split,
        Stage::Tokenize,
        Stage::Train,
        Stage::Eval,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Clean => "clean",
            Stage::Split => "split",
            Stage::Tokenize => "tokenize",
            Stage::Train => "train",
            Stage::Eval => "eval",
        }
    }

    /// Name of the stage's binary.
    pub fn binary(self) -> &'static str {
        match self {
            Stage::Clean => "mtl-clean",
            Stage::Split => "mtl-split",
            Stage::Tokenize => "mtl-tokenize",
            Stage::Train => "mtl-train",
            Stage::Eval => "mtl-eval",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.name() == s)
    }

    /// The config this stage reads, as canonical JSON. Only these values
    /// enter its fingerprint, so editing `[train]` never re-runs `clean`.
    pub fn config_section(self, cfg: &PipelineConfig) -> serde_json::Value {
        match self {
            Stage::Clean => serde_json::json!({
                "datasets": to_json(&cfg.datasets),
                "tasks": to_json(&cfg.tasks),
            }),
            Stage::Split => serde_json::json!({
                "tasks": to_json(&cfg.tasks),
                "split": to_json(&cfg.split),
                "features": to_json(&cfg.features),
                "seed": cfg.pipeline.seed,
            }),
            Stage::Tokenize => serde_json::json!({
                "tokenize": to_json(&cfg.tokenize),
            }),
            Stage::Train => serde_json::json!({
                "tasks": to_json(&cfg.tasks),
                "model": to_json(&cfg.model),
                "train": to_json(&cfg.train),
                // The trainer pads batches; tokenize only records the option.
                "pad_to": cfg.tokenize.pad_to,
                "seed": cfg.pipeline.seed,
            }),
            Stage::Eval => serde_json::json!({
                "metrics": cfg.tasks.iter().map(|t| (t.name.clone(), to_json(&t.metric))).collect::<serde_json::Map<_, _>>(),
                "eval": to_json(&cfg.eval),
            }),
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn to_json<T: Serialize>(x: &T) -> serde_json::Value {
    serde_json::to_value(x).expect("config values always serialize")
}
