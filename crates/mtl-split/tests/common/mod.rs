//! Hand-made clean folders: tables with the documented clean schema
//! (`mtl_core::artifact`) and a committed manifest, as the clean stage
//! would leave them.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mtl_core::artifact::{FEATURES, col, write_parquet};
use mtl_core::{InputRef, ManifestBuilder, PipelineConfig, Stage, StagingDir};
use polars::prelude::*;

/// One dataset's rows, built column by column.
pub struct Table {
    pub dataset: String,
    pub texts: Vec<String>,
    pub ids: Vec<String>,
    pub splits: Vec<Option<String>>,
    pub groups: Vec<Option<String>>,
    pub extra: Vec<Column>,
    /// Per feature name: values (default: a function of the row).
    pub features: BTreeMap<String, Vec<f32>>,
}

impl Table {
    /// `n` rows with distinct texts, no own splits, no groups.
    pub fn new(dataset: &str, n: usize) -> Self {
        Self {
            dataset: dataset.into(),
            texts: (0..n)
                .map(|i| format!("text number {i} of {dataset}"))
                .collect(),
            ids: (0..n).map(|i| format!("{dataset}-{i}")).collect(),
            splits: vec![None; n],
            groups: vec![None; n],
            extra: Vec::new(),
            features: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn split(mut self, f: impl Fn(usize) -> Option<&'static str>) -> Self {
        self.splits = (0..self.len()).map(|i| f(i).map(String::from)).collect();
        self
    }

    pub fn groups(mut self, f: impl Fn(usize) -> Option<String>) -> Self {
        self.groups = (0..self.len()).map(f).collect();
        self
    }

    pub fn texts(mut self, f: impl Fn(usize) -> String) -> Self {
        self.texts = (0..self.len()).map(f).collect();
        self
    }

    pub fn feature(mut self, name: &str, f: impl Fn(usize) -> f32) -> Self {
        self.features
            .insert(name.into(), (0..self.len()).map(f).collect());
        self
    }

    /// A classification label column (`None` = not labelled).
    pub fn class(mut self, task: &str, f: impl Fn(usize) -> Option<String>) -> Self {
        let v: Vec<Option<String>> = (0..self.len()).map(f).collect();
        self.extra.push(Column::new(col::label(task).into(), v));
        self
    }

    /// A list[str] label column: tagging, spans or multilabel.
    pub fn list(mut self, task: &str, f: impl Fn(usize) -> Option<Vec<String>>) -> Self {
        let col = list_column(&col::label(task), (0..self.len()).map(f));
        self.extra.push(col);
        self
    }

    pub fn regression(mut self, task: &str, f: impl Fn(usize) -> Option<f64>) -> Self {
        let v: Vec<Option<f64>> = (0..self.len()).map(f).collect();
        self.extra.push(Column::new(col::label(task).into(), v));
        self
    }

    /// Any extra column (dataset-specific, passed through by split).
    pub fn column(mut self, c: Column) -> Self {
        self.extra.push(c);
        self
    }

    pub fn without_feature(mut self, name: &str) -> Self {
        self.features.insert(format!("-{name}"), Vec::new());
        self
    }

    pub fn frame(&self) -> DataFrame {
        let n = self.len();
        let words = list_column(
            col::WORDS,
            self.texts
                .iter()
                .map(|t| Some(t.split(' ').map(String::from).collect())),
        );
        let mut columns = vec![
            Column::new(col::ID.into(), self.ids.clone()),
            Column::new(col::DATASET.into(), vec![self.dataset.clone(); n]),
            Column::new(col::SOURCE_SPLIT.into(), self.splits.clone()),
            Column::new(
                col::SOURCE_FILE.into(),
                vec![format!("{}.jsonl", self.dataset); n],
            ),
            Column::new(col::SOURCE_LINE.into(), (1..=n as u32).collect::<Vec<_>>()),
            Column::new(col::GROUP.into(), self.groups.clone()),
            Column::new(col::TEXT.into(), self.texts.clone()),
            words,
            Column::new(
                col::N_CHARS.into(),
                self.texts
                    .iter()
                    .map(|t| t.len() as u32)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                col::N_WORDS.into(),
                self.texts
                    .iter()
                    .map(|t| t.split(' ').count() as u32)
                    .collect::<Vec<_>>(),
            ),
        ];
        for (k, f) in FEATURES.iter().enumerate() {
            if self.features.contains_key(&format!("-{f}")) {
                continue;
            }
            let values = self
                .features
                .get(*f)
                .cloned()
                .unwrap_or_else(|| (0..n).map(|i| ((i * (k + 3)) % 7) as f32).collect());
            columns.push(Column::new(col::feature(f).into(), values));
        }
        columns.extend(self.extra.iter().cloned());
        DataFrame::new(n, columns).unwrap()
    }
}

pub fn list_column(name: &str, rows: impl Iterator<Item = Option<Vec<String>>>) -> Column {
    let rows: Vec<Option<Series>> = rows.map(|r| r.map(|v| Series::new("".into(), v))).collect();
    let mut ca: ListChunked = rows.into_iter().collect();
    ca.rename(name.into());
    ca.cast(&DataType::List(Box::new(DataType::String)))
        .unwrap()
        .into_column()
}

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A committed clean folder under `root` holding `tables`; `tag` feeds the
/// clean fingerprint, so different contents never look cached.
pub fn clean_dir(root: &Path, tables: &[Table], tag: &str) -> PathBuf {
    let dir = root.join(format!("clean-{tag}"));
    let staging = StagingDir::begin(&dir).unwrap();
    for t in tables {
        write_parquet(
            &mut t.frame(),
            &staging.path(&format!("{}.parquet", t.dataset)),
        )
        .unwrap();
    }
    let inputs = vec![InputRef {
        name: "raw".into(),
        fingerprint: tag.into(),
    }];
    ManifestBuilder::new(Stage::Clean, 1, format!("clean-{tag}"), inputs)
        .finish(&staging, &BTreeMap::new())
        .unwrap();
    staging.commit().unwrap()
}

pub const HEADER: &str = "[pipeline]\nname = \"t\"\nseed = 3\n";

/// `[[datasets]]` with files `{all}` (split by mtl) or own train/dev/test.
pub fn dataset(name: &str, own_splits: bool) -> String {
    let files = if own_splits {
        format!(
            "{{ train = \"{name}_train.jsonl\", dev = \"{name}_dev.jsonl\", test = \"{name}_test.jsonl\" }}"
        )
    } else {
        format!("{{ all = \"{name}.jsonl\" }}")
    };
    format!("[[datasets]]\nname = \"{name}\"\nformat = \"jsonl\"\nfiles = {files}\n")
}

pub fn task(name: &str, dataset: &str, kind: &str, extra: &str) -> String {
    format!(
        "[[tasks]]\nname = \"{name}\"\ndataset = \"{dataset}\"\ncolumn = \"{name}\"\ntype = \"{kind}\"\n{extra}"
    )
}

pub fn config(parts: &[String]) -> PipelineConfig {
    PipelineConfig::from_toml_str(&format!("{HEADER}{}", parts.concat()), Path::new("t.toml"))
        .unwrap()
}

pub fn read(dir: &Path, split: &str) -> DataFrame {
    mtl_core::artifact::read_parquet(&dir.join(format!("{split}.parquet"))).unwrap()
}

pub fn strs(df: &DataFrame, column: &str) -> Vec<Option<String>> {
    df.column(column)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(String::from))
        .collect()
}

/// `id -> split` over the three split tables.
pub fn assignment(dir: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for s in mtl_core::artifact::SPLITS {
        for id in strs(&read(dir, s), col::ID).into_iter().flatten() {
            m.insert(id, s.to_string());
        }
    }
    m
}
