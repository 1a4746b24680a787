//! Atomic file and folder writes. Nothing a stage writes is visible under its
//! final name until it is complete: files go through a temporary name and a
//! rename, stage folders through [`StagingDir`].

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{CoreError, Result};

/// Writes `bytes` to `path` through a temporary sibling and a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_sibling(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| CoreError::io(path, e))
}

/// Pretty JSON, written atomically, with a trailing newline.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| CoreError::Json {
        path: path.to_path_buf(),
        source: e,
    })?;
    bytes.push(b'\n');
    atomic_write(path, &bytes)
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| CoreError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| CoreError::Json {
        path: path.to_path_buf(),
        source: e,
    })
}

/// `dir/.name.tmp-<pid>`: hidden, and unique per process.
pub fn tmp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Removes `.<name>.tmp-<pid>` and `.<name>.old-<pid>` folders left by
/// processes that no longer run (a stage killed with SIGKILL cannot clean
/// up after itself). Only where `/proc` tells which processes live; a
/// folder that cannot be removed is left for the next run.
fn sweep_dead_siblings(parent: &Path, final_dir: &Path) {
    let proc_fs = Path::new("/proc/self");
    let Some(name) = final_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return;
    };
    if !proc_fs.exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let pid = [".tmp-", ".old-"].iter().find_map(|kind| {
            file.strip_prefix(&format!(".{name}{kind}"))
                .and_then(|p| p.parse::<u32>().ok())
        });
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A stage's output folder under construction. Files are written into a
/// hidden temporary folder; [`StagingDir::commit`] swaps it in for the final
/// folder, so a crash leaves either the old complete output or nothing.
pub struct StagingDir {
    final_dir: PathBuf,
    tmp_dir: PathBuf,
    committed: bool,
}

impl StagingDir {
    pub fn begin(final_dir: &Path) -> Result<Self> {
        let parent = final_dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| CoreError::io(parent, e))?;
        sweep_dead_siblings(parent, final_dir);
        let tmp_dir = tmp_sibling(final_dir);
        if tmp_dir.exists() {
            std::fs::remove_dir_all(&tmp_dir).map_err(|e| CoreError::io(&tmp_dir, e))?;
        }
        std::fs::create_dir_all(&tmp_dir).map_err(|e| CoreError::io(&tmp_dir, e))?;
        Ok(Self {
            final_dir: final_dir.to_path_buf(),
            tmp_dir,
            committed: false,
        })
    }

    /// Where to write `name` now.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp_dir.join(name)
    }

    pub fn dir(&self) -> &Path {
        &self.tmp_dir
    }

    pub fn final_dir(&self) -> &Path {
        &self.final_dir
    }

    /// Replaces the final folder with the staged one.
    pub fn commit(mut self) -> Result<PathBuf> {
        let old = self.final_dir.with_file_name(format!(
            ".{}.old-{}",
            self.final_dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy(),
            std::process::id()
        ));
        if self.final_dir.exists() {
            std::fs::rename(&self.final_dir, &old)
                .map_err(|e| CoreError::io(&self.final_dir, e))?;
        }
        std::fs::rename(&self.tmp_dir, &self.final_dir)
            .map_err(|e| CoreError::io(&self.final_dir, e))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| CoreError::io(&old, e))?;
        }
        self.committed = true;
        Ok(self.final_dir.clone())
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp_dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_sweeps_folders_of_dead_processes_only() {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("train");
        // No process has pid u32::MAX (Linux caps pids far below it); our
        // own pid is alive.
        let dead = dir.path().join(".train.tmp-4294967295");
        let live = dir
            .path()
            .join(format!(".train.old-{}", std::process::id()));
        let other = dir.path().join(".split.tmp-4294967295");
        for d in [&dead, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::create_dir_all(&live).unwrap();
        let staging = StagingDir::begin(&out).unwrap();
        assert!(!dead.exists(), "a dead process's staging folder is removed");
        assert!(other.exists(), "another stage's folder is not touched");
        assert!(live.exists(), "a live process's folder is not touched");
        drop(staging);
    }

    #[test]
    fn staged_output_appears_only_on_commit() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("stage");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("old.txt"), "old").unwrap();

        let staging = StagingDir::begin(&out).unwrap();
        atomic_write(&staging.path("new.txt"), b"new").unwrap();
        assert!(out.join("old.txt").exists());
        assert!(!out.join("new.txt").exists());
        staging.commit().unwrap();
        assert!(!out.join("old.txt").exists());
        assert_eq!(std::fs::read_to_string(out.join("new.txt")).unwrap(), "new");
        let leftovers: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary folders must be gone");
    }

    #[test]
    fn dropped_staging_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let out = root.path().join("stage");
        {
            let staging = StagingDir::begin(&out).unwrap();
            atomic_write(&staging.path("x"), b"x").unwrap();
        }
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
