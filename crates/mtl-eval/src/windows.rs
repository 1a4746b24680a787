//! Windowed tables (`tokenize.truncation = "window"`): an example longer
//! than `max_length` is several rows sharing its `id`, numbered by the
//! `window` column. The model runs over every window; before scoring, the
//! windows of each example merge back into one row, so that every example
//! counts once: token tasks take each word from the window that scores it
//! ([`mtl_core::align::merge_windows`], as `mtl-predict` does), sentence
//! tasks and side inputs come from window 0, the only one that carries
//! sentence labels.
//!
//! A merged row has one position per scored word: its `word_ids` are those
//! words' indices, so [`mtl_core::align::first_subtoken_positions`] reads
//! it like any other row.

use std::collections::{BTreeMap, HashMap};

use mtl_core::align::{merge_windows, scored_positions};
use mtl_core::artifact::{IGNORE_INDEX, col};

use crate::data::{Gold, SplitData};
use crate::error::Result;
use crate::predict::RowPreds;

/// The rows of each example, in window order; examples in the order of
/// their first row.
fn examples(data: &SplitData, windows: &[u32]) -> Result<Vec<Vec<usize>>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (row, id) in data.ids.iter().enumerate() {
        let g = *index.entry(id.as_str()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(row);
    }
    for g in &mut groups {
        g.sort_by_key(|&r| windows[r]);
        let numbers: Vec<u32> = g.iter().map(|&r| windows[r]).collect();
        if numbers.iter().enumerate().any(|(k, &w)| w as usize != k) {
            return Err(data.row_error(
                g[0],
                col::WINDOW,
                format!("the rows of this id have windows {numbers:?}, not 0, 1, 2, ..."),
            ));
        }
        if let Some(&r) = g.iter().find(|&&r| data.n_words[r] != data.n_words[g[0]]) {
            return Err(data.row_error(
                r,
                col::N_WORDS,
                format!(
                    "window {} has {} words, window 0 has {}",
                    windows[r], data.n_words[r], data.n_words[g[0]]
                ),
            ));
        }
    }
    Ok(groups)
}

/// Merges the windows of every example (a table without a `window` column
/// is returned as it is). `preds` holds each task's predictions per row of
/// `data`; the result holds them per example.
pub fn merge(
    data: SplitData,
    preds: BTreeMap<String, RowPreds>,
) -> Result<(SplitData, BTreeMap<String, RowPreds>)> {
    let Some(windows) = &data.windows else {
        return Ok((data, preds));
    };
    let groups = examples(&data, windows)?;
    let wids =
        |g: &[usize]| -> Vec<&[i32]> { g.iter().map(|&r| data.word_ids[r].as_slice()).collect() };
    let mut out = SplitData {
        path: data.path.clone(),
        ids: Vec::with_capacity(groups.len()),
        input_ids: Vec::with_capacity(groups.len()),
        word_ids: Vec::with_capacity(groups.len()),
        n_words: Vec::with_capacity(groups.len()),
        gold: BTreeMap::new(),
        features: Vec::with_capacity(groups.len()),
        windows: None,
    };
    // Per example, the words some window scores: one merged position each.
    let mut scored: Vec<Vec<usize>> = Vec::with_capacity(groups.len());
    for g in &groups {
        let first = g[0];
        let n = data.n_words[first];
        let words: Vec<usize> = scored_positions(&wids(g), n)
            .iter()
            .enumerate()
            .filter_map(|(w, at)| at.map(|_| w))
            .collect();
        out.ids.push(data.ids[first].clone());
        out.input_ids.push(Vec::new());
        out.word_ids.push(words.iter().map(|&w| w as i32).collect());
        out.n_words.push(n);
        out.features.push(data.features[first].clone());
        scored.push(words);
    }

    for (task, gold) in &data.gold {
        let merged = match gold {
            Gold::Sentence(v) => Gold::Sentence(groups.iter().map(|g| v[g[0]]).collect()),
            Gold::Multilabel(v) => {
                Gold::Multilabel(groups.iter().map(|g| v[g[0]].clone()).collect())
            }
            Gold::Regression(v) => Gold::Regression(groups.iter().map(|g| v[g[0]]).collect()),
            // Heads are positions within one window, which no merge could
            // keep; the config refuses windows for dependency tasks.
            Gold::Tree { .. } => {
                return Err(data.row_error(
                    0,
                    &col::heads(task),
                    "a dependency task cannot be scored over windows (use truncation = \"cut\")",
                ));
            }
            Gold::Token(v) => {
                let column = col::target(task);
                let mut rows = Vec::with_capacity(groups.len());
                for (g, words) in groups.iter().zip(&scored) {
                    let labelled: Vec<&Vec<i32>> =
                        g.iter().filter_map(|&r| v[r].as_ref()).collect();
                    if labelled.is_empty() {
                        rows.push(None);
                        continue;
                    }
                    if labelled.len() != g.len() {
                        return Err(data.row_error(
                            g[0],
                            &column,
                            "some windows of this example carry the task and some do not",
                        ));
                    }
                    let by_word = merge_windows(&wids(g), &labelled, data.n_words[g[0]]);
                    rows.push(Some(
                        words
                            .iter()
                            .map(|&w| by_word[w].unwrap_or(IGNORE_INDEX))
                            .collect(),
                    ));
                }
                Gold::Token(rows)
            }
        };
        out.gold.insert(task.clone(), merged);
    }

    let mut merged_preds = BTreeMap::new();
    for (task, p) in preds {
        let merged = match p {
            RowPreds::Sentence(v) => RowPreds::Sentence(groups.iter().map(|g| v[g[0]]).collect()),
            RowPreds::Multilabel(v) => {
                RowPreds::Multilabel(groups.iter().map(|g| v[g[0]].clone()).collect())
            }
            RowPreds::Regression(v) => {
                RowPreds::Regression(groups.iter().map(|g| v[g[0]]).collect())
            }
            RowPreds::Tree { .. } => {
                return Err(data.row_error(
                    0,
                    &col::heads(&task),
                    "a dependency task cannot be scored over windows (use truncation = \"cut\")",
                ));
            }
            RowPreds::Token(v) => {
                let column = col::target(&task);
                let mut rows = Vec::with_capacity(groups.len());
                for (g, words) in groups.iter().zip(&scored) {
                    let values: Vec<&Vec<u32>> = g.iter().map(|&r| &v[r]).collect();
                    let by_word = merge_windows(&wids(g), &values, data.n_words[g[0]]);
                    let row = words
                        .iter()
                        .map(|&w| {
                            by_word[w].ok_or_else(|| {
                                data.row_error(
                                    g[0],
                                    &column,
                                    format!("the model gave no prediction for word {w}"),
                                )
                            })
                        })
                        .collect::<Result<Vec<u32>>>()?;
                    rows.push(row);
                }
                RowPreds::Token(rows)
            }
        };
        merged_preds.insert(task, merged);
    }
    Ok((out, merged_preds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Example "a" (4 words) in two windows sharing words 1 and 2, example
    /// "b" (1 word) in one; the rows of "a" come out of order.
    fn windowed() -> (SplitData, BTreeMap<String, RowPreds>) {
        let mut gold = BTreeMap::new();
        gold.insert(
            "pos".to_string(),
            Gold::Token(vec![
                Some(vec![-100, -100, 7, -100, 8, -100]),
                Some(vec![-100, 9, -100]),
                Some(vec![-100, 5, 6, -100, -100, -100]),
            ]),
        );
        gold.insert(
            "sent".to_string(),
            Gold::Sentence(vec![None, Some(0), Some(1)]),
        );
        let data = SplitData {
            path: PathBuf::from("dev.parquet"),
            ids: vec!["a".into(), "b".into(), "a".into()],
            input_ids: vec![vec![0; 6], vec![0; 3], vec![0; 6]],
            word_ids: vec![
                vec![-1, 1, 2, 2, 3, -1],
                vec![-1, 0, -1],
                vec![-1, 0, 1, 2, 2, -1],
            ],
            n_words: vec![4, 1, 4],
            gold,
            features: vec![
                BTreeMap::from([("n_words".to_string(), 9.0)]),
                BTreeMap::from([("n_words".to_string(), 1.0)]),
                BTreeMap::from([("n_words".to_string(), 4.0)]),
            ],
            windows: Some(vec![1, 0, 0]),
        };
        let mut preds = BTreeMap::new();
        preds.insert(
            "pos".to_string(),
            RowPreds::Token(vec![
                vec![0, 21, 22, 23, 24, 0],
                vec![0, 31, 0],
                vec![0, 10, 11, 12, 13, 0],
            ]),
        );
        preds.insert("sent".to_string(), RowPreds::Sentence(vec![5, 6, 7]));
        (data, preds)
    }

    #[test]
    fn windows_merge_into_one_row_per_example() {
        let (data, preds) = windowed();
        let (m, p) = merge(data, preds).unwrap();
        assert_eq!(m.ids, vec!["a", "b"]);
        assert_eq!(m.n_words, vec![4, 1]);
        assert_eq!(m.word_ids, vec![vec![0, 1, 2, 3], vec![0]]);
        // Word 1 from window 0 (shared, first half), word 2 from window 1.
        assert_eq!(
            m.gold["pos"],
            Gold::Token(vec![Some(vec![5, 6, 7, 8]), Some(vec![9])])
        );
        assert_eq!(
            p["pos"],
            RowPreds::Token(vec![vec![10, 11, 22, 24], vec![31]])
        );
        // Sentence gold, predictions and side inputs from window 0.
        assert_eq!(m.gold["sent"], Gold::Sentence(vec![Some(1), Some(0)]));
        assert_eq!(p["sent"], RowPreds::Sentence(vec![7, 6]));
        assert_eq!(m.features[0]["n_words"], 4.0);
        assert_eq!(m.windows, None);
    }

    #[test]
    fn a_gap_in_the_windows_names_the_id() {
        let (mut data, preds) = windowed();
        data.windows = Some(vec![2, 0, 0]);
        let err = merge(data, preds).unwrap_err().to_string();
        assert!(
            err.contains("dev.parquet") && err.contains("`a`") && err.contains("[0, 2]"),
            "{err}"
        );
    }

    #[test]
    fn tables_without_windows_pass_through() {
        let (mut data, preds) = windowed();
        data.windows = None;
        let (m, p) = merge(data.clone(), preds.clone()).unwrap();
        assert_eq!((m.ids, p), (data.ids, preds));
    }
}
