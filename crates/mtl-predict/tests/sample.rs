//! The round trip on the real sample: `mtl-predict` on the raw dev texts
//! gives, row by row, the predictions eval made on the tokenized dev split,
//! and so the sentence scores of `runs/sample/eval/metrics.json`.
//!
//! It needs the sample's run folder (`cargo xtask run` writes it; `runs/` is
//! not in git), so it is ignored by default:
//! `cargo test --release -p mtl-predict --test sample -- --ignored`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Device;
use mtl_core::align::first_subtoken_positions;
use mtl_core::artifact::{col, read_parquet};
use mtl_eval::RowPreds;
use mtl_model::Bundle;
use mtl_predict::PredictOptions;
use serde_json::Value;

const RUN: &str = "../../runs/sample";
const RAW: &str = "../../data/sample/reviews.jsonl";

fn strings(df: &polars::prelude::DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(String::from))
        .collect()
}

#[test]
#[ignore = "needs runs/sample from `cargo xtask run`"]
fn sample_dev_predictions_equal_eval_and_its_scores() {
    let run = Path::new(RUN);
    let bundle = Bundle::load(&run.join("train/model"), &Device::Cpu).unwrap();
    let pad_to = mtl_predict::ReplayOptions::read(&bundle).unwrap().pad_to;
    let eval =
        mtl_eval::predict_table(&bundle, &run.join("tokenize/dev.parquet"), 32, pad_to).unwrap();

    // The raw text of each dev row, through its source line.
    let split = read_parquet(&run.join("split/dev.parquet")).unwrap();
    let raw: Vec<String> = std::fs::read_to_string(RAW)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let lines = split
        .column(col::SOURCE_LINE)
        .unwrap()
        .u32()
        .unwrap()
        .clone();
    let ids = strings(&split, col::ID);
    let gold = strings(&split, &col::label("sentiment"));
    let mut by_id: HashMap<String, (String, Option<String>)> = HashMap::new();
    for (i, id) in ids.into_iter().enumerate() {
        let line = lines.get(i).unwrap() as usize;
        let v: Value = serde_json::from_str(&raw[line - 1]).unwrap();
        let text = v["text"].as_str().unwrap().to_string();
        by_id.insert(id.unwrap(), (text, gold[i].clone()));
    }
    let texts: Vec<String> = eval.ids.iter().map(|id| by_id[id].0.clone()).collect();
    let opts = PredictOptions {
        batch_size: 64,
        ..Default::default()
    };
    let predict = mtl_predict::predict_texts(&bundle, &texts, &opts).unwrap();
    assert_eq!(predict.len(), eval.ids.len());

    assert_eq!(eval.tasks.len(), 5, "every task of the sample");
    let names = |task: &str| bundle.labels.get(task).unwrap().labels.clone();
    for (task, preds) in &eval.tasks {
        for (row, p) in predict.iter().enumerate() {
            let got = &p[task.as_str()];
            match preds {
                RowPreds::Sentence(ids) => {
                    assert_eq!(
                        got["label"],
                        names(task)[ids[row] as usize],
                        "{task} row {row}"
                    )
                }
                RowPreds::Multilabel(sets) => {
                    let want: Vec<String> = sets[row]
                        .iter()
                        .map(|&id| names(task)[id as usize].clone())
                        .collect();
                    assert_eq!(got["labels"], serde_json::json!(want), "{task} row {row}");
                }
                RowPreds::Regression(values) => {
                    let got = got.as_f64().unwrap();
                    assert!(
                        (got - f64::from(values[row])).abs() < 1e-4,
                        "{task} row {row}"
                    );
                }
                RowPreds::Token(tags) => {
                    let words = p["words"].as_array().unwrap().len();
                    let want: Vec<Option<String>> =
                        first_subtoken_positions(&eval.word_ids[row], words)
                            .iter()
                            .map(|q| q.map(|q| names(task)[tags[row][q] as usize].clone()))
                            .collect();
                    assert_eq!(got["tags"], serde_json::json!(want), "{task} row {row}");
                }
                RowPreds::Tree { head, label } => {
                    // Read at each word's first sub-token, heads as word numbers.
                    let starts = mtl_model::batch::word_starts(&eval.word_ids[row]);
                    let number =
                        |h: u32| mtl_model::heads::biaffine::word_number(&starts, h as usize);
                    let heads: Vec<Option<usize>> =
                        starts.iter().map(|&q| number(head[row][q])).collect();
                    let rels: Vec<String> = starts
                        .iter()
                        .map(|&q| names(task)[label[row][q] as usize].clone())
                        .collect();
                    assert_eq!(got["heads"], serde_json::json!(heads), "{task} row {row}");
                    assert_eq!(got["deprels"], serde_json::json!(rels), "{task} row {row}");
                }
            }
        }
    }

    // And the headline score eval reported, recomputed from predict's output.
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval/metrics.json")).unwrap())
            .unwrap();
    let labels = names("sentiment");
    let id = |l: &str| labels.iter().position(|x| x == l).unwrap();
    let (mut g, mut p) = (Vec::new(), Vec::new());
    for (row, pred) in predict.iter().enumerate() {
        if let Some(gold) = &by_id[&eval.ids[row]].1 {
            g.push(id(gold));
            p.push(id(pred["sentiment"]["label"].as_str().unwrap()));
        }
    }
    let scored =
        mtl_eval::metrics::classification::classification_metrics(&g, &p, &labels).unwrap();
    let reported = metrics["tasks"]["sentiment"]["splits"]["dev"]["score"]
        .as_f64()
        .unwrap();
    assert_eq!(metrics["tasks"]["sentiment"]["metric"], "macro_f1");
    assert!(
        (scored.macro_f1 - reported).abs() < 1e-12,
        "predict {} vs report {reported}",
        scored.macro_f1
    );
}
