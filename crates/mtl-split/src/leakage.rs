//! Leakage: examples whose normalized text appears in more than one split.
//! They are always reported; with `split.drop_leaked` they are removed from
//! the evaluation side:
//!
//! - a dev or test row whose text is also in train (the model saw it);
//! - a test row whose text is also in dev (model selection saw it, so the
//!   test score would not be independent of it). Dev keeps such rows.
//!
//! Train is never touched. Texts that normalize to nothing (only
//! punctuation or emoji, say) are not compared: they are not evidence of a
//! shared example.

use std::collections::{BTreeMap, BTreeSet};

use mtl_core::artifact::SPLITS;
use serde::{Deserialize, Serialize};

use crate::assign::{DEV, TEST, TRAIN};

/// How many leaked texts the report shows.
const SAMPLES: usize = 5;
/// How many row ids a sample lists.
const SAMPLE_IDS: usize = 5;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Leakage {
    /// Distinct normalized texts found in more than one split.
    pub texts: usize,
    /// Rows (all splits) whose normalized text appears in another split.
    pub rows: usize,
    /// Dev rows whose text is also in train.
    pub dev_in_train: usize,
    /// Test rows whose text is also in train.
    pub test_in_train: usize,
    /// Test rows whose text is also in dev but not in train.
    pub test_in_dev: usize,
    /// Whether `split.drop_leaked` removed them.
    pub dropped_enabled: bool,
    /// Rows removed per split (`dev`, `test`); zeros when not enabled.
    pub dropped: BTreeMap<String, usize>,
    /// A few leaked texts, in normalized-text order.
    pub samples: Vec<LeakSample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakSample {
    pub text: String,
    pub splits: Vec<String>,
    /// The first few row ids carrying the text.
    pub ids: Vec<String>,
}

/// Lowercased letters and digits only: the key under which two texts count
/// as the same example.
pub fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The leakage of rows `(id, text, split)`, and which rows to keep (all of
/// them unless `drop`).
pub fn find(
    ids: &[Option<&str>],
    texts: &[Option<&str>],
    splits: &[usize],
    drop: bool,
) -> (Leakage, Vec<bool>) {
    struct Seen<'a> {
        splits: BTreeSet<usize>,
        rows: usize,
        text: &'a str,
        ids: Vec<&'a str>,
    }
    let keys: Vec<Option<String>> = texts
        .iter()
        .map(|t| t.map(normalize).filter(|k| !k.is_empty()))
        .collect();
    let mut seen: BTreeMap<&str, Seen> = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        let Some(key) = key else { continue };
        let e = seen.entry(key.as_str()).or_insert_with(|| Seen {
            splits: BTreeSet::new(),
            rows: 0,
            text: texts[i].unwrap_or(""),
            ids: Vec::new(),
        });
        e.splits.insert(splits[i]);
        e.rows += 1;
        if e.ids.len() < SAMPLE_IDS {
            e.ids.push(ids[i].unwrap_or("?"));
        }
    }
    let mut report = Leakage {
        dropped_enabled: drop,
        dropped: [DEV, TEST].map(|s| (SPLITS[s].to_string(), 0)).into(),
        ..Leakage::default()
    };
    let mut keep = vec![true; splits.len()];
    for (i, key) in keys.iter().enumerate() {
        let Some(in_splits) = key.as_ref().map(|k| &seen[k.as_str()].splits) else {
            continue;
        };
        let leaked = match splits[i] {
            DEV if in_splits.contains(&TRAIN) => {
                report.dev_in_train += 1;
                true
            }
            TEST if in_splits.contains(&TRAIN) => {
                report.test_in_train += 1;
                true
            }
            TEST if in_splits.contains(&DEV) => {
                report.test_in_dev += 1;
                true
            }
            _ => false,
        };
        if leaked && drop {
            keep[i] = false;
            *report
                .dropped
                .entry(SPLITS[splits[i]].to_string())
                .or_default() += 1;
        }
    }
    for s in seen.values().filter(|s| s.splits.len() > 1) {
        report.texts += 1;
        report.rows += s.rows;
        if report.samples.len() < SAMPLES {
            report.samples.push(LeakSample {
                text: s.text.to_string(),
                splits: s.splits.iter().map(|&i| SPLITS[i].to_string()).collect(),
                ids: s.ids.iter().map(|id| id.to_string()).collect(),
            });
        }
    }
    (report, keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_drops_the_evaluation_side_only() {
        let texts = [
            "Hello, world!", // train
            "hello world",   // dev: in train
            "HELLO WORLD.",  // test: in train
            "only dev",      // dev
            "Only dev!",     // test: in dev
            "unique",        // test
            "!!!",           // train: normalizes to nothing
            "...",           // test: not compared
        ];
        let splits = [TRAIN, DEV, TEST, DEV, TEST, TEST, TRAIN, TEST];
        let ids: Vec<String> = (0..texts.len()).map(|i| format!("r{i}")).collect();
        let ids: Vec<Option<&str>> = ids.iter().map(|s| Some(s.as_str())).collect();
        let texts: Vec<Option<&str>> = texts.iter().map(|t| Some(*t)).collect();

        let (report, keep) = find(&ids, &texts, &splits, false);
        assert!(keep.iter().all(|&k| k));
        assert_eq!((report.texts, report.rows), (2, 5));
        assert_eq!(
            (
                report.dev_in_train,
                report.test_in_train,
                report.test_in_dev
            ),
            (1, 1, 1)
        );
        assert_eq!(report.dropped["dev"] + report.dropped["test"], 0);
        assert_eq!(report.samples[0].text, "Hello, world!");
        assert_eq!(report.samples[0].splits, vec!["train", "dev", "test"]);
        assert_eq!(report.samples[0].ids, vec!["r0", "r1", "r2"]);

        let (report, keep) = find(&ids, &texts, &splits, true);
        assert_eq!(
            keep,
            vec![true, false, false, true, false, true, true, true]
        );
        assert_eq!((report.dropped["dev"], report.dropped["test"]), (1, 2));
    }
}
