//! `report.json`: what the tokenizer did to each split, so that a user sees
//! unknown-token rates, lengths, truncation losses and what batching by
//! length saves before spending time on training.

use std::collections::BTreeMap;
use std::path::Path;

use mtl_core::config::{TokenizerKind, Truncation};
use serde::{Deserialize, Serialize};

use crate::window::Windowed;

pub const FILE: &str = "report.json";
/// Batch size of the bucketed padding estimate.
pub const BUCKET: usize = 32;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub tokenizer: TokenizerInfo,
    /// Keyed by split name.
    pub splits: BTreeMap<String, SplitReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizerInfo {
    pub kind: TokenizerKind,
    /// The configured path, for `pretrained`.
    pub pretrained: Option<String>,
    /// Including added (special) tokens.
    pub vocab_size: usize,
    pub max_length: usize,
    pub label_all_subtokens: bool,
    pub pad_id: Option<u32>,
    pub unk_id: Option<u32>,
    #[serde(default)]
    pub truncation: Truncation,
    /// Words shared by consecutive windows (`truncation = "window"`).
    #[serde(default)]
    pub stride: usize,
    /// Ids in `chars.json` (padding and unknown included), with
    /// `tokenize.char_ids`.
    #[serde(default)]
    pub char_vocab_size: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    /// Rows written: one per window (one per example without windows).
    pub rows: u64,
    /// Examples of the split table.
    #[serde(default)]
    pub examples: u64,
    /// Examples cut into two windows or more (`truncation = "window"`).
    #[serde(default)]
    pub windowed_examples: u64,
    /// Windows (rows) those examples became.
    #[serde(default)]
    pub windows: u64,
    /// All sub-tokens, special tokens included.
    pub sub_tokens: u64,
    /// Share of word sub-tokens (special tokens excluded) that are the
    /// unknown token; `None` without word sub-tokens or unknown token.
    pub unk_rate: Option<f64>,
    /// Sub-tokens per row, special tokens included, after truncation.
    pub length: LengthStats,
    /// Examples that lost at least one word to truncation (cut), or the
    /// tail of a word longer than a whole window (window).
    pub truncated_examples: u64,
    /// Words lost to truncation, over all examples (cut; windows lose none).
    pub truncated_words: u64,
    /// Words longer than a whole window, whose last sub-tokens were cut
    /// (window); they keep their first sub-token and label.
    #[serde(default)]
    pub cut_words: u64,
    /// Per token-level task: labelled words lost to truncation.
    pub labelled_words_lost: BTreeMap<String, u64>,
    pub padding: PaddingStats,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LengthStats {
    pub p50: Option<u32>,
    pub p90: Option<u32>,
    pub p99: Option<u32>,
    pub max: Option<u32>,
}

/// Share of padding positions in the padded batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaddingStats {
    /// Every example padded to the longest one in the split.
    pub global_max: Option<f64>,
    /// Examples sorted by length, cut into batches of `bucket_size`, each
    /// padded to its own longest example.
    pub bucketed: Option<f64>,
    pub bucket_size: usize,
    /// `tokenize.pad_to`: the trainer pads every batch to this length.
    #[serde(default)]
    pub pad_to: Option<usize>,
    /// Every row padded to `pad_to`: the padding training and eval pay when
    /// it is set (then `bucketed` is only what they would pay without it).
    #[serde(default)]
    pub fixed: Option<f64>,
}

impl PaddingStats {
    /// The padding batches will actually have: `fixed` with `pad_to`,
    /// else `bucketed`.
    pub fn effective(&self) -> Option<f64> {
        if self.pad_to.is_some() {
            self.fixed
        } else {
            self.bucketed
        }
    }
}

impl SplitReport {
    pub fn new(
        examples: &[Windowed],
        unk_id: Option<u32>,
        labelled_words_lost: BTreeMap<String, u64>,
        pad_to: Option<usize>,
    ) -> Self {
        let rows = || examples.iter().flat_map(|x| &x.windows);
        let mut lengths: Vec<u32> = rows().map(|e| e.len() as u32).collect();
        lengths.sort_unstable();
        let windowed = || examples.iter().filter(|x| x.windows.len() > 1);
        let (mut words_tokens, mut unk) = (0u64, 0u64);
        for e in rows() {
            for (id, w) in e.input_ids.iter().zip(&e.word_ids) {
                if *w >= 0 {
                    words_tokens += 1;
                    unk += u64::from(Some(*id) == unk_id);
                }
            }
        }
        SplitReport {
            rows: lengths.len() as u64,
            examples: examples.len() as u64,
            windowed_examples: windowed().count() as u64,
            windows: windowed().map(|x| x.windows.len() as u64).sum(),
            sub_tokens: lengths.iter().map(|&l| u64::from(l)).sum(),
            unk_rate: (words_tokens > 0 && unk_id.is_some())
                .then(|| unk as f64 / words_tokens as f64),
            length: LengthStats {
                p50: percentile(&lengths, 0.50),
                p90: percentile(&lengths, 0.90),
                p99: percentile(&lengths, 0.99),
                max: lengths.last().copied(),
            },
            truncated_examples: examples.iter().filter(|x| x.truncated()).count() as u64,
            truncated_words: examples.iter().map(|x| x.lost_words() as u64).sum(),
            cut_words: examples.iter().map(|x| x.cut_words as u64).sum(),
            labelled_words_lost,
            padding: PaddingStats {
                global_max: padding_global_max(&lengths),
                bucketed: padding_bucketed(&lengths, BUCKET),
                bucket_size: BUCKET,
                pad_to,
                fixed: pad_to.and_then(|n| padding_fixed(&lengths, n)),
            },
        }
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn padding_share(real: u64, padded: u64) -> Option<f64> {
    (padded > 0).then(|| (padded - real) as f64 / padded as f64)
}

pub fn padding_global_max(lengths: &[u32]) -> Option<f64> {
    let max = u64::from(lengths.iter().copied().max()?);
    let real: u64 = lengths.iter().map(|&l| u64::from(l)).sum();
    padding_share(real, max * lengths.len() as u64)
}

/// Every row padded to `pad_to` (rows are never longer: the config keeps
/// `pad_to >= max_length`).
pub fn padding_fixed(lengths: &[u32], pad_to: usize) -> Option<f64> {
    let real: u64 = lengths.iter().map(|&l| u64::from(l)).sum();
    padding_share(real, pad_to as u64 * lengths.len() as u64)
}

pub fn padding_bucketed(lengths: &[u32], bucket: usize) -> Option<f64> {
    let mut sorted = lengths.to_vec();
    sorted.sort_unstable();
    let real: u64 = sorted.iter().map(|&l| u64::from(l)).sum();
    let padded: u64 = sorted
        .chunks(bucket.max(1))
        .map(|c| u64::from(c.iter().copied().max().unwrap_or(0)) * c.len() as u64)
        .sum();
    padding_share(real, padded)
}

impl Report {
    pub fn read(dir: &Path) -> mtl_core::Result<Report> {
        mtl_core::fsio::read_json(&dir.join(FILE))
    }

    /// A few lines for people: one per split.
    pub fn summary(&self) -> String {
        let kind = format!("{:?}", self.tokenizer.kind).to_lowercase();
        let mut out = format!("tokenizer: {kind}, {} tokens", self.tokenizer.vocab_size);
        for (name, s) in &self.splits {
            let pct = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{:.1}%", 100.0 * x));
            out.push_str(&format!(
                "\n{name}: {} rows, unk {}, length p50/p99/max {}/{}/{}, {} truncated",
                s.rows,
                pct(s.unk_rate),
                s.length.p50.unwrap_or(0),
                s.length.p99.unwrap_or(0),
                s.length.max.unwrap_or(0),
                s.truncated_examples,
            ));
            if s.windowed_examples > 0 {
                out.push_str(&format!(
                    ", {} of {} examples in {} windows",
                    s.windowed_examples, s.examples, s.windows
                ));
            }
            match s.padding.pad_to {
                Some(n) => out.push_str(&format!(
                    ", padding {} (pad_to {n}) vs {} (bucketed)",
                    pct(s.padding.fixed),
                    pct(s.padding.bucketed),
                )),
                None => out.push_str(&format!(
                    ", padding {} (bucketed) vs {} (global max)",
                    pct(s.padding.bucketed),
                    pct(s.padding.global_max),
                )),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Encoded;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[7], 0.9), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn bucketing_pads_less_than_the_global_max() {
        // 32 short examples and 32 long ones: buckets separate them.
        let lengths: Vec<u32> = (0..64).map(|i| if i % 2 == 0 { 4 } else { 100 }).collect();
        let global = padding_global_max(&lengths).unwrap();
        let bucketed = padding_bucketed(&lengths, 32).unwrap();
        assert!((global - 0.48).abs() < 1e-9, "{global}");
        assert_eq!(bucketed, 0.0);
        assert_eq!(padding_global_max(&[]), None);
        assert_eq!(padding_bucketed(&[3, 5], 32), Some(0.2));
        assert_eq!(padding_fixed(&[3, 5], 10), Some(0.6));
        assert_eq!(padding_fixed(&[], 10), None);
    }

    #[test]
    fn split_report_counts_unknowns_and_truncation() {
        let e = |ids: Vec<u32>, words: Vec<i32>, lost| Encoded {
            offsets: vec![(0, 0); ids.len()],
            input_ids: ids,
            word_ids: words,
            truncated_words: lost,
        };
        let one = |e| Windowed {
            windows: vec![e],
            cut_words: 0,
        };
        let encoded = vec![
            one(e(vec![2, 1, 9, 3], vec![-1, 0, 1, -1], 0)),
            one(e(vec![2, 9, 3], vec![-1, 0, -1], 2)),
        ];
        let r = SplitReport::new(&encoded, Some(1), BTreeMap::new(), None);
        assert_eq!((r.rows, r.examples, r.windowed_examples), (2, 2, 0));
        assert_eq!(r.sub_tokens, 7);
        assert_eq!(r.unk_rate, Some(1.0 / 3.0));
        assert_eq!(r.length.max, Some(4));
        assert_eq!((r.truncated_examples, r.truncated_words), (1, 2));
        assert_eq!(r.padding.effective(), r.padding.bucketed);
        assert_eq!(r.padding.fixed, None);
    }

    #[test]
    fn split_report_counts_windows_and_fixed_padding() {
        let e = |words: Vec<i32>| Encoded {
            input_ids: vec![5; words.len()],
            offsets: vec![(0, 0); words.len()],
            word_ids: words,
            truncated_words: 0,
        };
        let examples = vec![
            Windowed {
                windows: vec![e(vec![-1, 0, 1, -1]), e(vec![-1, 1, 2, -1])],
                cut_words: 0,
            },
            Windowed {
                windows: vec![e(vec![-1, 0, -1]), e(vec![-1, 1, -1]), e(vec![-1, 2, -1])],
                cut_words: 1,
            },
            Windowed {
                windows: vec![e(vec![-1, 0, -1])],
                cut_words: 0,
            },
        ];
        let r = SplitReport::new(&examples, None, BTreeMap::new(), Some(8));
        assert_eq!((r.rows, r.examples), (6, 3));
        assert_eq!((r.windowed_examples, r.windows), (2, 5));
        assert_eq!(
            (r.truncated_examples, r.truncated_words, r.cut_words),
            (1, 0, 1)
        );
        // 20 real positions in 6 rows of 8.
        assert_eq!(r.padding.fixed, Some(28.0 / 48.0));
        assert_eq!(r.padding.effective(), r.padding.fixed);
    }
}
