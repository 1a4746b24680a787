//! `cargo xtask run --baselines` end to end: the real stage binaries on a
//! slice of the sample with a tiny model, two tasks and one epoch.

use std::path::Path;

use mtl_core::{PipelineConfig, Stage};
use mtl_eval::baselines::SingleTaskScores;
use xtask::baselines;
use xtask::pipeline::{self, RunOptions};

fn config(data: &Path, runs: &Path) -> String {
    format!(
        r#"
[pipeline]
name = "e2e"
seed = 5
runs_dir = "{runs}"

[[datasets]]
name = "reviews"
format = "jsonl"
files = {{ all = "{data}" }}
id = "id"

[[tasks]]
name = "sentiment"
dataset = "reviews"
column = "sentiment"
type = "classification"

[[tasks]]
name = "stars"
dataset = "reviews"
column = "stars"
type = "regression"

[split]
stratify = "sentiment"

[tokenize]
vocab_size = 300
max_length = 48

[model]
embedding_dim = 16
hidden_dim = 16

[train]
epochs = 1
batch_size = 16
learning_rate = 0.01
"#,
        runs = runs.display(),
        data = data.display()
    )
}

#[test]
fn baselines_train_one_model_per_task_compare_and_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let sample = pipeline::workspace_root().join("data/sample/reviews.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&sample)
        .unwrap()
        .lines()
        .take(200)
        .map(String::from)
        .collect();
    // A relative dataset path, which the derived configs must make absolute.
    std::fs::create_dir(tmp.path().join("data")).unwrap();
    std::fs::write(
        tmp.path().join("data/reviews.jsonl"),
        lines.join("\n") + "\n",
    )
    .unwrap();
    std::fs::create_dir(tmp.path().join("pipelines")).unwrap();
    let cfg_path = tmp.path().join("pipelines/e2e.toml");
    let runs_dir = tmp.path().join("runs");
    std::fs::write(
        &cfg_path,
        config(Path::new("../data/reviews.jsonl"), &runs_dir),
    )
    .unwrap();

    let opts = RunOptions {
        pipeline: cfg_path.clone(),
        data_dir: None,
        force: false,
        from: None,
        until: None,
        bin_dir: Some(pipeline::build_stage_binaries(true).unwrap()),
        quiet: true,
    };

    let first = baselines::run(&opts).unwrap();
    assert!(first.all_runs().all(|r| !r.cached), "{first:?}");
    assert_eq!(first.pipeline.len(), 5);
    let tasks = ["sentiment", "stars"];
    assert_eq!(first.single.keys().collect::<Vec<_>>(), tasks);
    for runs in first.single.values() {
        let stages: Vec<Stage> = runs.iter().map(|r| r.stage).collect();
        assert_eq!(stages, [Stage::Train, Stage::Eval]);
    }

    // Each derived config holds its task alone and an absolute data path.
    let run_dir = runs_dir.join("e2e");
    for task in tasks {
        let path = run_dir.join("baselines").join(task).join("pipeline.toml");
        let cfg = PipelineConfig::load(&path, None).unwrap();
        assert_eq!(cfg.tasks.len(), 1);
        assert_eq!(cfg.tasks[0].name, task);
        let all = cfg.datasets[0].files.all.clone().unwrap();
        assert!(Path::new(&all).is_absolute(), "{all}");
        assert!(Path::new(&all).exists(), "{all}");
        // Its model has its head only.
        let spec: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                run_dir
                    .join("baselines")
                    .join(task)
                    .join("train/model/model.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let heads = spec["spec"]["tasks"].as_array().unwrap();
        assert_eq!(heads.len(), 1, "{spec}");
    }

    // baselines.json: every task, comparable, with scores per split and
    // costs.
    let scores = SingleTaskScores::read(&run_dir.join("baselines.json")).unwrap();
    assert_eq!(scores, first.scores);
    assert_eq!(scores.tasks.keys().collect::<Vec<_>>(), tasks);
    let metrics = mtl_eval::Metrics::read(&run_dir.join("eval")).unwrap();
    let multi_cost = metrics.cost.unwrap();
    assert_eq!(multi_cost.models, 1);
    let mut single_params = 0;
    for task in tasks {
        let s = &scores.tasks[task];
        assert_eq!(
            s.metric.as_deref(),
            Some(metrics.tasks[task].metric.as_str())
        );
        assert_eq!(s.split.as_deref(), Some("dev"));
        assert_eq!(
            s.splits.keys().collect::<Vec<_>>(),
            ["dev", "test"],
            "{task}"
        );
        assert_eq!(s.splits["dev"].score, s.score);
        let cost = s.cost.unwrap();
        assert!(cost.parameters > 0 && cost.train_seconds > 0.0, "{cost:?}");
        // Every model predicts every dev and test example.
        assert_eq!(cost.inference_examples, multi_cost.inference_examples);
        // One encoder and one head each: smaller than the shared model.
        assert!(cost.parameters < multi_cost.parameters, "{task}");
        single_params += cost.parameters;
    }
    // Two encoders weigh more than one encoder with two heads.
    assert!(single_params > multi_cost.parameters);

    // The multi-task reports compare both ways, with Δp and the costs.
    let md = std::fs::read_to_string(run_dir.join("eval/report.md")).unwrap();
    assert!(md.contains("## Multi-task vs single-task"), "{md}");
    assert!(md.contains("| Δp | mean |"), "{md}");
    assert!(md.contains("| single-task | 2 |"), "{md}");
    assert!(md.contains("| multi-task | 1 |"), "{md}");
    let html = std::fs::read_to_string(run_dir.join("eval/report.html")).unwrap();
    assert!(html.contains("Multi-task vs single-task"));
    assert!(first.comparison.contains("Δp"), "{}", first.comparison);
    for task in tasks {
        assert!(first.comparison.contains(task), "{}", first.comparison);
    }

    // Nothing changed: every stage is cached, the final eval included.
    let second = baselines::run(&opts).unwrap();
    let ran: Vec<_> = second.all_runs().filter(|r| !r.cached).collect();
    assert!(ran.is_empty(), "{ran:?}");
    assert_eq!(second.scores, first.scores);

    // --from eval re-scores everything but trains nothing.
    let rescore = baselines::run(&RunOptions {
        from: Some(Stage::Eval),
        ..opts.clone()
    })
    .unwrap();
    let stages: Vec<Stage> = rescore.pipeline.iter().map(|r| r.stage).collect();
    assert_eq!(stages, [Stage::Eval]);
    assert!(
        rescore.single.values().all(|r| r[0].cached && !r[1].cached),
        "{rescore:?}"
    );

    // --until before eval is refused.
    let err = baselines::run(&RunOptions {
        until: Some(Stage::Train),
        ..opts.clone()
    })
    .unwrap_err();
    assert!(format!("{err:#}").contains("--baselines"), "{err:#}");
}
