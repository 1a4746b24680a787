//! `manifest.json`, written last into every stage folder. It records what the
//! stage was computed from (the fingerprint) and what it wrote, which is how
//! `cargo xtask run` and each stage binary decide that a stage is cached.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::PipelineConfig;
use crate::error::Result;
use crate::hash::Fingerprinter;
use crate::stage::Stage;

/// Bumped when the manifest layout itself changes.
pub const MANIFEST_SCHEMA_VERSION: u32 = 1;

/// What a stage was computed from: an upstream stage folder or a raw file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRef {
    pub name: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputInfo {
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub stage: Stage,
    pub schema_version: u32,
    /// The stage's own version: bumped when its output changes meaning.
    pub stage_version: u32,
    pub fingerprint: String,
    pub inputs: Vec<InputRef>,
    /// Every file the stage wrote, relative to its folder.
    pub outputs: BTreeMap<String, OutputInfo>,
    /// Named row counts (`train`, `quarantined`, ...).
    pub rows: BTreeMap<String, u64>,
    /// Named durations in milliseconds; `total` is always present.
    pub timings_ms: BTreeMap<String, u64>,
    pub created_unix_s: u64,
}

impl Manifest {
    pub const FILE: &'static str = "manifest.json";

    pub fn read(dir: &Path) -> Result<Manifest> {
        crate::fsio::read_json(&dir.join(Self::FILE))
    }

    /// The manifest of `dir` if it exists, matches `fingerprint`, and every
    /// output it lists is still there with the recorded size.
    pub fn fresh(dir: &Path, fingerprint: &str) -> Option<Manifest> {
        let m = Self::read(dir).ok()?;
        if m.fingerprint != fingerprint || m.schema_version != MANIFEST_SCHEMA_VERSION {
            return None;
        }
        let intact = m.outputs.iter().all(|(name, info)| {
            std::fs::metadata(dir.join(name))
                .map(|md| md.len() == info.bytes)
                .unwrap_or(false)
        });
        intact.then_some(m)
    }
}

/// `hash(stage, stage version, config section, inputs)`.
pub fn fingerprint(
    stage: Stage,
    stage_version: u32,
    cfg: &PipelineConfig,
    inputs: &[InputRef],
) -> String {
    let mut f = Fingerprinter::new()
        .part("stage", stage.name().as_bytes())
        .part("stage_version", &stage_version.to_le_bytes())
        .json("config", &stage.config_section(cfg));
    for i in inputs {
        f = f.part(&i.name, i.fingerprint.as_bytes());
    }
    f.finish()
}

/// Collects a stage's manifest while it writes its outputs.
pub struct ManifestBuilder {
    manifest: Manifest,
    started: std::time::Instant,
}

impl ManifestBuilder {
    pub fn new(
        stage: Stage,
        stage_version: u32,
        fingerprint: String,
        inputs: Vec<InputRef>,
    ) -> Self {
        Self {
            manifest: Manifest {
                stage,
                schema_version: MANIFEST_SCHEMA_VERSION,
                stage_version,
                fingerprint,
                inputs,
                outputs: BTreeMap::new(),
                rows: BTreeMap::new(),
                timings_ms: BTreeMap::new(),
                created_unix_s: 0,
            },
            started: std::time::Instant::now(),
        }
    }

    pub fn rows(&mut self, name: &str, n: u64) -> &mut Self {
        self.manifest.rows.insert(name.to_string(), n);
        self
    }

    pub fn timing(&mut self, name: &str, since: std::time::Instant) -> &mut Self {
        self.manifest
            .timings_ms
            .insert(name.to_string(), since.elapsed().as_millis() as u64);
        self
    }

    /// Records every file in the staging folder (recursively), then writes
    /// the manifest into it. Call right before [`crate::StagingDir::commit`].
    pub fn finish(
        mut self,
        staging: &crate::StagingDir,
        file_rows: &BTreeMap<String, u64>,
    ) -> Result<Manifest> {
        let mut files = Vec::new();
        list_files(staging.dir(), staging.dir(), &mut files)?;
        for (rel, bytes) in files {
            let rows = file_rows.get(&rel).copied();
            self.manifest
                .outputs
                .insert(rel, OutputInfo { bytes, rows });
        }
        self.manifest
            .timings_ms
            .insert("total".into(), self.started.elapsed().as_millis() as u64);
        self.manifest.created_unix_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        crate::fsio::write_json(&staging.path(Manifest::FILE), &self.manifest)?;
        Ok(self.manifest)
    }
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<(String, u64)>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| crate::CoreError::io(dir, e))?;
    for entry in rd {
        let entry = entry.map_err(|e| crate::CoreError::io(dir, e))?;
        let path = entry.path();
        let md = entry
            .metadata()
            .map_err(|e| crate::CoreError::io(&path, e))?;
        if md.is_dir() {
            list_files(root, &path, out)?;
        } else {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            if rel != Manifest::FILE {
                out.push((rel, md.len()));
            }
        }
    }
    Ok(())
}

/// The manifest of an upstream stage, as an input reference. Errors name the
/// folder and say which stage to run first.
pub fn upstream(dir: &Path, expected: Stage) -> Result<(Manifest, InputRef)> {
    let m = Manifest::read(dir).map_err(|e| {
        crate::CoreError::artifact(
            dir,
            format!(
                "no complete `{expected}` output here (run `{}` first): {e}",
                expected.binary()
            ),
        )
    })?;
    if m.stage != expected {
        return Err(crate::CoreError::artifact(
            dir,
            format!("expected the output of `{expected}`, found `{}`", m.stage),
        ));
    }
    let r = InputRef {
        name: expected.name().to_string(),
        fingerprint: m.fingerprint.clone(),
    };
    Ok((m, r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StagingDir;

    fn cfg(extra: &str) -> PipelineConfig {
        let text = format!(
            "[pipeline]\nname = \"t\"\n[[datasets]]\nname = \"d\"\nformat = \"jsonl\"\nfiles = {{ all = \"d.jsonl\" }}\n\
             [[tasks]]\nname = \"s\"\ndataset = \"d\"\ncolumn = \"l\"\ntype = \"classification\"\n{extra}"
        );
        PipelineConfig::from_toml_str(&text, Path::new("t.toml")).unwrap()
    }

    #[test]
    fn fingerprint_covers_only_the_stage_section() {
        let a = cfg("");
        let b = cfg("[train]\nepochs = 3\n");
        let inputs = [];
        assert_eq!(
            fingerprint(Stage::Clean, 1, &a, &inputs),
            fingerprint(Stage::Clean, 1, &b, &inputs)
        );
        assert_ne!(
            fingerprint(Stage::Train, 1, &a, &inputs),
            fingerprint(Stage::Train, 1, &b, &inputs)
        );
        assert_ne!(
            fingerprint(Stage::Train, 1, &a, &inputs),
            fingerprint(Stage::Train, 2, &a, &inputs)
        );
    }

    #[test]
    fn fingerprint_follows_inputs() {
        let a = cfg("");
        let i1 = [InputRef {
            name: "clean".into(),
            fingerprint: "x".into(),
        }];
        let i2 = [InputRef {
            name: "clean".into(),
            fingerprint: "y".into(),
        }];
        assert_ne!(
            fingerprint(Stage::Split, 1, &a, &i1),
            fingerprint(Stage::Split, 1, &a, &i2)
        );
    }

    #[test]
    fn fresh_checks_fingerprint_and_outputs() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("clean");
        let staging = StagingDir::begin(&out).unwrap();
        std::fs::write(staging.path("a.parquet"), b"12345").unwrap();
        let mut rows = BTreeMap::new();
        rows.insert("a.parquet".to_string(), 2);
        let b = ManifestBuilder::new(Stage::Clean, 1, "fp".into(), vec![]);
        b.finish(&staging, &rows).unwrap();
        staging.commit().unwrap();

        let m = Manifest::fresh(&out, "fp").expect("fresh");
        assert_eq!(
            m.outputs["a.parquet"],
            OutputInfo {
                bytes: 5,
                rows: Some(2)
            }
        );
        assert!(Manifest::fresh(&out, "other").is_none());
        std::fs::write(out.join("a.parquet"), b"1").unwrap();
        assert!(
            Manifest::fresh(&out, "fp").is_none(),
            "a changed output is not fresh"
        );
    }
}
