//! Split assignment. A dataset's own splits win; otherwise each example goes
//! to a split by a hash of its stable key (its group when it has one), so
//! adding data never moves an existing example and a document never straddles
//! two splits.

use mtl_core::config::SplitConfig;
use mtl_core::hash::Fingerprinter;

/// Position in `[0, 1)` of `key` under `seed`, uniform and stable.
pub fn unit_hash(seed: u64, key: &str) -> f64 {
    let hex = Fingerprinter::new()
        .part("seed", &seed.to_le_bytes())
        .part("key", key.as_bytes())
        .finish();
    let top = u64::from_str_radix(&hex[..16], 16).unwrap_or(0);
    (top >> 11) as f64 / (1u64 << 53) as f64
}

/// `train`, `dev` or `test` for a hash position.
pub fn split_for(u: f64, cfg: &SplitConfig) -> &'static str {
    if u < cfg.train {
        "train"
    } else if u < cfg.train + cfg.dev {
        "dev"
    } else {
        "test"
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
        assert!((7_700..8_300).contains(&counts["train"]), "{counts:?}");
        assert!((800..1_200).contains(&counts["dev"]), "{counts:?}");
        assert!((800..1_200).contains(&counts["test"]), "{counts:?}");
    }
}
