//! Gold labels of words the tokenizer cut off. The tokenized table keeps
//! labels only on sub-tokens within `max_length`, so the labels of truncated
//! words are read back from the split stage's table, which tokenize was
//! computed from. Scoring those words (as if the model had predicted the
//! majority tag) keeps truncation from flattering the scores.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use mtl_core::artifact::{col, column, read_parquet};
use mtl_core::{Manifest, Stage};
use polars::prelude::*;

use crate::error::Result;
use mtl_core::artifact::PolarsAt;

/// Word labels of one task: row id → one label per word.
pub type WordLabels = HashMap<String, Vec<String>>;

/// The split output that the tokenize output in `data_dir` was computed
/// from, if it sits beside it (the default run layout) and its fingerprint
/// is the one tokenize recorded. Anything else is not trusted.
pub fn locate_split_dir(data_dir: &Path, tokenize: &Manifest) -> Option<PathBuf> {
    let want = tokenize
        .inputs
        .iter()
        .find(|i| i.name == Stage::Split.name())?;
    let dir = data_dir.parent()?.join(Stage::Split.name());
    let m = Manifest::read(&dir).ok()?;
    (m.stage == Stage::Split && m.fingerprint == want.fingerprint).then_some(dir)
}

/// Word labels of `tasks` in the split table `path`, for the row ids in
/// `rows` only (rows without the task's label are absent).
pub fn word_labels(
    path: &Path,
    tasks: &[&str],
    rows: &HashSet<&str>,
) -> Result<BTreeMap<String, WordLabels>> {
    let df = read_parquet(path)?;
    let ids = column(&df, path, col::ID, &DataType::String)?
        .str()
        .at(path)?
        .clone();
    let mut out = BTreeMap::new();
    for &task in tasks {
        let name = col::label(task);
        let c = column(
            &df,
            path,
            &name,
            &DataType::List(Box::new(DataType::String)),
        )?;
        out.insert(
            task.to_string(),
            lists_of_rows(path, &ids, c.list().at(path)?, rows)?,
        );
    }
    Ok(out)
}

/// The words of the rows of the split table `path` whose id is in `rows`,
/// reading its `id` and `words` columns only. A row whose words hold a null
/// is left out rather than shown with a made-up word.
pub fn words_of(path: &Path, rows: &HashSet<&str>) -> Result<HashMap<String, Vec<String>>> {
    let file = std::fs::File::open(path).map_err(|e| mtl_core::CoreError::io(path, e))?;
    let mut reader = ParquetReader::new(file);
    let schema = reader.schema().at(path)?;
    if let Some(missing) = [col::ID, col::WORDS]
        .into_iter()
        .find(|c| !schema.contains(c))
    {
        return Err(mtl_core::CoreError::Schema {
            path: path.to_path_buf(),
            column: missing.to_string(),
            message: "missing".into(),
        }
        .into());
    }
    let df = reader
        .with_columns(Some(vec![col::ID.to_string(), col::WORDS.to_string()]))
        .finish()
        .at(path)?;
    let ids = column(&df, path, col::ID, &DataType::String)?
        .str()
        .at(path)?
        .clone();
    let words = column(
        &df,
        path,
        col::WORDS,
        &DataType::List(Box::new(DataType::String)),
    )?
    .list()
    .at(path)?
    .clone();
    lists_of_rows(path, &ids, &words, rows)
}

/// The string lists of `lists` keyed by the row's id in `ids`, for the ids
/// in `rows` only; a null list, or one holding a null, is left out.
fn lists_of_rows(
    path: &Path,
    ids: &StringChunked,
    lists: &ListChunked,
    rows: &HashSet<&str>,
) -> Result<HashMap<String, Vec<String>>> {
    let mut out = HashMap::new();
    for (id, row) in ids.iter().zip(lists.series_iter()) {
        let (Some(id), Some(row)) = (id, row) else {
            continue;
        };
        if !rows.contains(id) {
            continue;
        }
        let items: Option<Vec<String>> = row
            .str()
            .at(path)?
            .iter()
            .map(|w| w.map(str::to_string))
            .collect();
        if let Some(items) = items {
            out.insert(id.to_string(), items);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mtl_core::{InputRef, ManifestBuilder, StagingDir};

    fn stage_dir(dir: &Path, stage: Stage, fp: &str, inputs: Vec<InputRef>) -> Manifest {
        let staging = StagingDir::begin(dir).unwrap();
        let m = ManifestBuilder::new(stage, 1, fp.into(), inputs)
            .finish(&staging, &BTreeMap::new())
            .unwrap();
        staging.commit().unwrap();
        m
    }

    #[test]
    fn split_dir_is_found_only_when_fingerprints_match() {
        let root = tempfile::tempdir().unwrap();
        let tok_dir = root.path().join("tokenize");
        let input = InputRef {
            name: "split".into(),
            fingerprint: "fp-split".into(),
        };
        let tok = stage_dir(&tok_dir, Stage::Tokenize, "fp-tok", vec![input]);
        assert_eq!(
            locate_split_dir(&tok_dir, &tok),
            None,
            "no split folder yet"
        );
        stage_dir(&root.path().join("split"), Stage::Split, "fp-other", vec![]);
        assert_eq!(locate_split_dir(&tok_dir, &tok), None, "stale split folder");
        stage_dir(&root.path().join("split"), Stage::Split, "fp-split", vec![]);
        assert_eq!(
            locate_split_dir(&tok_dir, &tok),
            Some(root.path().join("split"))
        );
    }

    #[test]
    fn reads_the_words_of_wanted_rows_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.parquet");
        let words: ListChunked = [
            Some(Series::new("".into(), ["a<b", "c"])),
            Some(Series::new("".into(), ["d"])),
            Some(Series::new("".into(), [Some("e"), None])),
        ]
        .into_iter()
        .collect();
        let mut df = DataFrame::new_infer_height(vec![
            Series::new("id".into(), ["a", "b", "c"]).into_column(),
            words.with_name("words".into()).into_column(),
        ])
        .unwrap();
        mtl_core::artifact::write_parquet(&mut df, &path).unwrap();
        let wanted: HashSet<&str> = ["a", "c"].into_iter().collect();
        let got = words_of(&path, &wanted).unwrap();
        assert_eq!(got.len(), 1, "b is not wanted, c holds a null word");
        assert_eq!(got["a"], ["a<b", "c"]);
        let mut df = df.drop("words").unwrap();
        mtl_core::artifact::write_parquet(&mut df, &path).unwrap();
        let err = words_of(&path, &wanted).unwrap_err().to_string();
        assert!(
            err.contains("words") && err.contains("dev.parquet"),
            "{err}"
        );
    }

    #[test]
    fn reads_word_labels_of_wanted_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.parquet");
        let labels: ListChunked = [
            Some(Series::new("".into(), ["B-PER", "O"])),
            None,
            Some(Series::new("".into(), ["O"])),
        ]
        .into_iter()
        .collect();
        let mut df = DataFrame::new_infer_height(vec![
            Series::new("id".into(), ["a", "b", "c"]).into_column(),
            labels.with_name("label_ner".into()).into_column(),
        ])
        .unwrap();
        mtl_core::artifact::write_parquet(&mut df, &path).unwrap();
        let wanted: HashSet<&str> = ["a", "b"].into_iter().collect();
        let got = word_labels(&path, &["ner"], &wanted).unwrap();
        assert_eq!(got["ner"].len(), 1);
        assert_eq!(got["ner"]["a"], vec!["B-PER", "O"]);
        let err = word_labels(&path, &["pos"], &wanted)
            .unwrap_err()
            .to_string();
        assert!(err.contains("label_pos"), "{err}");
    }
}
