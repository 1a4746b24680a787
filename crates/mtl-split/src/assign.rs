//! Split assignment. A dataset's own splits win; otherwise each example goes
//! to a split by a hash of its stable key (its group when it has one), so
//! adding data never moves an existing example and a document never straddles
//! two splits. A dataset that brings its own train rows but no dev rows gets
//! a dev set carved out of train by the same hashes
//! (`split.dev_from_train`).

use std::collections::BTreeMap;
use std::path::Path;

use mtl_core::PipelineConfig;
use mtl_core::artifact::{PolarsAt, SPLITS, col};
use mtl_core::config::SplitConfig;
use mtl_core::hash::Fingerprinter;
use polars::prelude::*;

use crate::error::{Error, Result};
use crate::report::CarvedDev;

/// Index into [`SPLITS`].
pub const TRAIN: usize = 0;
pub const DEV: usize = 1;
pub const TEST: usize = 2;

/// Position in `[0, 1)` of `key` under `seed`, uniform and stable.
pub fn unit_hash(seed: u64, key: &str) -> f64 {
    let hex = Fingerprinter::new()
        .part("seed", &seed.to_le_bytes())
        .part("key", key.as_bytes())
        .finish();
    let top = u64::from_str_radix(&hex[..16], 16).unwrap_or(0);
    (top >> 11) as f64 / (1u64 << 53) as f64
}

/// The split (index into [`SPLITS`]) of a hash position.
pub fn split_for(u: f64, cfg: &SplitConfig) -> usize {
    if u < cfg.train {
        TRAIN
    } else if u < cfg.train + cfg.dev {
        DEV
    } else {
        TEST
    }
}

/// The splits of one clean table's rows, and the dev set carved out of its
/// train rows when it brought none.
pub struct Assignment {
    /// Per row, an index into [`SPLITS`].
    pub splits: Vec<usize>,
    pub carved: Option<CarvedDev>,
}

/// The split of every row of one clean table (indices into [`SPLITS`]).
///
/// The dataset's own split wins where it has one. Otherwise the key is the
/// row's group when it has one (so a document stays whole), else its id.
/// Without `split.stratify` the key's hash decides alone, so adding rows
/// never moves an existing one. With it, the ungrouped rows of each label
/// are ranked by that hash and cut at the configured ratios: the
/// proportions are exact per label, at the cost of full stability (adding
/// rows can move rows that sit next to a cut). Grouped rows are never
/// ranked, since a group's sentences may carry different labels.
///
/// A table whose own splits include train but which ends up with no dev
/// row gets `split.dev_from_train` of its own train rows moved to dev, by
/// the same keys, hashes and strata (see `carve_dev`).
pub fn assign_splits(cfg: &PipelineConfig, df: &DataFrame, path: &Path) -> Result<Assignment> {
    let given = df.column(col::SOURCE_SPLIT).at(path)?.str().at(path)?;
    let files = df.column(col::SOURCE_FILE).at(path)?.str().at(path)?;
    let lines = df.column(col::SOURCE_LINE).at(path)?.u32().at(path)?;
    let keys = Keys::new(cfg, df, path)?;
    let mut out = vec![TRAIN; df.height()];
    let mut pending = Pending::new();
    for (i, slot) in out.iter_mut().enumerate() {
        match given.get(i) {
            Some(s) => {
                *slot = SPLITS
                    .iter()
                    .position(|&k| k == s)
                    .ok_or_else(|| Error::BadSplit {
                        file: files.get(i).unwrap_or("?").to_string(),
                        line: lines.get(i).unwrap_or(0),
                        split: s.to_string(),
                    })?;
            }
            None => keys.push(&mut pending, i),
        }
    }
    place(pending, &mut out, |u| split_for(u, &cfg.split));
    let own_train: Vec<usize> = (0..out.len())
        .filter(|&i| given.get(i).is_some() && out[i] == TRAIN)
        .collect();
    let carved = if own_train.is_empty() || out.contains(&DEV) {
        None
    } else {
        Some(carve_dev(cfg, &keys, &own_train, &mut out))
    };
    Ok(Assignment {
        splits: out,
        carved,
    })
}

/// Moves `split.dev_from_train` of the rows `train` (all in train) to dev.
///
/// Each row's key and stratum are those of [`assign_splits`]: unstratified
/// rows go to dev when their key's hash falls below the fraction (so adding
/// train rows never moves an existing one, and a group moves whole), the
/// ungrouped rows of each label of the `stratify` task are ranked by hash
/// and cut at the fraction. When that leaves either side empty (a handful
/// of rows or groups) and there are at least two keys, the key with the
/// lowest hash goes to dev, or the one with the highest back to train; a
/// single key stays in train, and no dev is carved.
fn carve_dev(
    cfg: &PipelineConfig,
    keys: &Keys<'_>,
    train: &[usize],
    out: &mut [usize],
) -> CarvedDev {
    let fraction = cfg.split.dev_from_train;
    let mut pending = Pending::new();
    for &i in train {
        keys.push(&mut pending, i);
    }
    place(pending, out, |u| if u < fraction { DEV } else { TRAIN });

    // Each key with its hash and rows, lowest hash first.
    let mut rows_of: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in train {
        rows_of.entry(keys.key(i)).or_default().push(i);
    }
    let mut units: Vec<(f64, &str, Vec<usize>)> = rows_of
        .into_iter()
        .map(|(key, rows)| (keys.hash(key), key, rows))
        .collect();
    units.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
    let none_in = |out: &[usize], split: usize| train.iter().all(|&i| out[i] != split);
    if none_in(out, TRAIN)
        && let Some((_, _, rows)) = units.last()
    {
        for &i in rows {
            out[i] = TRAIN;
        }
    }
    if none_in(out, DEV) && units.len() >= 2 {
        // Every row is in train here, so the lowest key is not the last.
        for &i in &units[0].2 {
            out[i] = DEV;
        }
    }
    let dev = train.iter().filter(|&&i| out[i] == DEV).count();
    CarvedDev {
        fraction,
        train_before: train.len(),
        dev,
        train: train.len() - dev,
        stratified_by: keys.stratify.clone(),
    }
}

/// Rows waiting for a hash-based split, per stratum (`None`: the hash
/// decides alone), each as (hash position, row).
type Pending = BTreeMap<Option<String>, Vec<(f64, usize)>>;

/// Places the pending rows with `cut`, which maps a position in `[0, 1)` to
/// a split: rows outside any stratum at their key's hash, the rows of each
/// stratum at their rank by hash, `(rank + 0.5) / n`, so the proportions
/// are exact per stratum.
fn place(pending: Pending, out: &mut [usize], cut: impl Fn(f64) -> usize) {
    for (stratum, mut rows) in pending {
        if stratum.is_none() {
            for (u, i) in rows {
                out[i] = cut(u);
            }
            continue;
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let n = rows.len();
        for (rank, (_, i)) in rows.into_iter().enumerate() {
            out[i] = cut((rank as f64 + 0.5) / n as f64);
        }
    }
}

/// What places a row by hash: its key (group, else id) and its stratum.
struct Keys<'a> {
    seed: u64,
    ids: &'a StringChunked,
    groups: &'a StringChunked,
    /// The `stratify` task's labels, when this table carries that task.
    strata: Option<StringChunked>,
    /// The `stratify` task, when this table carries it.
    stratify: Option<String>,
}

impl<'a> Keys<'a> {
    fn new(cfg: &PipelineConfig, df: &'a DataFrame, path: &Path) -> Result<Self> {
        let ids = df.column(col::ID).at(path)?.str().at(path)?;
        let groups = df.column(col::GROUP).at(path)?.str().at(path)?;
        let (strata, stratify) = match &cfg.split.stratify {
            Some(task) => match df.column(&col::label(task)) {
                Ok(c) => (
                    Some(c.cast(&DataType::String).at(path)?.str().at(path)?.clone()),
                    Some(task.clone()),
                ),
                Err(_) => (None, None),
            },
            None => (None, None),
        };
        Ok(Self {
            seed: cfg.pipeline.seed,
            ids,
            groups,
            strata,
            stratify,
        })
    }

    /// The row's group when it has one, else its id.
    fn key(&self, i: usize) -> &'a str {
        self.groups.get(i).or(self.ids.get(i)).unwrap_or("")
    }

    fn hash(&self, key: &str) -> f64 {
        unit_hash(self.seed, key)
    }

    /// Queues row `i` under its stratum: its label of the `stratify` task
    /// when it has one and no group, else none.
    fn push(&self, pending: &mut Pending, i: usize) {
        let u = self.hash(self.key(i));
        let stratum = match (&self.strata, self.groups.get(i)) {
            (Some(s), None) => s.get(i).map(str::to_string),
            _ => None,
        };
        pending.entry(stratum).or_default().push((u, i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_roughly_uniform() {
        assert_eq!(unit_hash(1, "a"), unit_hash(1, "a"));
        assert_ne!(unit_hash(1, "a"), unit_hash(2, "a"));
        let cfg = SplitConfig::default();
        let mut counts = std::collections::HashMap::new();
        for i in 0..10_000 {
            *counts
                .entry(split_for(unit_hash(7, &format!("k{i}")), &cfg))
                .or_insert(0) += 1;
        }
        assert!((7_700..8_300).contains(&counts[&TRAIN]), "{counts:?}");
        assert!((800..1_200).contains(&counts[&DEV]), "{counts:?}");
        assert!((800..1_200).contains(&counts[&TEST]), "{counts:?}");
    }

    fn config(seed: u64, dev_from_train: f64) -> PipelineConfig {
        let mut cfg = PipelineConfig::from_toml_str(
            "[pipeline]\nname = \"t\"\n\
             [[datasets]]\nname = \"d\"\nformat = \"jsonl\"\nfiles = { train = \"t.jsonl\" }\n\
             [[tasks]]\nname = \"s\"\ndataset = \"d\"\ncolumn = \"s\"\ntype = \"classification\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        cfg.pipeline.seed = seed;
        cfg.split.dev_from_train = dev_from_train;
        cfg
    }

    /// A clean table's split columns: row `i` has source split `split(i)`
    /// and group `group(i)`.
    fn frame(
        n: usize,
        split: impl Fn(usize) -> Option<&'static str>,
        group: impl Fn(usize) -> Option<String>,
    ) -> DataFrame {
        let c = |name: &str, v: Vec<Option<String>>| Column::new(name.into(), v);
        DataFrame::new(
            n,
            vec![
                c(col::ID, (0..n).map(|i| Some(format!("r{i}"))).collect()),
                c(
                    col::SOURCE_SPLIT,
                    (0..n).map(|i| split(i).map(String::from)).collect(),
                ),
                c(col::SOURCE_FILE, vec![Some("f".into()); n]),
                Column::new(col::SOURCE_LINE.into(), (1..=n as u32).collect::<Vec<_>>()),
                c(col::GROUP, (0..n).map(group).collect()),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_carve_leaves_neither_side_empty() {
        let path = Path::new("d.parquet");
        for n in 1..=6 {
            for seed in 0..30 {
                for fraction in [0.001, 0.5] {
                    let df = frame(n, |_| Some("train"), |_| None);
                    let a = assign_splits(&config(seed, fraction), &df, path).unwrap();
                    let c = a.carved.unwrap();
                    let dev = a.splits.iter().filter(|&&s| s == DEV).count();
                    let train = a.splits.iter().filter(|&&s| s == TRAIN).count();
                    assert_eq!((c.train_before, c.dev, c.train), (n, dev, train));
                    assert_eq!(train + dev, n);
                    if n == 1 {
                        assert_eq!(dev, 0, "a single row stays in train");
                    } else {
                        assert!(
                            dev > 0 && train > 0,
                            "n {n} seed {seed}: {a:?}",
                            a = a.splits
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn carving_follows_the_hash_and_skips_tables_with_dev_or_without_splits() {
        let path = Path::new("d.parquet");
        let cfg = config(5, 0.2);
        let df = frame(
            500,
            |i| Some(if i % 5 == 0 { "test" } else { "train" }),
            |_| None,
        );
        let a = assign_splits(&cfg, &df, path).unwrap();
        for (i, &s) in a.splits.iter().enumerate() {
            let want = if i % 5 == 0 {
                TEST
            } else if unit_hash(5, &format!("r{i}")) < 0.2 {
                DEV
            } else {
                TRAIN
            };
            assert_eq!(s, want, "row {i}");
        }
        assert!(a.carved.unwrap().dev > 0);

        let own_dev = frame(20, |i| Some(if i == 0 { "dev" } else { "train" }), |_| None);
        let a = assign_splits(&cfg, &own_dev, path).unwrap();
        assert!(a.carved.is_none());
        assert_eq!(a.splits.iter().filter(|&&s| s == DEV).count(), 1);

        let hashed = frame(200, |_| None, |_| None);
        let a = assign_splits(&cfg, &hashed, path).unwrap();
        assert!(a.carved.is_none());
        for (i, &s) in a.splits.iter().enumerate() {
            assert_eq!(s, split_for(unit_hash(5, &format!("r{i}")), &cfg.split));
        }
    }

    #[test]
    fn a_group_is_carved_whole() {
        let path = Path::new("d.parquet");
        let df = frame(400, |_| Some("train"), |i| Some(format!("g{}", i / 8)));
        let a = assign_splits(&config(9, 0.3), &df, path).unwrap();
        for g in a.splits.chunks(8) {
            assert!(g.iter().all(|&s| s == g[0]), "{g:?}");
        }
        assert!(a.splits.contains(&DEV) && a.splits.contains(&TRAIN));
    }
}
