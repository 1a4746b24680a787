//! Reading tokenized examples into memory, with each task's targets, the
//! raw side-input features and, for `model.char_cnn`, each word's
//! character ids.

use std::collections::BTreeMap;
use std::path::Path;

use mtl_core::artifact::{IGNORE_INDEX, NO_LABEL, col, read_parquet};
use mtl_core::{CharVocab, LabelSet, PipelineConfig, TaskKind};
use mtl_model::ModelSpec;
use polars::prelude::*;

use crate::error::{Error, Result};

/// A row's gold for one task.
#[derive(Debug, Clone)]
pub enum RowTarget {
    Sentence(i32),
    /// Aligned to sub-tokens; -100 where not scored.
    Token(Vec<i32>),
    /// The label ids the row carries (possibly none).
    Multilabel(Vec<u32>),
    /// In the target's own units.
    Regression(f32),
    /// A dependency task, aligned to sub-tokens: each scored word's head
    /// position (`h_<task>`, 0 = root) and relation id (`y_<task>`); -100
    /// where not scored.
    Tree {
        heads: Vec<i32>,
        rels: Vec<i32>,
    },
}

#[derive(Debug, Clone)]
pub struct Example {
    pub input_ids: Vec<u32>,
    /// Only the tasks this row carries.
    pub targets: BTreeMap<String, RowTarget>,
    /// Raw values of the features some head takes (`feat_<name>`).
    pub features: BTreeMap<String, f32>,
    /// The word of each sub-token (`word_ids`; -1 = special token), when
    /// the table has them: the CRF's chain and a parser's arcs run over
    /// each word's first sub-token, and `chars` are indexed by it.
    pub word_ids: Option<Vec<i32>>,
    /// The character ids of each word of the example, from a table with
    /// `char_ids` (which always has `word_ids` too).
    pub chars: Option<Vec<Vec<u32>>>,
}

/// `spec` with `model.char_cnn` on (when the config sets it) over the
/// character vocabulary of the tokenize output `input_dir` (`chars.json`).
pub fn with_char_cnn(
    mut spec: ModelSpec,
    cfg: &PipelineConfig,
    input_dir: &Path,
) -> Result<ModelSpec> {
    if cfg.model.char_cnn.is_none() {
        return Ok(spec);
    }
    let path = input_dir.join(CharVocab::FILE);
    if !path.is_file() {
        return Err(Error::Data {
            path,
            message: "not found: model.char_cnn needs the character vocabulary (set \
                      tokenize.char_ids = true and re-run mtl-tokenize)"
                .into(),
        });
    }
    let chars = CharVocab::read(&path)?;
    spec.encoder = spec.encoder.with_char_cnn(&cfg.model, chars.len());
    Ok(spec)
}

/// Reads a tokenize table: ids, every task of `labels`, the
/// `feat_<name>` column of each of `features`, and, when the table has
/// `char_ids` (the tokenize stage writes it with `tokenize.char_ids`, which
/// `model.char_cnn` requires), each row's character ids per word.
pub fn load(path: &Path, labels: &LabelSet, features: &[&str]) -> Result<Vec<Example>> {
    let df = read_parquet(path)?;
    let err = |source: PolarsError| Error::Polars {
        path: path.to_path_buf(),
        source,
    };
    let ids = df
        .column(col::INPUT_IDS)
        .map_err(err)?
        .list()
        .map_err(err)?;
    let mut out: Vec<Example> = Vec::with_capacity(df.height());
    for row in ids.series_iter() {
        let row = row.ok_or_else(|| Error::Data {
            path: path.to_path_buf(),
            message: "null input_ids".into(),
        })?;
        let ids: Vec<u32> = row
            .u32()
            .map_err(err)?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect();
        out.push(Example {
            input_ids: ids,
            targets: BTreeMap::new(),
            features: BTreeMap::new(),
            word_ids: None,
            chars: None,
        });
    }
    let data_err = |row: usize, message: String| Error::Data {
        path: path.to_path_buf(),
        message: format!("row {row}: {message}"),
    };
    if let Ok(c) = df.column(col::WORD_IDS) {
        for (row, (ex, w)) in out
            .iter_mut()
            .zip(c.list().map_err(err)?.series_iter())
            .enumerate()
        {
            let w: Vec<i32> = match w {
                Some(w) => w
                    .i32()
                    .map_err(err)?
                    .iter()
                    .map(|v| v.unwrap_or(-1))
                    .collect(),
                None => continue,
            };
            if w.len() != ex.input_ids.len() {
                return Err(data_err(
                    row,
                    format!("{} word ids for {} sub-tokens", w.len(), ex.input_ids.len()),
                ));
            }
            ex.word_ids = Some(w);
        }
    }
    if df.column(col::CHAR_IDS).is_ok() {
        let chars = word_chars(&df, path, &out)?;
        for (ex, c) in out.iter_mut().zip(chars) {
            ex.chars = Some(c);
        }
    }
    for f in features {
        let name = col::feature(f);
        let c = df.column(&name).map_err(err)?;
        let values = c.f32().map_err(err)?;
        for (row, (ex, v)) in out.iter_mut().zip(values.iter()).enumerate() {
            let v = v.ok_or_else(|| data_err(row, format!("`{name}` is null")))?;
            ex.features.insert(f.to_string(), v);
        }
    }
    for (task, tl) in &labels.tasks {
        let name = col::target(task);
        let c = df.column(&name).map_err(err)?;
        match tl.kind {
            TaskKind::Classification => {
                for (ex, y) in out.iter_mut().zip(c.i32().map_err(err)?.iter()) {
                    if let Some(y) = y.filter(|&y| y != NO_LABEL) {
                        ex.targets.insert(task.clone(), RowTarget::Sentence(y));
                    }
                }
            }
            TaskKind::Dependency => {
                let h_name = col::heads(task);
                let h = df.column(&h_name).map_err(err)?;
                for (row, (ex, (y, h))) in out
                    .iter_mut()
                    .zip(
                        c.list()
                            .map_err(err)?
                            .series_iter()
                            .zip(h.list().map_err(err)?.series_iter()),
                    )
                    .enumerate()
                {
                    let (Some(y), Some(h)) = (y, h) else { continue };
                    let ints = |s: Series| -> Result<Vec<i32>> {
                        Ok(s.i32()
                            .map_err(err)?
                            .iter()
                            .map(|v| v.unwrap_or(IGNORE_INDEX))
                            .collect())
                    };
                    let (rels, heads) = (ints(y)?, ints(h)?);
                    if rels.len() != ex.input_ids.len() || heads.len() != ex.input_ids.len() {
                        return Err(data_err(
                            row,
                            format!(
                                "`{name}` and `{h_name}` hold {} and {} entries for {} sub-tokens",
                                rels.len(),
                                heads.len(),
                                ex.input_ids.len()
                            ),
                        ));
                    }
                    ex.targets
                        .insert(task.clone(), RowTarget::Tree { heads, rels });
                }
            }
            TaskKind::Tagging | TaskKind::Spans => {
                for (ex, y) in out.iter_mut().zip(c.list().map_err(err)?.series_iter()) {
                    if let Some(y) = y {
                        let y: Vec<i32> = y
                            .i32()
                            .map_err(err)?
                            .iter()
                            .map(|v| v.unwrap_or(IGNORE_INDEX))
                            .collect();
                        ex.targets.insert(task.clone(), RowTarget::Token(y));
                    }
                }
            }
            TaskKind::Multilabel => {
                let n = tl.len();
                for (row, (ex, y)) in out
                    .iter_mut()
                    .zip(c.list().map_err(err)?.series_iter())
                    .enumerate()
                {
                    let Some(y) = y else { continue };
                    let mut ids = Vec::with_capacity(y.len());
                    for v in y.i32().map_err(err)?.iter() {
                        match v {
                            Some(v) if v >= 0 && (v as usize) < n => ids.push(v as u32),
                            v => {
                                return Err(data_err(
                                    row,
                                    format!(
                                        "`{name}` holds {v:?}, not a label id of task `{task}` ({n} labels)"
                                    ),
                                ));
                            }
                        }
                    }
                    ex.targets.insert(task.clone(), RowTarget::Multilabel(ids));
                }
            }
            TaskKind::Regression => {
                for (row, (ex, y)) in out.iter_mut().zip(c.f32().map_err(err)?.iter()).enumerate() {
                    let Some(y) = y else { continue };
                    if !y.is_finite() {
                        return Err(data_err(row, format!("`{name}` is {y}")));
                    }
                    ex.targets.insert(task.clone(), RowTarget::Regression(y));
                }
            }
        }
    }
    Ok(out)
}

/// Every row's `char_ids`, checked against its `n_words` and against the
/// word ids already read into `rows`.
fn word_chars(df: &DataFrame, path: &Path, rows: &[Example]) -> Result<Vec<Vec<Vec<u32>>>> {
    let err = |source: PolarsError| Error::Polars {
        path: path.to_path_buf(),
        source,
    };
    let data_err = |row: usize, message: String| Error::Data {
        path: path.to_path_buf(),
        message: format!("row {row}: {message}"),
    };
    let n_words = df.column(col::N_WORDS).map_err(err)?.u32().map_err(err)?;
    let char_ids = df.column(col::CHAR_IDS).map_err(err)?.list().map_err(err)?;
    let mut out = Vec::with_capacity(df.height());
    let rows = rows.iter().zip(n_words.iter()).zip(char_ids.series_iter());
    for (row, ((ex, n), cs)) in rows.enumerate() {
        let null = |c: &str| data_err(row, format!("`{c}` is null"));
        let ws = ex.word_ids.as_deref().ok_or_else(|| null(col::WORD_IDS))?;
        let n = n.ok_or_else(|| null(col::N_WORDS))? as usize;
        let words = cs.ok_or_else(|| null(col::CHAR_IDS))?;
        let mut chars = Vec::with_capacity(words.len());
        for w in words.list().map_err(err)?.series_iter() {
            let w =
                w.ok_or_else(|| data_err(row, format!("a null word in `{}`", col::CHAR_IDS)))?;
            let ids: Option<Vec<u32>> = w.u32().map_err(err)?.iter().collect();
            chars.push(ids.ok_or_else(|| {
                data_err(row, format!("a null character id in `{}`", col::CHAR_IDS))
            })?);
        }
        if chars.len() != n {
            return Err(data_err(
                row,
                format!(
                    "`{}` holds {} words but `{}` is {n}",
                    col::CHAR_IDS,
                    chars.len(),
                    col::N_WORDS
                ),
            ));
        }
        if let Some(w) = ws.iter().find(|&&w| w >= n as i32) {
            return Err(data_err(
                row,
                format!("`{}` names word {w} of {n}", col::WORD_IDS),
            ));
        }
        out.push(chars);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::chunked_array::builder::AnonymousOwnedListBuilder;

    fn list_u32(rows: &[&[u32]]) -> ListChunked {
        rows.iter()
            .map(|r| Some(Series::new("".into(), r.to_vec())))
            .collect()
    }

    /// `char_ids` list[list[u32]], one list per word.
    fn char_ids(rows: &[Vec<Vec<u32>>]) -> Column {
        let inner = DataType::List(Box::new(DataType::UInt32));
        let mut outer =
            AnonymousOwnedListBuilder::new(col::CHAR_IDS.into(), rows.len(), Some(inner));
        for words in rows {
            let words: Vec<&[u32]> = words.iter().map(Vec::as_slice).collect();
            outer
                .append_owned_series(list_u32(&words).into_series())
                .unwrap();
        }
        outer.finish().into_column()
    }

    /// A tokenize table of two rows with one classification task `s`.
    fn write(path: &Path, n_words: [u32; 2], chars: Option<&[Vec<Vec<u32>>]>) {
        let word_ids: ListChunked = [
            Some(Series::new("".into(), [-1i32, 0, 1, 1, -1])),
            Some(Series::new("".into(), [-1i32, 0, -1])),
        ]
        .into_iter()
        .collect();
        let mut columns = vec![
            Series::new(col::ID.into(), ["a", "b"]).into_column(),
            list_u32(&[&[2, 5, 6, 7, 3], &[2, 8, 3]])
                .with_name(col::INPUT_IDS.into())
                .into_column(),
            word_ids.with_name(col::WORD_IDS.into()).into_column(),
            Series::new(col::N_WORDS.into(), n_words).into_column(),
            Series::new(col::target("s").into(), [1i32, 0]).into_column(),
        ];
        if let Some(c) = chars {
            columns.push(char_ids(c));
        }
        let mut df = DataFrame::new_infer_height(columns).unwrap();
        mtl_core::artifact::write_parquet(&mut df, path).unwrap();
    }

    fn labels() -> LabelSet {
        let mut set = LabelSet::default();
        set.tasks.insert(
            "s".into(),
            mtl_core::TaskLabels {
                kind: TaskKind::Classification,
                scheme: None,
                labels: vec!["x".into(), "y".into()],
                train_counts: vec![1, 1],
                class_weights: None,
                target: None,
            },
        );
        set
    }

    #[test]
    fn char_ids_are_read_with_the_word_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.parquet");
        let chars = [vec![vec![4, 5], vec![6]], vec![vec![7, 1, 8]]];
        write(&path, [2, 1], Some(&chars));
        let ex = load(&path, &labels(), &[]).unwrap();
        assert_eq!(ex[0].chars.as_ref(), Some(&chars[0]));
        assert_eq!(ex[0].word_ids, Some(vec![-1, 0, 1, 1, -1]));
        assert_eq!(ex[1].chars.as_ref(), Some(&chars[1]));
        // Without the column, no characters.
        write(&path, [2, 1], None);
        let ex = load(&path, &labels(), &[]).unwrap();
        assert!(ex.iter().all(|e| e.chars.is_none()));
    }

    #[test]
    fn char_ids_that_do_not_fit_the_words_are_an_error_naming_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train.parquet");
        // Row 1 has one word but character ids for two.
        write(
            &path,
            [2, 1],
            Some(&[vec![vec![4], vec![6]], vec![vec![7], vec![8]]]),
        );
        let err = load(&path, &labels(), &[]).unwrap_err().to_string();
        assert!(
            err.contains("train.parquet")
                && err.contains("row 1")
                && err.contains("2 words but `n_words` is 1"),
            "{err}"
        );
        // Row 0's word ids reach word 1 of 1.
        write(&path, [1, 1], Some(&[vec![vec![4]], vec![vec![7]]]));
        let err = load(&path, &labels(), &[]).unwrap_err().to_string();
        assert!(
            err.contains("row 0") && err.contains("word 1 of 1"),
            "{err}"
        );
    }

    #[test]
    fn the_spec_gets_the_char_vocabulary_size_from_chars_json() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[pipeline]\nname = \"t\"\n[[datasets]]\nname = \"d\"\nformat = \"jsonl\"\n\
                    files = { all = \"d.jsonl\" }\n[[tasks]]\nname = \"s\"\ndataset = \"d\"\n\
                    column = \"a\"\ntype = \"classification\"\n[tokenize]\nchar_ids = true\n";
        let cfg = |extra: &str| {
            PipelineConfig::from_toml_str(&format!("{text}{extra}"), Path::new("t.toml")).unwrap()
        };
        let spec = ModelSpec {
            encoder: mtl_model::EncoderSpec::default(),
            tasks: vec![],
        };
        let on = cfg("[model]\nchar_cnn = { filters = 7 }\n");
        let err = with_char_cnn(spec.clone(), &on, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("chars.json") && err.contains("tokenize.char_ids"),
            "{err}"
        );
        CharVocab::new(vec!['a', 'b', 'c'], true, 4)
            .write(&dir.path().join(CharVocab::FILE))
            .unwrap();
        let c = with_char_cnn(spec.clone(), &on, dir.path())
            .unwrap()
            .encoder
            .char_cnn
            .unwrap();
        assert_eq!((c.vocab_size, c.filters), (5, 7));
        let off = with_char_cnn(spec, &cfg(""), dir.path()).unwrap();
        assert_eq!(off.encoder.char_cnn, None);
    }
}
