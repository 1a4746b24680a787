//! Split assignment. A dataset's own splits win; otherwise each example goes
//! to a split by a hash of its stable key (its group when it has one), so
//! adding data never moves an existing example and a document never straddles
//! two splits.

use std::collections::BTreeMap;
use std::path::Path;

use mtl_core::PipelineConfig;
use mtl_core::artifact::{PolarsAt, SPLITS, col};
use mtl_core::config::SplitConfig;
use mtl_core::hash::Fingerprinter;
use polars::prelude::*;

use crate::error::{Error, Result};

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
pub fn assign_splits(cfg: &PipelineConfig, df: &DataFrame, path: &Path) -> Result<Vec<usize>> {
    let ids = df.column(col::ID).at(path)?.str().at(path)?;
    let given = df.column(col::SOURCE_SPLIT).at(path)?.str().at(path)?;
    let groups = df.column(col::GROUP).at(path)?.str().at(path)?;
    let files = df.column(col::SOURCE_FILE).at(path)?.str().at(path)?;
    let lines = df.column(col::SOURCE_LINE).at(path)?.u32().at(path)?;
    let strata = match &cfg.split.stratify {
        Some(task) => match df.column(&col::label(task)) {
            Ok(c) => Some(c.cast(&DataType::String).at(path)?.str().at(path)?.clone()),
            Err(_) => None,
        },
        None => None,
    };
    let mut out = vec![TRAIN; df.height()];
    // Rows to place by hash, grouped by stratum (None = not stratified).
    let mut pending: BTreeMap<Option<String>, Vec<(f64, usize)>> = BTreeMap::new();
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
            None => {
                let key = groups.get(i).or(ids.get(i)).unwrap_or("");
                let u = unit_hash(cfg.pipeline.seed, key);
                let stratum = match (&strata, groups.get(i)) {
                    (Some(s), None) => s.get(i).map(str::to_string),
                    _ => None,
                };
                pending.entry(stratum).or_default().push((u, i));
            }
        }
    }
    for (stratum, mut rows) in pending {
        if stratum.is_none() {
            for (u, i) in rows {
                out[i] = split_for(u, &cfg.split);
            }
            continue;
        }
        rows.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let n = rows.len();
        for (rank, (_, i)) in rows.into_iter().enumerate() {
            out[i] = split_for((rank as f64 + 0.5) / n as f64, &cfg.split);
        }
    }
    Ok(out)
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
}
