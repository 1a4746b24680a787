//! Entity spans carry character offsets into the original text, before
//! cleaning: HTML entities, tags, runs of whitespace and zero-width spaces
//! in the raw text do not shift them.

mod common;

use candle_core::Device;
use mtl_model::Bundle;
use mtl_predict::PredictOptions;
use mtl_predict::words::char_slice;
use serde_json::Value;

const TEXT: &str =
    "  Visit\tthe <b>Eiffel</b>   Tower &amp; Café\u{200B} \u{200B}  in  AT&amp;T\u{FEFF}\n";

fn spans(force: &str) -> (Value, Vec<(String, usize, usize)>) {
    let dir = tempfile::tempdir().unwrap();
    let model = common::bundle(dir.path(), Some(force));
    let bundle = Bundle::load(&model, &Device::Cpu).unwrap();
    let opts = PredictOptions {
        batch_size: 4,
        ..Default::default()
    };
    let out = mtl_predict::predict_texts(&bundle, &[TEXT.to_string()], &opts).unwrap();
    let v = out[0].clone();
    let spans = v["ents"]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let (start, end) = (
                s["start"].as_u64().unwrap() as usize,
                s["end"].as_u64().unwrap() as usize,
            );
            (char_slice(TEXT, start, end), start, end)
        })
        .collect();
    (v, spans)
}

#[test]
fn every_word_span_slices_its_surface_form() {
    let (v, spans) = spans("B-LOC");
    let words: Vec<&str> = v["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    // The lone zero-width space is no word; the others are cleaned away.
    assert_eq!(
        words,
        ["Visit", "the", "Eiffel", "Tower", "&", "Café", "in", "AT&T"]
    );
    let surface: Vec<&str> = spans.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        surface,
        [
            "Visit", "the", "Eiffel", "Tower", "&amp;", "Café", "in", "AT&amp;T"
        ]
    );
    // Character offsets, not bytes: `é` and the zero-width spaces before
    // `AT&amp;T` are one character each but two or three bytes.
    let byte = TEXT.find("AT&amp;T").unwrap();
    let chars = TEXT[..byte].chars().count();
    assert_eq!(spans[7].1, chars);
    assert!(byte > chars + 4, "{byte} bytes, {chars} chars");
    for (k, s) in v["ents"]["spans"].as_array().unwrap().iter().enumerate() {
        assert_eq!(s["label"], "LOC");
        assert_eq!(s["start_word"], k);
        assert_eq!(s["end_word"], k + 1);
        assert_eq!(s["text"], words[k]);
    }
}

#[test]
fn a_multi_word_span_runs_from_its_first_word_to_its_last() {
    // I-LOC on every word: one entity over the whole text (seqeval).
    let (v, spans) = spans("I-LOC");
    assert_eq!(v["ents"]["spans"].as_array().unwrap().len(), 1);
    let (surface, start, end) = &spans[0];
    assert_eq!(
        surface,
        "Visit\tthe <b>Eiffel</b>   Tower &amp; Café\u{200B} \u{200B}  in  AT&amp;T"
    );
    assert_eq!(*start, 2);
    assert_eq!(
        *end,
        TEXT.chars().count() - 2,
        "no trailing U+FEFF, no newline"
    );
    assert_eq!(v["ents"]["spans"][0]["end_word"], 8);
}
