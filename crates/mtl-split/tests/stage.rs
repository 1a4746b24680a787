//! The split stage end to end on hand-made clean folders.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use mtl_core::artifact::{SPLITS, col};
use mtl_core::{FeatureSet, LabelSet, Outcome, TaskKind};
use mtl_split::{SplitReport, read_report, render_summary, run};
use polars::prelude::*;

/// Dataset `a` (sentence labels, split by mtl, an extra feature column)
/// and dataset `b` (word tags, its own train/dev splits, a CoNLL-U style
/// extra column).
fn two_datasets(a_rows: usize, bad_dev_tag: bool) -> Vec<Table> {
    let a = Table::new("a", a_rows).class("sent", |i| Some(["pos", "neg"][i % 2].into()));
    let b = Table::new("b", 9)
        .split(|i| Some(if i < 6 { "train" } else { "dev" }))
        .list("tags", move |i| {
            let last = if bad_dev_tag && i == 7 { "ZZZ" } else { "N" };
            Some(strings(&["D", "N", "P", "N", last]))
        })
        .column(list_column(
            "conllu_lemma",
            (0..9).map(|_| Some(strings(&["the", "lemma", "of", "text", "b"]))),
        ));
    vec![a, b]
}

fn two_configs(extra: &str) -> mtl_core::PipelineConfig {
    config(&[
        dataset("a", false),
        dataset("b", true),
        task("sent", "a", "classification", ""),
        task("tags", "b", "tagging", ""),
        extra.to_string(),
    ])
}

#[test]
fn fuses_two_datasets_with_disjoint_tasks() {
    let root = tempfile::tempdir().unwrap();
    let clean = clean_dir(root.path(), &two_datasets(200, false), "fuse");
    let out = root.path().join("split");
    let cfg = two_configs("");
    assert!(matches!(
        run(&cfg, &clean, &out, false).unwrap(),
        Outcome::Ran(_)
    ));

    let labels = LabelSet::read(&out.join("labels.json")).unwrap();
    assert_eq!(labels.get("sent").unwrap().labels, vec!["neg", "pos"]);
    assert_eq!(labels.get("tags").unwrap().labels, vec!["D", "N", "P"]);
    // 6 train rows of b, 5 words each: D 6, N 18, P 6.
    assert_eq!(labels.get("tags").unwrap().train_counts, vec![6, 18, 6]);

    let mut per_dataset: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for s in SPLITS {
        let df = read(&out, s);
        let sent = df
            .column(&col::label("sent"))
            .unwrap()
            .str()
            .unwrap()
            .clone();
        let tags = df
            .column(&col::label("tags"))
            .unwrap()
            .list()
            .unwrap()
            .clone();
        let lemma = df.column("conllu_lemma").unwrap().list().unwrap().clone();
        let feat = df.column(&col::feature("n_urls")).unwrap();
        assert_eq!(feat.dtype(), &DataType::Float32);
        for (i, d) in strs(&df, col::DATASET).into_iter().enumerate() {
            let d = d.unwrap();
            // Each row carries exactly its own dataset's task, and the
            // extra column only where its dataset has it.
            match d.as_str() {
                "a" => assert!(
                    sent.get(i).is_some()
                        && tags.get_as_series(i).is_none()
                        && lemma.get_as_series(i).is_none()
                ),
                "b" => assert!(
                    sent.get(i).is_none()
                        && tags.get_as_series(i).is_some()
                        && lemma.get_as_series(i).is_some()
                ),
                other => panic!("unexpected dataset {other}"),
            }
            *per_dataset.entry((d, s)).or_default() += 1;
        }
    }
    // b's own splits are kept.
    assert_eq!(per_dataset.get(&("b".into(), "train")), Some(&6));
    assert_eq!(per_dataset.get(&("b".into(), "dev")), Some(&3));
    assert_eq!(per_dataset.get(&("b".into(), "test")), None);
    let a_total: usize = SPLITS
        .iter()
        .map(|s| per_dataset.get(&("a".into(), *s)).copied().unwrap_or(0))
        .sum();
    assert_eq!(a_total, 200);

    let report = read_report(&out).unwrap();
    assert_eq!(report.tasks["tags"].examples["dev"], 3);
    assert_eq!(report.tasks["tags"].distribution["train"]["N"], 18);
    assert_eq!(report.tasks["tags"].imbalance_ratio, Some(3.0));
    assert_eq!(report.tasks["sent"].kind, TaskKind::Classification);

    assert!(matches!(
        run(&cfg, &clean, &out, false).unwrap(),
        Outcome::Cached(_)
    ));
}

#[test]
fn one_input_with_several_labellings_is_one_row() {
    let root = tempfile::tempdir().unwrap();
    let t = Table::new("d", 40)
        .class("topic", |i| Some(["x", "y"][i % 2].into()))
        .regression("score", |i| (i % 5 != 0).then_some(i as f64 / 10.0));
    let clean = clean_dir(root.path(), &[t], "multi");
    let out = root.path().join("split");
    let cfg = config(&[
        dataset("d", false),
        task("topic", "d", "classification", ""),
        task("score", "d", "regression", ""),
    ]);
    run(&cfg, &clean, &out, false).unwrap();
    let mut rows = 0;
    for s in SPLITS {
        let df = read(&out, s);
        rows += df.height();
        let topic = df
            .column(&col::label("topic"))
            .unwrap()
            .str()
            .unwrap()
            .clone();
        let score = df.column(&col::label("score")).unwrap();
        assert_eq!(score.dtype(), &DataType::Float64);
        let score = score.f64().unwrap();
        for (i, id) in strs(&df, col::ID).into_iter().enumerate() {
            let n: usize = id.unwrap()[2..].parse().unwrap();
            assert!(topic.get(i).is_some());
            assert_eq!(
                score.get(i),
                (!n.is_multiple_of(5)).then_some(n as f64 / 10.0)
            );
        }
    }
    assert_eq!(rows, 40);
}

#[test]
fn same_input_gives_identical_bytes() {
    let root = tempfile::tempdir().unwrap();
    let tables = two_datasets(50, false);
    let clean = clean_dir(root.path(), &tables, "det");
    let cfg = two_configs("[features]\ntop_k = 3\n");
    let (o1, o2) = (root.path().join("s1"), root.path().join("s2"));
    run(&cfg, &clean, &o1, false).unwrap();
    run(&cfg, &clean, &o2, false).unwrap();
    let files = |dir: &std::path::Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let names = files(&o1);
    assert_eq!(names, files(&o2));
    for f in [
        "train.parquet",
        "dev.parquet",
        "test.parquet",
        "labels.json",
        "report.json",
        "features.json",
        "manifest.json",
    ] {
        assert!(names.contains(f), "{f} missing: {names:?}");
    }
    for f in &names {
        let (a, b) = (
            std::fs::read(o1.join(f)).unwrap(),
            std::fs::read(o2.join(f)).unwrap(),
        );
        if f == "manifest.json" {
            // Everything but the clock.
            let strip = |bytes: &[u8]| {
                let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                let m = v.as_object_mut().unwrap();
                m.remove("timings_ms").unwrap();
                m.remove("created_unix_s").unwrap();
                v
            };
            assert_eq!(strip(&a), strip(&b));
        } else {
            assert_eq!(a, b, "{f}");
        }
    }
}

#[test]
fn adding_rows_moves_no_existing_row() {
    let root = tempfile::tempdir().unwrap();
    let grouped = |n: usize| {
        Table::new("a", n)
            .class("sent", |i| Some(["pos", "neg"][i % 2].into()))
            .groups(|i| (i % 3 == 0).then(|| format!("doc{}", i / 30)))
    };
    let cfg = config(&[dataset("a", false), task("sent", "a", "classification", "")]);
    let small = clean_dir(root.path(), &[grouped(100)], "small");
    let big = clean_dir(root.path(), &[grouped(300)], "big");
    run(&cfg, &small, &root.path().join("o_small"), false).unwrap();
    run(&cfg, &big, &root.path().join("o_big"), false).unwrap();
    let (a, b) = (
        assignment(&root.path().join("o_small")),
        assignment(&root.path().join("o_big")),
    );
    assert_eq!(a.len(), 100);
    for (id, split) in &a {
        assert_eq!(b.get(id), Some(split), "{id} moved");
    }
}

#[test]
fn no_group_spans_two_splits() {
    let root = tempfile::tempdir().unwrap();
    // 80 documents of 6 sentences each.
    let t = Table::new("a", 480)
        .class("sent", |i| Some(["pos", "neg", "neu"][i % 3].into()))
        .groups(|i| Some(format!("doc{}", i / 6)));
    let clean = clean_dir(root.path(), &[t], "groups");
    let out = root.path().join("split");
    // Stratification must not break groups either.
    let cfg = config(&[
        dataset("a", false),
        task("sent", "a", "classification", ""),
        "[split]\nstratify = \"sent\"\n".into(),
    ]);
    run(&cfg, &clean, &out, false).unwrap();
    let mut group_splits: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut used = BTreeSet::new();
    for s in SPLITS {
        let df = read(&out, s);
        for g in strs(&df, col::GROUP) {
            group_splits.entry(g.unwrap()).or_default().insert(s.into());
            used.insert(s);
        }
    }
    assert_eq!(group_splits.len(), 80);
    for (g, splits) in &group_splits {
        assert_eq!(splits.len(), 1, "{g} is in {splits:?}");
    }
    assert_eq!(used.len(), 3, "80 groups should reach every split");
}

#[test]
fn stratified_split_keeps_label_proportions_within_tolerance() {
    let root = tempfile::tempdir().unwrap();
    // Imbalanced 3:1, 800 rows.
    let t = Table::new("a", 800).class("sent", |i| {
        Some(if i % 4 == 0 { "rare" } else { "common" }.into())
    });
    let clean = clean_dir(root.path(), &[t], "strat");
    let out = root.path().join("split");
    let cfg = config(&[
        dataset("a", false),
        task("sent", "a", "classification", ""),
        "[split]\ntrain = 0.7\ndev = 0.15\ntest = 0.15\nstratify = \"sent\"\n".into(),
    ]);
    run(&cfg, &clean, &out, false).unwrap();
    for (s, share) in [("train", 0.7), ("dev", 0.15), ("test", 0.15)] {
        let labels = strs(&read(&out, s), &col::label("sent"));
        for (label, total) in [("rare", 200.0), ("common", 600.0)] {
            let n = labels
                .iter()
                .filter(|l| l.as_deref() == Some(label))
                .count() as f64;
            let want = share * total;
            assert!((n - want).abs() <= 1.0, "{s}/{label}: {n} vs {want}");
        }
    }
}

#[test]
fn unknown_labels_error_names_label_task_file_and_line() {
    let root = tempfile::tempdir().unwrap();
    let clean = clean_dir(root.path(), &two_datasets(20, true), "unknown");
    let err = run(&two_configs(""), &clean, &root.path().join("split"), false)
        .unwrap_err()
        .to_string();
    // Row 7 of b is its 8th line.
    assert!(err.contains("b.jsonl:8"), "{err}");
    assert!(err.contains("`ZZZ`") && err.contains("`tags`"), "{err}");

    // Global map-to.
    let mapped = two_configs("[split.unknown_labels]\npolicy = \"map-to\"\nlabel = \"N\"\n");
    let out = root.path().join("split2");
    run(&mapped, &clean, &out, false).unwrap();
    let dev = read(&out, "dev");
    let at = strs(&dev, col::ID)
        .iter()
        .position(|id| id.as_deref() == Some("b-7"))
        .unwrap();
    let row = dev
        .column(&col::label("tags"))
        .unwrap()
        .list()
        .unwrap()
        .get_as_series(at)
        .unwrap();
    assert_eq!(row.str().unwrap().get(4), Some("N"));
    assert_eq!(
        read_report(&out).unwrap().tasks["tags"].mapped_unknown["dev"],
        1
    );
}

#[test]
fn a_tasks_own_unknown_label_policy_wins() {
    let root = tempfile::tempdir().unwrap();
    let clean = clean_dir(root.path(), &two_datasets(20, true), "override");
    let tags = |extra: &str| {
        config(&[
            dataset("a", false),
            dataset("b", true),
            task("sent", "a", "classification", ""),
            task("tags", "b", "tagging", extra),
            "[split.unknown_labels]\npolicy = \"map-to\"\nlabel = \"P\"\n".into(),
        ])
    };
    // The task says error although split says map-to.
    let err = run(
        &tags("unknown_labels = { policy = \"error\" }\n"),
        &clean,
        &root.path().join("s1"),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("b.jsonl:8") && err.contains("`ZZZ`"), "{err}");

    // The task maps to D although split maps to P.
    let out = root.path().join("s2");
    run(
        &tags("unknown_labels = { policy = \"map-to\", label = \"D\" }\n"),
        &clean,
        &out,
        false,
    )
    .unwrap();
    let dev = read(&out, "dev");
    let at = strs(&dev, col::ID)
        .iter()
        .position(|id| id.as_deref() == Some("b-7"))
        .unwrap();
    let row = dev
        .column(&col::label("tags"))
        .unwrap()
        .list()
        .unwrap()
        .get_as_series(at)
        .unwrap();
    assert_eq!(row.str().unwrap().get(4), Some("D"));

    // A task's own fallback must be a training label, even if unused.
    let err = run(
        &tags("unknown_labels = { policy = \"map-to\", label = \"Q\" }\n"),
        &clean,
        &root.path().join("s3"),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("`tasks[1].unknown_labels.label`") && err.contains("`Q`"),
        "{err}"
    );
}

#[test]
fn rare_training_labels_follow_the_policy() {
    let root = tempfile::tempdir().unwrap();
    // `rare` occurs once (in train: dataset splits).
    let t = Table::new("a", 30)
        .split(|i| Some(if i < 20 { "train" } else { "dev" }))
        .class("sent", |i| {
            Some(if i == 3 { "rare" } else { ["x", "y"][i % 2] }.into())
        });
    let clean = clean_dir(root.path(), &[t], "rare");
    let base = [dataset("a", true), task("sent", "a", "classification", "")];
    let err = run(
        &config(&[
            base[0].clone(),
            base[1].clone(),
            "[split]\nmin_label_count = 2\n".into(),
        ]),
        &clean,
        &root.path().join("s1"),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("a.jsonl:4") && err.contains("`rare`"), "{err}");

    let out = root.path().join("s2");
    let cfg = config(&[
        base[0].clone(),
        base[1].clone(),
        "[split]\nmin_label_count = 2\nunknown_labels = { policy = \"map-to\", label = \"x\" }\n"
            .into(),
    ]);
    run(&cfg, &clean, &out, false).unwrap();
    let l = LabelSet::read(&out.join("labels.json")).unwrap();
    let sent = l.get("sent").unwrap();
    assert_eq!(sent.labels, vec!["x", "y"]);
    // Counts are taken after mapping: 10 x + the mapped rare one; y 9.
    assert_eq!(sent.train_counts, vec![11, 9]);
}

#[test]
fn multilabel_vocabulary_counts_texts_and_maps_unknown_labels() {
    let root = tempfile::tempdir().unwrap();
    // Rows 0..8 train, 8..12 test, 12 dev (so no dev is carved from train).
    let t = Table::new("m", 13)
        .split(|i| {
            Some(match i {
                0..8 => "train",
                12 => "dev",
                _ => "test",
            })
        })
        .list("emo", |i| {
            Some(match i {
                0 => strings(&["joy", "anger", "joy"]),
                1 => strings(&["joy"]),
                2 => strings(&[]),
                3 => strings(&["fear", "joy"]),
                4..=7 => strings(&["anger"]),
                8 => strings(&["surprise", "joy", "other"]),
                _ => strings(&["other"]),
            })
        })
        .class("dummy", |_| None);
    let t = Table {
        extra: t
            .extra
            .into_iter()
            .filter(|c| c.name() != "label_dummy")
            .collect(),
        ..t
    };
    let clean = clean_dir(root.path(), &[t], "multilabel");
    let cfg = config(&[
        dataset("m", true),
        task(
            "emo",
            "m",
            "multilabel",
            "unknown_labels = { policy = \"map-to\", label = \"joy\" }\n",
        ),
    ]);
    let out = root.path().join("split");
    run(&cfg, &clean, &out, false).unwrap();
    let l = LabelSet::read(&out.join("labels.json")).unwrap();
    let emo = l.get("emo").unwrap();
    assert_eq!(emo.kind, TaskKind::Multilabel);
    assert_eq!(emo.labels, vec!["anger", "fear", "joy"]);
    // Texts carrying each label (row 0's duplicate joy counts once).
    assert_eq!(emo.train_counts, vec![5, 1, 3]);
    assert!(emo.class_weights.is_none() && emo.target.is_none());

    let test = read(&out, "test");
    let lists = test
        .column(&col::label("emo"))
        .unwrap()
        .list()
        .unwrap()
        .clone();
    let ids = strs(&test, col::ID);
    let at = ids
        .iter()
        .position(|id| id.as_deref() == Some("m-8"))
        .unwrap();
    let row: Vec<String> = lists
        .get_as_series(at)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.unwrap().to_string())
        .collect();
    // surprise -> joy, joy stays, other -> joy: one joy left.
    assert_eq!(row, vec!["joy"]);
    let r = read_report(&out).unwrap();
    assert_eq!(r.tasks["emo"].mapped_unknown["test"], 2 + 3);
    assert_eq!(r.tasks["emo"].distribution["train"]["anger"], 5);
}

#[test]
fn regression_gets_target_stats_and_no_vocabulary() {
    let root = tempfile::tempdir().unwrap();
    let t = Table::new("r", 10)
        .split(|i| Some(if i < 6 { "train" } else { "dev" }))
        .regression("score", |i| (i != 2).then_some(i as f64));
    let clean = clean_dir(root.path(), &[t], "regression");
    let cfg = config(&[dataset("r", true), task("score", "r", "regression", "")]);
    let out = root.path().join("split");
    run(&cfg, &clean, &out, false).unwrap();
    let l = LabelSet::read(&out.join("labels.json")).unwrap();
    let s = l.get("score").unwrap();
    assert!(s.labels.is_empty() && s.train_counts.is_empty());
    // Train targets 0, 1, 3, 4, 5.
    let t = s.target.unwrap();
    assert_eq!((t.count, t.mean, t.min, t.max), (5, 2.6, 0.0, 5.0));
    let var = [0.0, 1.0, 3.0, 4.0, 5.0]
        .iter()
        .map(|v: &f64| (v - 2.6).powi(2))
        .sum::<f64>()
        / 5.0;
    assert!((t.std - var.sqrt()).abs() < 1e-12);
    let r = read_report(&out).unwrap();
    assert_eq!(r.tasks["score"].imbalance_ratio, None);
    assert_eq!(r.tasks["score"].targets["dev"].count, 4);
    assert_eq!(r.tasks["score"].examples["train"], 5);

    // A non-finite target names its line.
    let t = Table::new("r", 4).regression("score", |i| Some(if i == 1 { f64::NAN } else { 1.0 }));
    let clean = clean_dir(root.path(), &[t], "nan");
    let err = run(&cfg, &clean, &root.path().join("nan"), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("r.jsonl:2") && err.contains("`score`"),
        "{err}"
    );
}

#[test]
fn class_weights_balanced_and_explicit() {
    let root = tempfile::tempdir().unwrap();
    // 40 train rows and 4 dev rows (so no dev is carved out of train).
    let t = Table::new("a", 44)
        .split(|i| Some(if i < 40 { "train" } else { "dev" }))
        .class("sent", |i| {
            Some(if i % 4 == 0 { "rare" } else { "common" }.into())
        });
    let clean = clean_dir(root.path(), &[t], "weights");
    let weights = |w: &str, tag: &str| {
        let cfg = config(&[
            dataset("a", true),
            task(
                "sent",
                "a",
                "classification",
                &format!("class_weights = {w}\n"),
            ),
        ]);
        let out = root.path().join(tag);
        run(&cfg, &clean, &out, false).map(|_| {
            LabelSet::read(&out.join("labels.json"))
                .unwrap()
                .get("sent")
                .unwrap()
                .clone()
        })
    };
    // common 30, rare 10: 40 / (2 * count).
    let b = weights("\"balanced\"", "b").unwrap();
    assert_eq!(b.labels, vec!["common", "rare"]);
    assert_eq!(b.class_weights, Some(vec![40.0 / 60.0, 2.0]));
    let e = weights("{ rare = 5.0 }", "e").unwrap();
    assert_eq!(e.class_weights, Some(vec![1.0, 5.0]));
    let err = weights("{ rare = 5.0, nope = 2.0 }", "x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`tasks[0].class_weights.nope`"), "{err}");
    // Without class_weights the field is absent.
    let text = {
        let cfg = config(&[dataset("a", true), task("sent", "a", "classification", "")]);
        run(&cfg, &clean, &root.path().join("n"), false).unwrap();
        std::fs::read_to_string(root.path().join("n/labels.json")).unwrap()
    };
    assert!(!text.contains("class_weights"), "{text}");
}

fn leaky() -> Table {
    // train 0..6, dev 6..9, test 9..12. dev row 6 repeats train row 0, test
    // row 9 repeats train row 1, test row 10 repeats dev row 7.
    Table::new("a", 12)
        .split(|i| {
            Some(match i {
                0..=5 => "train",
                6..=8 => "dev",
                _ => "test",
            })
        })
        .texts(|i| match i {
            6 => "Text number 0 of a!".into(),
            9 => "TEXT NUMBER 1 OF A".into(),
            10 => "text number 7 of a".into(),
            i => format!("text number {i} of a"),
        })
        .class("sent", |i| Some(["pos", "neg"][i % 2].into()))
}

#[test]
fn leakage_is_reported_and_dropped_from_the_evaluation_side() {
    let root = tempfile::tempdir().unwrap();
    let clean = clean_dir(root.path(), &[leaky()], "leak");
    let base = [dataset("a", true), task("sent", "a", "classification", "")];

    let out = root.path().join("keep");
    run(&config(&base), &clean, &out, false).unwrap();
    let r = read_report(&out).unwrap();
    assert_eq!((r.leakage.texts, r.leakage.rows), (3, 6));
    assert_eq!(
        (
            r.leakage.dev_in_train,
            r.leakage.test_in_train,
            r.leakage.test_in_dev
        ),
        (1, 1, 1)
    );
    assert!(!r.leakage.dropped_enabled);
    assert_eq!(r.rows["dev"] + r.rows["test"], 6);
    assert_eq!(r.leakage.samples.len(), 3);

    let out = root.path().join("drop");
    let cfg = config(&[
        base[0].clone(),
        base[1].clone(),
        "[split]\ndrop_leaked = true\n".into(),
    ]);
    run(&cfg, &clean, &out, false).unwrap();
    let r = read_report(&out).unwrap();
    assert!(r.leakage.dropped_enabled);
    assert_eq!(
        (r.leakage.dropped["dev"], r.leakage.dropped["test"]),
        (1, 2)
    );
    assert_eq!((r.rows["train"], r.rows["dev"], r.rows["test"]), (6, 2, 1));
    assert_eq!(
        (
            r.tasks["sent"].examples["dev"],
            r.tasks["sent"].examples["test"]
        ),
        (2, 1)
    );
    let ids = |s: &str| {
        strs(&read(&out, s), col::ID)
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("train").len(), 6);
    assert_eq!(ids("dev"), vec!["a-7", "a-8"]);
    assert_eq!(ids("test"), vec!["a-11"]);
    let m = mtl_core::Manifest::read(&out).unwrap();
    assert_eq!((m.rows["dev"], m.rows["leaked_dropped_test"]), (2, 2));
}

#[test]
fn features_are_ranked_by_mutual_information_and_selected() {
    let root = tempfile::tempdir().unwrap();
    // n_urls is the label itself; n_hashtags is independent of it;
    // n_mentions is constant. Dataset b has only a token task. Each brings
    // a few dev rows, so train is exactly its train rows.
    let a = Table::new("a", 404)
        .split(|i| Some(if i < 400 { "train" } else { "dev" }))
        .class("sent", |i| Some(["pos", "neg"][i % 2].into()))
        .regression("score", |i| Some((i % 2) as f64 * 10.0 + (i % 3) as f64))
        .feature("n_urls", |i| (i % 2) as f32)
        .feature("n_hashtags", |i| ((i / 2) % 2) as f32)
        .feature("n_mentions", |_| 1.0)
        .feature("n_chars", |i| i as f32);
    let b = Table::new("b", 12)
        .split(|i| Some(if i < 10 { "train" } else { "dev" }))
        .list("tags", |_| Some(strings(&["D", "N", "P", "N", "N"])));
    let clean = clean_dir(root.path(), &[a, b], "features");
    let cfg = |extra: &str| {
        config(&[
            dataset("a", true),
            dataset("b", true),
            task("sent", "a", "classification", ""),
            task("score", "a", "regression", ""),
            task("tags", "b", "tagging", ""),
            extra.to_string(),
        ])
    };

    let out = root.path().join("topk");
    run(
        &cfg("[features]\ntop_k = 2\nbins = 4\n"),
        &clean,
        &out,
        false,
    )
    .unwrap();
    let f = FeatureSet::read(&out.join("features.json")).unwrap();
    assert_eq!(f.tasks.keys().collect::<Vec<_>>(), vec!["score", "sent"]);
    let sent = &f.tasks["sent"];
    assert_eq!(sent.ranking.len(), mtl_core::artifact::FEATURES.len());
    assert_eq!(sent.ranking[0].feature, "n_urls");
    assert!(
        (sent.ranking[0].mi - 2f64.ln()).abs() < 1e-9,
        "{:?}",
        sent.ranking
    );
    let mi = |name: &str| sent.ranking.iter().find(|r| r.feature == name).unwrap().mi;
    assert!(mi("n_hashtags").abs() < 1e-9);
    assert_eq!(mi("n_mentions"), 0.0);
    assert!(sent.ranking.windows(2).all(|w| w[0].mi >= w[1].mi));
    assert_eq!(sent.selected.len(), 2);
    assert_eq!(sent.selected[0], "n_urls");
    assert_eq!(f.tasks["score"].ranking[0].feature, "n_urls");
    // Stats over all train rows (a and b): n_mentions 1 on a, default
    // ((i * 10) % 7) on b's 10 rows.
    let b_mentions: Vec<f64> = (0..10).map(|i| ((i * 10) % 7) as f64).collect();
    let mean = (400.0 + b_mentions.iter().sum::<f64>()) / 410.0;
    assert!((f.stats["n_mentions"].mean - mean).abs() < 1e-9);
    assert_eq!(f.stats.len(), mtl_core::artifact::FEATURES.len());
    let r: SplitReport = read_report(&out).unwrap();
    assert_eq!(r.features["sent"], *sent);

    let out = root.path().join("select");
    run(
        &cfg("[features]\nselect = [\"n_words\", \"n_urls\"]\n"),
        &clean,
        &out,
        false,
    )
    .unwrap();
    let f = FeatureSet::read(&out.join("features.json")).unwrap();
    for t in ["sent", "score"] {
        assert_eq!(f.selected(t), ["n_words", "n_urls"]);
    }
    assert!(f.selected("tags").is_empty());
    assert_eq!(f.used(), vec!["n_words", "n_urls"]);

    let out = root.path().join("none");
    run(&cfg(""), &clean, &out, false).unwrap();
    let f = FeatureSet::read(&out.join("features.json")).unwrap();
    assert!(f.used().is_empty());
    assert_eq!(f.tasks["sent"].ranking[0].feature, "n_urls");
}

#[test]
fn multilabel_information_is_the_mean_over_labels() {
    let root = tempfile::tempdir().unwrap();
    // n_urls decides `a` exactly; `b` is on every text (no information):
    // mean = ln 2 / 2.
    let t = Table::new("m", 202)
        .split(|i| Some(if i < 200 { "train" } else { "dev" }))
        .list("emo", |i| {
            Some(if i % 2 == 0 {
                strings(&["a", "b"])
            } else {
                strings(&["b"])
            })
        })
        .feature("n_urls", |i| (i % 2) as f32);
    let clean = clean_dir(root.path(), &[t], "mlmi");
    let cfg = config(&[dataset("m", true), task("emo", "m", "multilabel", "")]);
    let out = root.path().join("split");
    run(&cfg, &clean, &out, false).unwrap();
    let f = FeatureSet::read(&out.join("features.json")).unwrap();
    let top = &f.tasks["emo"].ranking[0];
    assert_eq!(top.feature, "n_urls");
    assert!((top.mi - 2f64.ln() / 2.0).abs() < 1e-9, "{top:?}");
}

#[test]
fn old_clean_tables_without_features_are_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let t = Table::new("a", 10)
        .class("sent", |i| Some(["pos", "neg"][i % 2].into()))
        .without_feature("n_chars")
        .without_feature("n_words");
    let clean = clean_dir(root.path(), &[t], "old");
    let cfg = config(&[dataset("a", false), task("sent", "a", "classification", "")]);
    let err = run(&cfg, &clean, &root.path().join("split"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a.parquet"), "{err}");
    assert!(err.contains("feat_n_chars, feat_n_words"), "{err}");
    assert!(err.contains("mtl-clean"), "{err}");
}

#[test]
fn a_label_column_of_the_wrong_type_names_file_and_column() {
    let root = tempfile::tempdir().unwrap();
    let t = Table::new("a", 10).class("score", |_| Some("high".into()));
    let clean = clean_dir(root.path(), &[t], "type");
    let cfg = config(&[dataset("a", false), task("score", "a", "regression", "")]);
    let err = run(&cfg, &clean, &root.path().join("split"), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a.parquet") && err.contains("`label_score`"),
        "{err}"
    );
    assert!(err.contains("regression"), "{err}");
}

#[test]
fn summary_shows_tasks_leakage_and_features() {
    let root = tempfile::tempdir().unwrap();
    let clean = clean_dir(root.path(), &[leaky()], "summary");
    let cfg = config(&[
        dataset("a", true),
        task("sent", "a", "classification", ""),
        "[split]\ndrop_leaked = true\n[features]\ntop_k = 1\n".into(),
    ]);
    let out = root.path().join("split");
    run(&cfg, &clean, &out, false).unwrap();
    let text = render_summary(&read_report(&out).unwrap());
    for want in [
        "rows: train 6 / dev 2 / test 1",
        "task sent (classification): train 6 / dev 2 / test 1; imbalance 1.00",
        "train labels: neg 3, pos 3",
        "feature MI (nats): ",
        "side inputs: ",
        "leakage: 3 text(s) in several splits (6 rows)",
        "dropped dev 1, test 2",
        "e.g. \"text number 0 of a\" in train, dev",
    ] {
        assert!(text.contains(want), "`{want}` missing from:\n{text}");
    }
}

/// `[[datasets]]` with train and test files and no dev file.
fn dataset_without_dev(name: &str) -> String {
    format!(
        "[[datasets]]\nname = \"{name}\"\nformat = \"jsonl\"\n\
         files = {{ train = \"{name}_train.jsonl\", test = \"{name}_test.jsonl\" }}\n"
    )
}

/// Dataset `c`: train and test rows (every fifth row is test), no dev;
/// labels 3:1 (`common`, `rare`).
fn train_and_test(name: &str, n: usize) -> Table {
    Table::new(name, n)
        .split(|i| Some(if i % 5 == 4 { "test" } else { "train" }))
        .class("sent", |i| {
            Some(if i % 4 == 0 { "rare" } else { "common" }.into())
        })
}

/// `id -> split` of one dataset's rows.
fn assignment_of(dir: &std::path::Path, dataset: &str) -> BTreeMap<String, String> {
    let prefix = format!("{dataset}-");
    assignment(dir)
        .into_iter()
        .filter(|(id, _)| id.starts_with(&prefix))
        .collect()
}

#[test]
fn train_and_test_without_dev_get_dev_carved_from_train() {
    let root = tempfile::tempdir().unwrap();
    // c: 400 rows, 320 train and 80 test, no dev. b: its own train and dev.
    let b = two_datasets(0, false).pop().unwrap();
    let clean = clean_dir(root.path(), &[train_and_test("c", 400), b], "carve");
    let cfg = |extra: &str| {
        config(&[
            dataset_without_dev("c"),
            dataset("b", true),
            task("sent", "c", "classification", ""),
            task("tags", "b", "tagging", ""),
            extra.to_string(),
        ])
    };
    let given: BTreeMap<String, &str> = (0..400)
        .map(|i| (format!("c-{i}"), if i % 5 == 4 { "test" } else { "train" }))
        .collect();

    for (tag, extra, stratified) in [
        ("plain", "", false),
        ("strat", "[split]\nstratify = \"sent\"\n", true),
    ] {
        let out = root.path().join(tag);
        run(&cfg(extra), &clean, &out, false).unwrap();
        let got = assignment_of(&out, "c");
        // No row lost; test untouched; dev comes from train only.
        assert_eq!(got.len(), 400, "{tag}");
        let count = |s: &str| got.values().filter(|v| *v == s).count();
        let (train, dev, test) = (count("train"), count("dev"), count("test"));
        assert_eq!(test, 80, "{tag}");
        assert_eq!(train + dev, 320, "{tag}: train_before == train + dev");
        for (id, split) in &got {
            match given[id] {
                "test" => assert_eq!(split, "test", "{tag}: {id}"),
                _ => assert_ne!(split, "test", "{tag}: {id}"),
            }
        }
        // Disjoint: every id sits in exactly one table.
        let rows: usize = SPLITS.iter().map(|s| read(&out, s).height()).sum();
        assert_eq!(rows, 400 + 9, "{tag}: an id in two tables");
        // About 10% of 320.
        assert!((20..=44).contains(&dev), "{tag}: dev {dev}");
        if stratified {
            // 3:1 in train before (240 common, 80 rare): exact per label.
            assert_eq!(dev, 32, "{tag}");
            let labels = strs(&read(&out, "dev"), &col::label("sent"));
            let rare = labels
                .iter()
                .filter(|l| l.as_deref() == Some("rare"))
                .count();
            assert_eq!(rare, 8, "{tag}");
        }

        let r = read_report(&out).unwrap();
        let c = &r.dev_from_train["c"];
        assert_eq!((c.train_before, c.dev, c.train), (320, dev, train), "{tag}");
        assert_eq!(c.fraction, 0.1);
        assert_eq!(
            c.stratified_by.as_deref(),
            stratified.then_some("sent"),
            "{tag}"
        );
        // b brought its own dev: not carved.
        assert!(!r.dev_from_train.contains_key("b"), "{tag}");
        assert_eq!(r.tasks["sent"].examples["dev"], dev);
        assert_eq!(r.tasks["tags"].examples["dev"], 3);
        let m = mtl_core::Manifest::read(&out).unwrap();
        assert_eq!(m.rows["dev_from_train_c"], dev as u64);
        let text = render_summary(&r);
        let want = format!(
            "dataset c: no dev split given; dev carved from train: {dev} of 320 rows \
             (split.dev_from_train = 0.1{}), {train} left in train",
            if stratified {
                ", stratified by sent"
            } else {
                ""
            }
        );
        assert!(text.contains(&want), "`{want}` missing from:\n{text}");
        assert!(!text.contains("dataset b:"), "{text}");

        // The same input gives the same carve.
        let again = root.path().join(format!("{tag}-again"));
        run(&cfg(extra), &clean, &again, false).unwrap();
        assert_eq!(assignment_of(&again, "c"), got, "{tag}");
    }

    // Without stratification the hash alone decides: more train rows move
    // no existing row.
    let bigger = clean_dir(root.path(), &[train_and_test("c", 800)], "carve-big");
    let out = root.path().join("big");
    run(
        &config(&[
            dataset_without_dev("c"),
            task("sent", "c", "classification", ""),
        ]),
        &bigger,
        &out,
        false,
    )
    .unwrap();
    let big = assignment_of(&out, "c");
    for (id, split) in assignment_of(&root.path().join("plain"), "c") {
        assert_eq!(big[&id], split, "{id} moved");
    }

    // The fraction is the setting's.
    let out = root.path().join("wide");
    run(&cfg("[split]\ndev_from_train = 0.4\n"), &clean, &out, false).unwrap();
    let r = read_report(&out).unwrap();
    let c = &r.dev_from_train["c"];
    assert!((100..=156).contains(&c.dev), "{c:?}");
    assert_eq!(c.train + c.dev, 320);
}

#[test]
fn carved_dev_keeps_groups_whole() {
    let root = tempfile::tempdir().unwrap();
    // 60 documents of 5 sentences; documents 48.. are test. A few train
    // rows have no group (their id is their key).
    let t = Table::new("c", 300)
        .split(|i| Some(if i >= 240 { "test" } else { "train" }))
        .groups(|i| (i % 7 != 3).then(|| format!("doc{}", i / 5)))
        .class("sent", |i| Some(["pos", "neg", "neu"][i % 3].into()));
    let clean = clean_dir(root.path(), &[t], "carve-groups");
    let out = root.path().join("split");
    // Stratification must not break groups either.
    let cfg = config(&[
        dataset_without_dev("c"),
        task("sent", "c", "classification", ""),
        "[split]\nstratify = \"sent\"\ndev_from_train = 0.25\n".into(),
    ]);
    run(&cfg, &clean, &out, false).unwrap();
    let mut group_splits: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut per_split = BTreeMap::new();
    for s in SPLITS {
        let df = read(&out, s);
        *per_split.entry(s).or_insert(0) += df.height();
        for g in strs(&df, col::GROUP).into_iter().flatten() {
            group_splits.entry(g).or_default().insert(s.into());
        }
    }
    assert_eq!(group_splits.len(), 60);
    for (g, splits) in &group_splits {
        assert_eq!(splits.len(), 1, "{g} is in {splits:?}");
    }
    let dev_groups = group_splits.values().filter(|s| s.contains("dev")).count();
    assert!(dev_groups > 0, "no document reached dev");
    assert_eq!(per_split["test"], 60);
    assert_eq!(per_split["train"] + per_split["dev"], 240);
    let c = &read_report(&out).unwrap().dev_from_train["c"];
    assert_eq!((c.train_before, c.dev), (240, per_split["dev"]));
}

#[test]
fn a_single_train_group_is_not_divided() {
    let root = tempfile::tempdir().unwrap();
    let t = Table::new("c", 10)
        .split(|i| Some(if i < 8 { "train" } else { "test" }))
        .groups(|_| Some("doc".into()))
        .class("sent", |i| Some(["pos", "neg"][i % 2].into()));
    let clean = clean_dir(root.path(), &[t], "carve-one");
    let out = root.path().join("split");
    let cfg = config(&[
        dataset_without_dev("c"),
        task("sent", "c", "classification", ""),
        "[split]\ndev_from_train = 0.5\n".into(),
    ]);
    run(&cfg, &clean, &out, false).unwrap();
    let r = read_report(&out).unwrap();
    assert_eq!((r.rows["train"], r.rows["dev"], r.rows["test"]), (8, 0, 2));
    let c = &r.dev_from_train["c"];
    assert_eq!((c.train_before, c.dev, c.train), (8, 0, 8));
    let text = render_summary(&r);
    assert!(
        text.contains("dataset c: no dev split given, and its 8 train row(s) form one group"),
        "{text}"
    );
}

#[test]
fn datasets_with_their_own_dev_or_no_splits_are_untouched() {
    let root = tempfile::tempdir().unwrap();
    // a: split by hash; b: its own train and dev; o: its own train, dev and
    // test.
    let mut tables = two_datasets(300, false);
    tables.push(
        Table::new("o", 50)
            .split(|i| Some(["train", "train", "train", "dev", "test"][i % 5]))
            .class("topic", |i| Some(["x", "y"][i % 2].into())),
    );
    let clean = clean_dir(root.path(), &tables, "own-dev");
    let cfg = |extra: &str| {
        config(&[
            dataset("a", false),
            dataset("b", true),
            dataset("o", true),
            task("sent", "a", "classification", ""),
            task("tags", "b", "tagging", ""),
            task("topic", "o", "classification", ""),
            extra.to_string(),
        ])
    };
    let (small, wide) = (root.path().join("small"), root.path().join("wide"));
    run(
        &cfg("[split]\ndev_from_train = 0.05\n"),
        &clean,
        &small,
        false,
    )
    .unwrap();
    run(
        &cfg("[split]\ndev_from_train = 0.5\n"),
        &clean,
        &wide,
        false,
    )
    .unwrap();
    let (a, b) = (assignment(&small), assignment(&wide));
    assert_eq!(a.len(), 300 + 9 + 50);
    assert_eq!(a, b, "the setting moved a row");
    for i in 0..9 {
        let want = if i < 6 { "train" } else { "dev" };
        assert_eq!(a[&format!("b-{i}")], want);
    }
    for i in 0..50 {
        let want = ["train", "train", "train", "dev", "test"][i % 5];
        assert_eq!(a[&format!("o-{i}")], want);
    }
    for dir in [&small, &wide] {
        assert!(read_report(dir).unwrap().dev_from_train.is_empty());
        let text = render_summary(&read_report(dir).unwrap());
        assert!(!text.contains("carved"), "{text}");
    }
}

#[test]
fn dev_from_train_must_be_a_fraction_up_to_one_half() {
    let parse = |v: &str| {
        mtl_core::PipelineConfig::from_toml_str(
            &format!(
                "{HEADER}{}{}[split]\ndev_from_train = {v}\n",
                dataset_without_dev("c"),
                task("sent", "c", "classification", "")
            ),
            std::path::Path::new("t.toml"),
        )
    };
    for bad in ["0", "0.0", "-0.1", "0.51", "1", "1.0", "nan", "inf"] {
        let err = parse(bad).unwrap_err().to_string();
        assert!(
            err.contains("split.dev_from_train") && err.contains("(0, 0.5]"),
            "{bad}: {err}"
        );
    }
    for good in ["0.5", "0.1", "0.001"] {
        let cfg = parse(good).unwrap();
        assert_eq!(cfg.split.dev_from_train, good.parse::<f64>().unwrap());
    }
    let default = config(&[
        dataset_without_dev("c"),
        task("sent", "c", "classification", ""),
    ]);
    assert_eq!(default.split.dev_from_train, 0.1);
    // A string is a type error that names the key too.
    let err = parse("\"ten percent\"").unwrap_err().to_string();
    assert!(err.contains("dev_from_train"), "{err}");
}
