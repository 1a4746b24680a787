//! The `lines` format (TweetEval's layout): a text file with one example
//! per line, a `_labels.txt` file beside it with the label id on the same
//! line number, and a `mapping.txt` from label ids to names. A line whose
//! label id is not in the mapping is quarantined; files that do not line up
//! stop the stage, since every pairing after the gap would be wrong.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mtl_core::TaskKind;
use mtl_core::config::{DatasetConfig, TaskConfig};

use crate::error::{Error, Result};
use crate::read::{self, Label, Parsed, Quarantined, Row, SourceFile};
use crate::reason;

const TEXT_SUFFIX: &str = "_text.txt";
const LABELS_SUFFIX: &str = "_labels.txt";
const MAPPING: &str = "mapping.txt";

/// The files read alongside a text file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Companions {
    pub labels: PathBuf,
    pub mapping: PathBuf,
}

/// Finds the labels and mapping files of `text`. The mapping is looked for
/// beside the text, then one folder up: TweetEval's stance targets share
/// the `stance/mapping.txt` of their parent folder.
pub(crate) fn companions(text: &Path) -> Result<Companions> {
    let name = text
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(TEXT_SUFFIX))
        .ok_or_else(|| Error::NotATextFile {
            path: text.to_path_buf(),
        })?;
    let labels = text.with_file_name(format!("{name}{LABELS_SUFFIX}"));
    if !labels.is_file() {
        return Err(Error::MissingCompanion {
            text: text.to_path_buf(),
            what: "labels",
            path: labels,
        });
    }
    let beside = text.with_file_name(MAPPING);
    let mapping = if beside.is_file() {
        beside
    } else {
        text.parent()
            .and_then(Path::parent)
            .map(|p| p.join(MAPPING))
            .filter(|p| p.is_file())
            .ok_or_else(|| Error::MissingCompanion {
                text: text.to_path_buf(),
                what: "mapping",
                path: beside,
            })?
    };
    Ok(Companions { labels, mapping })
}

/// `id<TAB>name` lines, or `id<TAB>emoji<TAB>name`: the name is the third
/// column when there is one.
pub(crate) fn read_mapping(path: &Path) -> Result<HashMap<String, String>> {
    let bytes = read::read_bytes(path)?;
    let mut out = HashMap::new();
    for (i, line) in read::split_lines(&bytes).into_iter().enumerate() {
        let bad = |detail: String| Error::BadMapping {
            path: path.to_path_buf(),
            line: i + 1,
            detail,
        };
        let line = std::str::from_utf8(line).map_err(|e| bad(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let name = match fields.as_slice() {
            [_, name] | [_, _, name, ..] => *name,
            _ => "",
        };
        let id = fields[0];
        if id.is_empty() || name.is_empty() {
            return Err(bad(format!(
                "expected `id<TAB>name` or `id<TAB>emoji<TAB>name`, found `{line}`"
            )));
        }
        if out.insert(id.to_string(), name.to_string()).is_some() {
            return Err(bad(format!("label id `{id}` is mapped twice")));
        }
    }
    Ok(out)
}

/// Reads one text file and its labels, appending to `out`. `tasks` is the
/// dataset's single classification or multilabel task (checked by the
/// stage).
pub(crate) fn read_lines(
    ds: &DatasetConfig,
    tasks: &[&TaskConfig],
    src: &SourceFile,
    out: &mut Parsed,
) -> Result<()> {
    let comp = companions(&src.path)?;
    let mapping = read_mapping(&comp.mapping)?;
    let text_bytes = read::read_bytes(&src.path)?;
    let label_bytes = read::read_bytes(&comp.labels)?;
    let texts = read::split_lines(&text_bytes);
    let labels = read::split_lines(&label_bytes);
    if texts.len() != labels.len() {
        return Err(Error::LineCountMismatch {
            text: src.path.clone(),
            text_lines: texts.len(),
            labels: comp.labels,
            label_lines: labels.len(),
        });
    }
    let file_name = src
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| src.given.clone());
    let labels_name = comp
        .labels
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let task = tasks.first().map(|t| t.name.as_str()).unwrap_or_default();
    // A multilabel task's label line holds ids joined by its separator; an
    // empty one means no label applies.
    let multi = tasks
        .first()
        .is_some_and(|t| t.kind == TaskKind::Multilabel);
    let separator = tasks
        .first()
        .and_then(|t| t.separator.as_deref())
        .filter(|_| multi);
    for (i, (text, label)) in texts.into_iter().zip(labels).enumerate() {
        let line = read::line_number(&src.path, i)?;
        out.read += 1;
        let quarantine = |reason, detail, raw: String| Quarantined {
            file: src.index,
            line,
            reason,
            detail,
            raw,
        };
        let text = match std::str::from_utf8(text) {
            Ok(t) => t.trim_end(),
            Err(e) => {
                out.quarantined.push(quarantine(
                    reason::INVALID_UTF8,
                    e.to_string(),
                    String::from_utf8_lossy(text).into_owned(),
                ));
                continue;
            }
        };
        let ids = String::from_utf8_lossy(label);
        let ids: Vec<&str> = match separator {
            Some(sep) => ids
                .split(sep)
                .map(str::trim)
                .filter(|i| !i.is_empty())
                .collect(),
            None => vec![ids.trim()],
        };
        let names: std::result::Result<Vec<String>, &str> = ids
            .iter()
            .map(|id| mapping.get(*id).cloned().ok_or(*id))
            .collect();
        let mut names = match names {
            Ok(names) => names,
            Err(id) => {
                out.quarantined.push(quarantine(
                    reason::BAD_LABEL,
                    format!(
                        "task `{task}`: label id `{id}` ({labels_name} line {line}) is not in {}",
                        comp.mapping.display()
                    ),
                    text.to_string(),
                ));
                continue;
            }
        };
        let label = if multi {
            names.sort();
            names.dedup();
            Label::Multi(Some(names))
        } else {
            Label::Sentence(names.pop())
        };
        out.rows.push(Row {
            id: format!("{}:{file_name}:{line}", ds.name),
            file: src.index,
            line,
            group: None,
            raw_words: text.split_whitespace().map(str::to_string).collect(),
            labels: vec![label],
            raw: text.to_string(),
            conllu: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::PipelineConfig;

    fn cfg() -> PipelineConfig {
        let text = "[pipeline]\nname = \"t\"\n[[datasets]]\nname = \"irony\"\nformat = \"lines\"\n\
                    files = { train = \"train_text.txt\" }\n\
                    [[tasks]]\nname = \"irony\"\ndataset = \"irony\"\ncolumn = \"label\"\ntype = \"classification\"\n";
        PipelineConfig::from_toml_str(text, Path::new("t.toml")).unwrap()
    }

    fn src(path: PathBuf) -> SourceFile {
        SourceFile {
            index: 0,
            split: Some("train"),
            given: "train_text.txt".into(),
            path,
        }
    }

    fn read(dir: &Path) -> Result<Parsed> {
        let cfg = cfg();
        let ds = &cfg.datasets[0];
        let tasks: Vec<_> = cfg.tasks_of(&ds.name).collect();
        let mut out = Parsed::default();
        read_lines(ds, &tasks, &src(dir.join("train_text.txt")), &mut out)?;
        Ok(out)
    }

    fn write(dir: &Path, name: &str, text: &[u8]) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn lines_pair_with_labels_by_line_number() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "mapping.txt", b"0\tnon_irony\n1\tirony");
        write(dir.path(), "train_text.txt", b"so  great \nnot great\r\n");
        write(dir.path(), "train_labels.txt", b"1\n0");
        let p = read(dir.path()).unwrap();
        assert_eq!((p.read, p.rows.len()), (2, 2));
        assert_eq!(p.rows[0].id, "irony:train_text.txt:1");
        assert_eq!(p.rows[1].id, "irony:train_text.txt:2");
        assert_eq!(p.rows[0].raw_words, ["so", "great"]);
        assert_eq!(p.rows[0].raw, "so  great");
        assert_eq!(p.rows[0].labels, [Label::Sentence(Some("irony".into()))]);
        assert_eq!(
            p.rows[1].labels,
            [Label::Sentence(Some("non_irony".into()))]
        );
        assert_eq!(p.rows[1].group, None);
    }

    #[test]
    fn unknown_label_ids_are_quarantined_and_empty_texts_kept_for_cleaning() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "mapping.txt", b"0\tnot-hate\n1\thate\n");
        write(dir.path(), "train_text.txt", b"a\n \n\xff\nb\n");
        write(dir.path(), "train_labels.txt", b"0\n1\n0\n7\n");
        let p = read(dir.path()).unwrap();
        assert_eq!(p.read, 4);
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[1].line, 2);
        assert!(p.rows[1].raw_words.is_empty());
        let q: Vec<_> = p.quarantined.iter().map(|q| (q.line, q.reason)).collect();
        assert_eq!(q, [(3, reason::INVALID_UTF8), (4, reason::BAD_LABEL)]);
        let detail = &p.quarantined[1].detail;
        assert!(
            detail.contains("`7`") && detail.contains("train_labels.txt line 4"),
            "{detail}"
        );
        assert_eq!(p.quarantined[1].raw, "b");
    }

    #[test]
    fn multilabel_lines_map_every_id() {
        let text = "[pipeline]\nname = \"t\"\n[[datasets]]\nname = \"e\"\nformat = \"lines\"\n\
                    files = { train = \"train_text.txt\" }\n\
                    [[tasks]]\nname = \"emo\"\ndataset = \"e\"\ncolumn = \"label\"\ntype = \"multilabel\"\nseparator = \" \"\n";
        let cfg = PipelineConfig::from_toml_str(text, Path::new("t.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "mapping.txt", b"0\tjoy\n1\tanger\n");
        write(dir.path(), "train_text.txt", b"a\nb\nc\n");
        write(dir.path(), "train_labels.txt", b"1 0 1\n\n0 7\n");
        let ds = &cfg.datasets[0];
        let tasks: Vec<_> = cfg.tasks_of(&ds.name).collect();
        let mut p = Parsed::default();
        read_lines(ds, &tasks, &src(dir.path().join("train_text.txt")), &mut p).unwrap();
        let labels: Vec<_> = p.rows.iter().map(|r| r.labels[0].clone()).collect();
        assert_eq!(
            labels,
            [
                Label::Multi(Some(vec!["anger".into(), "joy".into()])),
                Label::Multi(Some(vec![])),
            ]
        );
        assert_eq!(p.quarantined[0].line, 3);
        assert!(p.quarantined[0].detail.contains("`7`"));
    }

    #[test]
    fn differing_line_counts_name_both_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "mapping.txt", b"0\tx\n");
        write(dir.path(), "train_text.txt", b"a\nb\nc\n");
        write(dir.path(), "train_labels.txt", b"0\n0\n");
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("train_text.txt has 3 lines") && err.contains("train_labels.txt has 2"),
            "{err}"
        );
    }

    #[test]
    fn emoji_mapping_takes_the_third_column_and_stance_the_parent_mapping() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "mapping.txt",
            b"0\t\xE2\x9D\xA4\t_red_heart_\t\n1\tx\ty",
        );
        let m = read_mapping(&dir.path().join("mapping.txt")).unwrap();
        assert_eq!(m["0"], "_red_heart_");
        assert_eq!(m["1"], "y");

        let target = dir.path().join("abortion");
        std::fs::create_dir(&target).unwrap();
        write(&target, "val_text.txt", b"t\n");
        write(&target, "val_labels.txt", b"0\n");
        let c = companions(&target.join("val_text.txt")).unwrap();
        assert_eq!(c.mapping, dir.path().join("mapping.txt"));
        assert_eq!(c.labels, target.join("val_labels.txt"));
    }

    #[test]
    fn malformed_companions_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        // Nested, so the parent folder (searched for a mapping) is ours too.
        let dir = tmp.path().join("task");
        std::fs::create_dir(&dir).unwrap();
        write(&dir, "train_text.txt", b"a\n");
        let err = read(&dir).unwrap_err().to_string();
        assert!(
            err.contains("labels file") && err.contains("train_labels.txt"),
            "{err}"
        );
        write(&dir, "train_labels.txt", b"0\n");
        let err = read(&dir).unwrap_err().to_string();
        assert!(err.contains("mapping file"), "{err}");
        write(&dir, "mapping.txt", b"0\tx\n1\n");
        let err = read(&dir).unwrap_err().to_string();
        assert!(err.contains("mapping.txt: line 2"), "{err}");
        let err = companions(&dir.join("train.txt")).unwrap_err().to_string();
        assert!(err.contains("_text.txt"), "{err}");
    }
}
