//! `cargo xtask bench quality --smoke --baselines --peers`: the whole code
//! path on a 300-row slice of the sample with a tiny model and 20 steps,
//! then again with `--reuse`, which must take the runs as they are.

use xtask::bench::quality::{self, QualityBench, QualityResults};
use xtask::pipeline;

const TASKS: [&str; 3] = ["sentiment", "topic", "entities"];

/// The page's table row of `task`, split into cells.
fn row<'a>(page: &'a str, task: &str) -> Vec<&'a str> {
    let start = format!("| `{task}` |");
    let line = page
        .lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no row for `{task}`:\n{page}"));
    line.trim_matches('|').split(" | ").map(str::trim).collect()
}

/// `12.34 [10.00, 15.00]`: a number and an interval around it.
fn number_and_ci(cell: &str) -> (f64, f64, f64) {
    let (value, ci) = cell
        .split_once(" [")
        .unwrap_or_else(|| panic!("no interval in `{cell}`"));
    let (lo, hi) = ci
        .trim_end_matches(']')
        .split_once(", ")
        .unwrap_or_else(|| panic!("no interval in `{cell}`"));
    let num = |s: &str| {
        s.parse::<f64>()
            .unwrap_or_else(|_| panic!("`{s}` in `{cell}` is not a number"))
    };
    (num(value), num(lo), num(hi))
}

#[test]
fn smoke_writes_a_row_per_task_with_a_score_and_an_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    let page = tmp.path().join("docs/benchmarks.md");
    let bin_dir = pipeline::build_stage_binaries(true).unwrap();
    let opts = QualityBench {
        baselines: true,
        peers: true,
        smoke: true,
        out: Some(page.clone()),
        work_dir: Some(work.clone()),
        bin_dir: Some(bin_dir),
        command: "cargo xtask bench quality --smoke --baselines --peers".into(),
        quiet: true,
        ..QualityBench::default()
    };
    let outcome = quality::run(&opts).unwrap();
    assert_eq!(outcome.page, page);
    assert_eq!(outcome.json, tmp.path().join("docs/results.json"));

    let text = std::fs::read_to_string(&page).unwrap();
    assert!(text.contains(quality::BEGIN) && text.contains(quality::END));
    assert!(text.contains(outcome.markdown.trim_end()));
    assert!(text.contains("`cargo xtask bench quality --smoke --baselines --peers`"));
    assert!(text.contains("Machine: "), "{text}");
    assert!(text.contains("Training: "), "{text}");
    assert!(text.contains("peak RSS"), "{text}");
    assert!(text.contains("Δp "), "{text}");
    assert!(text.contains("pip installs spacy==3.8.*"), "{text}");
    for task in TASKS {
        let cells = row(&text, task);
        // task, metric, test [CI], dev, single-task test [CI], gain
        assert_eq!(cells.len(), 6, "{cells:?}");
        let (v, lo, hi) = number_and_ci(cells[2]);
        assert!(lo <= v && v <= hi, "{task}: {v} not in [{lo}, {hi}]");
        assert!((0.0..=100.0).contains(&v), "{task}: {v}");
        cells[3].parse::<f64>().unwrap();
        number_and_ci(cells[4]);
    }

    let json = std::fs::read_to_string(&outcome.json).unwrap();
    let results: QualityResults = serde_json::from_str(&json).unwrap();
    // Compared through the same parser: serde_json's default float parser
    // may land one ulp off the printed value (0.204 read back as
    // 0.20400000000000001), so the in-memory floats are not the reference.
    let expected: QualityResults =
        serde_json::from_str(&serde_json::to_string(&outcome.results).unwrap()).unwrap();
    assert_eq!(results, expected);
    assert!(results.smoke);
    assert!(results.machine.cpus >= 1);
    let [p] = &results.pipelines[..] else {
        panic!("{:?}", results.pipelines)
    };
    assert_eq!(p.name, "smoke");
    assert!(!p.reused);
    assert_eq!(p.stages_cached, 0, "a fresh folder has nothing cached");
    let names: Vec<&str> = p.tasks.iter().map(|t| t.task.as_str()).collect();
    assert_eq!(names, TASKS);
    for t in &p.tasks {
        let test = t.test.unwrap();
        let [lo, hi] = test.ci.unwrap();
        assert!(lo <= test.value && test.value <= hi, "{t:?}");
        assert!(t.dev.is_some() && t.single_test.is_some(), "{t:?}");
        assert!(t.test_n.unwrap() > 0);
    }
    assert!(p.train.seconds.unwrap() > 0.0);
    assert!(p.train.steps.unwrap() <= 20);
    assert!(p.baselines.as_ref().unwrap().delta_p.contains_key("test"));
    assert_eq!(results.peer_checks.len(), 1);

    // --reuse: the manifests are fresh, so nothing runs and the numbers
    // are the same; a hand-written page keeps its prose.
    std::fs::write(&page, "# Benchmarks\n\nWritten by hand.\n").unwrap();
    let again = quality::run(&QualityBench {
        reuse: true,
        bin_dir: None,
        ..opts.clone()
    })
    .unwrap();
    let p2 = &again.results.pipelines[0];
    assert!(p2.reused);
    assert_eq!(p2.stages_run + p2.stages_cached, 0);
    assert_eq!(p2.tasks, p.tasks);
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(
        text.starts_with("# Benchmarks\n\nWritten by hand.\n"),
        "{text}"
    );
    assert!(text.contains("taken as they were"), "{text}");
    for task in TASKS {
        number_and_ci(row(&text, task)[2]);
    }

    // What makes a run stale for --reuse: a config section a stage reads,
    // a raw data file.
    let config = work.join("smoke.toml");
    let load = |path: &std::path::Path| mtl_core::PipelineConfig::load(path, None).unwrap();
    assert_eq!(quality::fresh_run(&load(&config), true), Ok(()));
    let text = std::fs::read_to_string(&config).unwrap();
    let edited = work.join("edited.toml");
    std::fs::write(
        &edited,
        text.replace("learning_rate = 0.01", "learning_rate = 0.02"),
    )
    .unwrap();
    let why = quality::fresh_run(&load(&edited), false).unwrap_err();
    assert!(why.contains("`train`"), "{why}");
    let data = work.join("reviews.jsonl");
    let mut rows = std::fs::read_to_string(&data).unwrap();
    let first = rows.lines().next().unwrap().to_owned();
    rows.push_str(&first);
    std::fs::write(&data, rows).unwrap();
    let why = quality::fresh_run(&load(&config), false).unwrap_err();
    assert!(why.contains("reviews.jsonl changed since clean"), "{why}");
}
