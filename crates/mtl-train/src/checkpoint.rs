//! Checkpoints for `mtl-train --resume`.
//!
//! The stage writes its output into a staging folder that only replaces
//! `train/` at the very end, so a killed run leaves nothing there. The
//! checkpoint therefore lives beside it, in `<out>.checkpoint/` (for
//! `runs/<p>/train`: `runs/<p>/train.checkpoint/`), and is itself written
//! through a staging folder and swapped in whole at each evaluation, so a
//! kill leaves the previous checkpoint or the new one, never half of one.
//! A run that completes deletes it.
//!
//! ```text
//! train.checkpoint/
//!   model/              a complete bundle of the current weights (mtl-predict reads it)
//!   state.json          fingerprint, step, epoch, sampler, best score, DWA means, ...
//!   state.safetensors   AdamW moments (adam.{m,v}.<param>), the best weights
//!                       (best.<param>), the uncertainty log-variances (log_var.<task>)
//!   log.jsonl           the training log up to this point
//! ```
//!
//! No generator state is saved: every random draw of step `s` comes from a
//! generator seeded with `(pipeline.seed, s, purpose)` (see
//! [`crate::trainer`]), so the step number restores it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use mtl_core::StagingDir;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

pub const MODEL: &str = "model";
pub const STATE_JSON: &str = "state.json";
pub const STATE_TENSORS: &str = "state.safetensors";
pub const LOG: &str = "log.jsonl";

/// Where the checkpoint of the stage folder `out_dir` lives.
pub fn dir_for(out_dir: &Path) -> PathBuf {
    let name = out_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "train".into());
    out_dir.with_file_name(format!("{name}.checkpoint"))
}

/// What [`write`] puts in a checkpoint.
pub struct Contents<'a, S: Serialize> {
    pub state: &'a S,
    pub tensors: &'a HashMap<String, Tensor>,
    /// The training log so far (copied).
    pub log: &'a Path,
    /// Writes the model bundle into the folder it is given.
    pub save_model: &'a dyn Fn(&Path) -> Result<()>,
}

/// Replaces the checkpoint in `dir` atomically.
pub fn write<S: Serialize>(dir: &Path, c: Contents<'_, S>) -> Result<()> {
    let staging = StagingDir::begin(dir)?;
    (c.save_model)(&staging.path(MODEL))?;
    let tensors = staging.path(STATE_TENSORS);
    candle_core::safetensors::save(c.tensors, &tensors)?;
    if c.log.exists() {
        let to = staging.path(LOG);
        std::fs::copy(c.log, &to).map_err(|e| mtl_core::CoreError::io(&to, e))?;
    }
    // Last, so that a folder with state.json is complete.
    mtl_core::fsio::write_json(&staging.path(STATE_JSON), c.state)?;
    staging.commit()?;
    Ok(())
}

/// A checkpoint read back.
pub struct Loaded<S> {
    pub state: S,
    pub tensors: HashMap<String, Tensor>,
    pub dir: PathBuf,
}

impl<S> Loaded<S> {
    pub fn weights(&self) -> PathBuf {
        self.dir.join(MODEL).join(mtl_model::bundle::WEIGHTS)
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join(LOG)
    }
}

/// The checkpoint in `dir`, or `None` when there is none.
///
/// A kill in the middle of the swap (after the old checkpoint was moved
/// aside, before the new one took its place) leaves both as hidden
/// siblings (`.<name>.tmp-<pid>`, complete because `state.json` is
/// written last, and `.<name>.old-<pid>`); the newer one is used then.
pub fn read<S: DeserializeOwned>(dir: &Path, device: &Device) -> Result<Option<Loaded<S>>> {
    let Some(dir) = find(dir) else {
        return Ok(None);
    };
    let dir = dir.as_path();
    let state_path = dir.join(STATE_JSON);
    let state = mtl_core::fsio::read_json(&state_path)?;
    let tensors_path = dir.join(STATE_TENSORS);
    let tensors =
        candle_core::safetensors::load(&tensors_path, device).map_err(|e| Error::Data {
            path: tensors_path.clone(),
            message: e.to_string(),
        })?;
    Ok(Some(Loaded {
        state,
        tensors,
        dir: dir.to_path_buf(),
    }))
}

fn find(dir: &Path) -> Option<PathBuf> {
    if dir.join(STATE_JSON).exists() {
        return Some(dir.to_path_buf());
    }
    let leftovers = leftovers(dir);
    let of_kind = |kind: &str| {
        leftovers
            .iter()
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(kind))
                    && p.join(STATE_JSON).exists()
            })
            .cloned()
    };
    of_kind(".tmp-").or_else(|| of_kind(".old-"))
}

/// Hidden siblings that staging left behind for `dir`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Vec::new();
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let name = name.to_string_lossy();
    let prefixes = [format!(".{name}.tmp-"), format!(".{name}.old-")];
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            prefixes.iter().any(|p| n.starts_with(p.as_str()))
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Deletes the checkpoint and any leftovers of an interrupted swap (after
/// a completed run).
pub fn remove(dir: &Path) -> Result<()> {
    for d in std::iter::once(dir.to_path_buf()).chain(leftovers(dir)) {
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|e| mtl_core::CoreError::io(&d, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_sits_beside_the_stage_folder_and_round_trips() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("runs/p/train");
        let dir = dir_for(&out);
        assert_eq!(dir, root.path().join("runs/p/train.checkpoint"));
        assert!(
            read::<serde_json::Value>(&dir, &Device::Cpu)
                .unwrap()
                .is_none()
        );

        let log = root.path().join("log.jsonl");
        std::fs::write(&log, "{\"step\":0}\n").unwrap();
        let t = Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap();
        let tensors = HashMap::from([("adam.m.x".to_string(), t)]);
        for step in [3, 7] {
            write(
                &dir,
                Contents {
                    state: &serde_json::json!({"step": step}),
                    tensors: &tensors,
                    log: &log,
                    save_model: &|p: &Path| {
                        std::fs::create_dir_all(p).unwrap();
                        std::fs::write(p.join("model.safetensors"), b"w").unwrap();
                        Ok(())
                    },
                },
            )
            .unwrap();
        }
        let back = read::<serde_json::Value>(&dir, &Device::Cpu)
            .unwrap()
            .unwrap();
        assert_eq!(back.state["step"], 7);
        let m: Vec<f32> = back.tensors["adam.m.x"].to_vec1().unwrap();
        assert_eq!(m, [1.0, 2.0]);
        assert!(back.weights().exists());
        assert_eq!(
            std::fs::read_to_string(back.log()).unwrap(),
            "{\"step\":0}\n"
        );
        // Only the checkpoint itself is left beside the stage folder.
        let names: Vec<_> = std::fs::read_dir(root.path().join("runs/p"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["train.checkpoint"]);
        remove(&dir).unwrap();
        assert!(!dir.exists());
    }

    #[test]
    fn a_kill_during_the_swap_leaves_a_usable_checkpoint() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("train.checkpoint");
        let log = root.path().join("log.jsonl");
        std::fs::write(&log, "").unwrap();
        let save = |step: u32| {
            write(
                &dir,
                Contents {
                    state: &serde_json::json!({ "step": step }),
                    tensors: &HashMap::new(),
                    log: &log,
                    save_model: &|p: &Path| {
                        std::fs::create_dir_all(p).unwrap();
                        Ok(())
                    },
                },
            )
            .unwrap();
        };
        save(4);
        // The old checkpoint moved aside, the new one not yet in place.
        let old = root.path().join(".train.checkpoint.old-1");
        std::fs::rename(&dir, &old).unwrap();
        let read_step = || {
            read::<serde_json::Value>(&dir, &Device::Cpu)
                .unwrap()
                .unwrap()
                .state["step"]
                .clone()
        };
        assert_eq!(read_step(), 4);
        save(8);
        let new = root.path().join(".train.checkpoint.tmp-1");
        std::fs::rename(&dir, &new).unwrap();
        assert_eq!(read_step(), 8, "the complete new one wins");
        remove(&dir).unwrap();
        assert!(!old.exists() && !new.exists());
        assert!(
            read::<serde_json::Value>(&dir, &Device::Cpu)
                .unwrap()
                .is_none()
        );
    }
}
