//! Reading one tokenized split (`tokenize/<split>.parquet`) with the gold
//! targets of the tasks being scored and the raw side-input features the
//! model's heads take (`feat_<name>`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtl_core::TaskKind;
use mtl_core::artifact::{IGNORE_INDEX, NO_LABEL, col, column, read_parquet};
use polars::prelude::*;

use crate::error::{Error, Result};
use mtl_core::artifact::PolarsAt;

/// Gold of one task, one entry per row; `None` where the row does not carry
/// the task (the task mask).
#[derive(Debug, Clone, PartialEq)]
pub enum Gold {
    Sentence(Vec<Option<i32>>),
    /// Aligned to sub-tokens, [`IGNORE_INDEX`] where not scored.
    Token(Vec<Option<Vec<i32>>>),
    /// The label ids of each text; an empty list is a labelled text that
    /// carries no label.
    Multilabel(Vec<Option<Vec<i32>>>),
    /// The target in its own units.
    Regression(Vec<Option<f32>>),
    /// A dependency task, both aligned to sub-tokens: each scored word's
    /// head position (`h_<task>`, 0 = root) and relation id (`y_<task>`);
    /// [`IGNORE_INDEX`] where not scored.
    Tree {
        heads: Vec<Option<Vec<i32>>>,
        rels: Vec<Option<Vec<i32>>>,
    },
}

#[derive(Debug, Clone)]
pub struct SplitData {
    pub path: PathBuf,
    pub ids: Vec<String>,
    pub input_ids: Vec<Vec<u32>>,
    pub word_ids: Vec<Vec<i32>>,
    pub n_words: Vec<usize>,
    pub gold: BTreeMap<String, Gold>,
    /// Per row, the raw value of every requested feature (empty maps when
    /// no head takes side inputs).
    pub features: Vec<BTreeMap<String, f32>>,
    /// The `window` column of windowed tables: several rows share an
    /// example's id (see [`crate::windows`]).
    pub windows: Option<Vec<u32>>,
}

impl SplitData {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub(crate) fn row_error(&self, row: usize, column: &str, message: impl Into<String>) -> Error {
        Error::Row {
            path: self.path.clone(),
            column: column.to_string(),
            id: self
                .ids
                .get(row)
                .cloned()
                .unwrap_or_else(|| format!("#{row}")),
            message: message.into(),
        }
    }
}

fn list_of(inner: DataType) -> DataType {
    DataType::List(Box::new(inner))
}

/// Gold ids of a list column: null rows do not carry the task, null items
/// are not scored.
fn id_lists(c: &Column, path: &Path) -> Result<Vec<Option<Vec<i32>>>> {
    c.list()
        .at(path)?
        .series_iter()
        .map(|row| {
            row.map(|s| -> Result<Vec<i32>> {
                Ok(s.i32()
                    .at(path)?
                    .iter()
                    .map(|y| y.unwrap_or(IGNORE_INDEX))
                    .collect())
            })
            .transpose()
        })
        .collect()
}

/// Loads `path`, with the targets of `tasks` (`name`, kind) and the raw
/// values of `features` (names of [`mtl_core::artifact::FEATURES`]).
pub fn load(path: &Path, tasks: &[(String, TaskKind)], features: &[&str]) -> Result<SplitData> {
    let df = read_parquet(path)?;
    let ids: Vec<String> = column(&df, path, col::ID, &DataType::String)?
        .str()
        .at(path)?
        .iter()
        .enumerate()
        .map(|(i, s)| s.map_or_else(|| format!("#{i}"), str::to_string))
        .collect();
    let mut data = SplitData {
        path: path.to_path_buf(),
        ids,
        input_ids: Vec::new(),
        word_ids: Vec::new(),
        n_words: Vec::new(),
        gold: BTreeMap::new(),
        features: Vec::new(),
        windows: None,
    };

    let c = column(&df, path, col::INPUT_IDS, &list_of(DataType::UInt32))?;
    for (i, row) in c.list().at(path)?.series_iter().enumerate() {
        let row = row.ok_or_else(|| data.row_error(i, col::INPUT_IDS, "null"))?;
        let v: Option<Vec<u32>> = row.u32().at(path)?.iter().collect();
        data.input_ids
            .push(v.ok_or_else(|| data.row_error(i, col::INPUT_IDS, "null token id"))?);
    }
    let c = column(&df, path, col::WORD_IDS, &list_of(DataType::Int32))?;
    for (i, row) in c.list().at(path)?.series_iter().enumerate() {
        let row = row.ok_or_else(|| data.row_error(i, col::WORD_IDS, "null"))?;
        let v: Vec<i32> = row
            .i32()
            .at(path)?
            .iter()
            .map(|w| w.unwrap_or(-1))
            .collect();
        if v.len() != data.input_ids[i].len() {
            return Err(data.row_error(
                i,
                col::WORD_IDS,
                format!(
                    "{} entries for {} input ids",
                    v.len(),
                    data.input_ids[i].len()
                ),
            ));
        }
        data.word_ids.push(v);
    }
    let c = column(&df, path, col::N_WORDS, &DataType::UInt32)?;
    for (i, n) in c.u32().at(path)?.iter().enumerate() {
        let n = n.ok_or_else(|| data.row_error(i, col::N_WORDS, "null"))?;
        data.n_words.push(n as usize);
    }
    if df.column(col::WINDOW).is_ok() {
        let c = column(&df, path, col::WINDOW, &DataType::UInt32)?;
        let mut windows = Vec::with_capacity(data.len());
        for (i, w) in c.u32().at(path)?.iter().enumerate() {
            windows.push(w.ok_or_else(|| data.row_error(i, col::WINDOW, "null"))?);
        }
        data.windows = Some(windows);
    }

    for (task, kind) in tasks {
        let name = col::target(task);
        let gold = match kind {
            TaskKind::Tagging | TaskKind::Spans => Gold::Token(id_lists(
                column(&df, path, &name, &list_of(DataType::Int32))?,
                path,
            )?),
            TaskKind::Dependency => Gold::Tree {
                heads: id_lists(
                    column(&df, path, &col::heads(task), &list_of(DataType::Int32))?,
                    path,
                )?,
                rels: id_lists(column(&df, path, &name, &list_of(DataType::Int32))?, path)?,
            },
            TaskKind::Multilabel => Gold::Multilabel(id_lists(
                column(&df, path, &name, &list_of(DataType::Int32))?,
                path,
            )?),
            TaskKind::Classification => {
                let c = column(&df, path, &name, &DataType::Int32)?;
                Gold::Sentence(
                    c.i32()
                        .at(path)?
                        .iter()
                        .map(|y| y.filter(|&y| y != NO_LABEL))
                        .collect(),
                )
            }
            TaskKind::Regression => {
                let c = column(&df, path, &name, &DataType::Float32)?;
                let values: Vec<Option<f32>> = c.f32().at(path)?.iter().collect();
                if let Some(i) = values
                    .iter()
                    .position(|v| v.is_some_and(|v| !v.is_finite()))
                {
                    return Err(data.row_error(i, &name, "the target is not a finite number"));
                }
                Gold::Regression(values)
            }
        };
        data.gold.insert(task.clone(), gold);
    }

    data.features = vec![BTreeMap::new(); data.len()];
    for f in features {
        let name = col::feature(f);
        let c = column(&df, path, &name, &DataType::Float32)?;
        for (i, v) in c.f32().at(path)?.iter().enumerate() {
            let v = v.ok_or_else(|| data.row_error(i, &name, "null feature value"))?;
            if !v.is_finite() {
                return Err(data.row_error(i, &name, format!("feature value {v}")));
            }
            data.features[i].insert(f.to_string(), v);
        }
    }
    Ok(data)
}

/// Rows of the table at `path` that carry `task` (non-null `y_<task>`),
/// reading that one column only. Multilabel baselines need it: `labels.json`
/// counts training texts per label, not the labelled texts themselves.
pub fn labelled_rows(path: &Path, task: &str) -> Result<u64> {
    let name = col::target(task);
    let file = std::fs::File::open(path).map_err(|e| mtl_core::CoreError::io(path, e))?;
    let mut reader = ParquetReader::new(file);
    if !reader.schema().at(path)?.contains(name.as_str()) {
        return Err(mtl_core::CoreError::Schema {
            path: path.to_path_buf(),
            column: name,
            message: "missing".into(),
        }
        .into());
    }
    let df = reader
        .with_columns(Some(vec![name.clone()]))
        .finish()
        .at(path)?;
    let c = df.column(&name).at(path)?;
    Ok((c.len() - c.null_count()) as u64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A tokenize-style table: two rows, a sentence task `s` and a token task `t`.
    pub(crate) fn write_sample(path: &Path) {
        let ids = Series::new("id".into(), ["r1", "r2"]);
        let input_ids: ListChunked = [
            Some(Series::new("".into(), [2u32, 7, 8, 3])),
            Some(Series::new("".into(), [2u32, 9, 3])),
        ]
        .into_iter()
        .collect();
        let word_ids: ListChunked = [
            Some(Series::new("".into(), [-1i32, 0, 0, -1])),
            Some(Series::new("".into(), [-1i32, 0, -1])),
        ]
        .into_iter()
        .collect();
        let y_t: ListChunked = [Some(Series::new("".into(), [-100i32, 1, -100, -100])), None]
            .into_iter()
            .collect();
        let y_m: ListChunked = [None, Some(Series::new("".into(), [0i32, 2]))]
            .into_iter()
            .collect();
        let mut df = DataFrame::new_infer_height(vec![
            ids.into_column(),
            input_ids.with_name("input_ids".into()).into_column(),
            word_ids.with_name("word_ids".into()).into_column(),
            Series::new("n_words".into(), [1u32, 1]).into_column(),
            Series::new("length".into(), [4u32, 3]).into_column(),
            Series::new("y_s".into(), [1i32, -1]).into_column(),
            y_t.with_name("y_t".into()).into_column(),
            y_m.with_name("y_m".into()).into_column(),
            Series::new("y_r".into(), [Some(2.5f32), None]).into_column(),
            Series::new("feat_n_words".into(), [1.0f32, 3.0]).into_column(),
        ])
        .unwrap();
        mtl_core::artifact::write_parquet(&mut df, path).unwrap();
    }

    #[test]
    fn loads_rows_and_task_masks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.parquet");
        write_sample(&path);
        let tasks = [
            ("s".to_string(), TaskKind::Classification),
            ("t".to_string(), TaskKind::Spans),
            ("m".to_string(), TaskKind::Multilabel),
            ("r".to_string(), TaskKind::Regression),
        ];
        let d = load(&path, &tasks, &["n_words"]).unwrap();
        assert_eq!(d.ids, vec!["r1", "r2"]);
        assert_eq!(d.input_ids[0], vec![2, 7, 8, 3]);
        assert_eq!(d.word_ids[1], vec![-1, 0, -1]);
        assert_eq!(d.n_words, vec![1, 1]);
        assert_eq!(d.gold["s"], Gold::Sentence(vec![Some(1), None]));
        assert_eq!(
            d.gold["t"],
            Gold::Token(vec![Some(vec![-100, 1, -100, -100]), None])
        );
        assert_eq!(d.gold["m"], Gold::Multilabel(vec![None, Some(vec![0, 2])]));
        assert_eq!(d.gold["r"], Gold::Regression(vec![Some(2.5), None]));
        assert_eq!(d.features[1]["n_words"], 3.0);
        assert_eq!(d.features[0].len(), 1);
        assert_eq!(labelled_rows(&path, "r").unwrap(), 1);
        assert_eq!(labelled_rows(&path, "s").unwrap(), 2, "-1 is not null");
    }

    #[test]
    fn missing_feature_column_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.parquet");
        write_sample(&path);
        let err = load(&path, &[], &["upper_ratio"]).unwrap_err().to_string();
        assert!(
            err.contains("dev.parquet") && err.contains("feat_upper_ratio"),
            "{err}"
        );
        let err = labelled_rows(&path, "nope").unwrap_err().to_string();
        assert!(
            err.contains("dev.parquet") && err.contains("y_nope"),
            "{err}"
        );
    }

    #[test]
    fn missing_target_column_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.parquet");
        write_sample(&path);
        let err = load(&path, &[("nope".to_string(), TaskKind::Tagging)], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("dev.parquet") && err.contains("y_nope") && err.contains("missing"),
            "{err}"
        );
    }
}
