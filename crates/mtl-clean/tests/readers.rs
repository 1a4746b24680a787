//! The readers end to end through the stage: small fixtures of every
//! format, malformed input included, checked in the written tables.

use std::path::Path;

use mtl_clean::{QUARANTINE_FILE, Report};
use mtl_core::PipelineConfig;
use mtl_core::artifact::{FEATURES, col, read_parquet, write_parquet};
use polars::prelude::*;

fn load(dir: &Path, body: &str) -> PipelineConfig {
    let path = dir.join("t.toml");
    std::fs::write(&path, format!("[pipeline]\nname = \"t\"\n{body}")).unwrap();
    PipelineConfig::load(&path, None).unwrap()
}

/// Runs the stage and checks the accounting: read = kept + quarantined per
/// dataset, and the quarantine holds exactly the dropped rows.
fn clean(dir: &Path, cfg: &PipelineConfig) -> (Report, DataFrame) {
    let out = dir.join("clean");
    mtl_clean::run(cfg, &out, true).unwrap();
    let report = Report::read(&out).unwrap();
    let q = read_parquet(&out.join(QUARANTINE_FILE)).unwrap();
    let mut dropped = 0;
    for (name, ds) in &report.datasets {
        assert_eq!(ds.read, ds.kept + ds.dropped_total(), "{name}: {ds:?}");
        let kept = read_parquet(&out.join(format!("{name}.parquet"))).unwrap();
        assert_eq!(kept.height() as u64, ds.kept, "{name}");
        dropped += ds.dropped_total();
    }
    assert_eq!(q.height() as u64, dropped);
    (report, q)
}

fn kept(dir: &Path, dataset: &str) -> DataFrame {
    read_parquet(&dir.join("clean").join(format!("{dataset}.parquet"))).unwrap()
}

fn strs(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    df.column(name)
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

fn lists(df: &DataFrame, name: &str) -> Vec<Option<Vec<String>>> {
    let c = df.column(name).unwrap().list().unwrap();
    (0..c.len())
        .map(|i| {
            c.get_as_series(i).map(|s| {
                s.str()
                    .unwrap()
                    .iter()
                    .map(|w| w.unwrap().to_string())
                    .collect()
            })
        })
        .collect()
}

fn f64s(df: &DataFrame, name: &str) -> Vec<Option<f64>> {
    df.column(name).unwrap().f64().unwrap().iter().collect()
}

fn u32s(df: &DataFrame, name: &str) -> Vec<u32> {
    df.column(name)
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .map(Option::unwrap)
        .collect()
}

/// `(line, reason)` of every quarantined row.
fn reasons(q: &DataFrame) -> Vec<(u32, String)> {
    u32s(q, col::SOURCE_LINE)
        .into_iter()
        .zip(strs(q, col::REASON).into_iter().map(Option::unwrap))
        .collect()
}

fn list(labels: &[&str]) -> Option<Vec<String>> {
    Some(labels.iter().map(|s| s.to_string()).collect())
}

const CSV_TASKS: &str = "\
[[tasks]]\nname = \"topic\"\ndataset = \"r\"\ncolumn = \"topic\"\ntype = \"classification\"\n\
[[tasks]]\nname = \"aspects\"\ndataset = \"r\"\ncolumn = \"aspects\"\ntype = \"multilabel\"\nseparator = \";\"\n\
[[tasks]]\nname = \"stars\"\ndataset = \"r\"\ncolumn = \"stars\"\ntype = \"regression\"\n";

#[test]
fn csv_with_quotes_embedded_newlines_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "id,text,topic,aspects,stars\n\
        a,\"Cheap, and good\",price,price;quality,4.5\n\
        b,\"Two\nlines \"\"quoted\"\"\",battery,,3\n\
        \n\
        c,Not a number,price,[],five\n\
        d,Too,many,fields,1,2\n\
        e,Too few\n\
        f,Infinite,price,\"[\"\"x\"\"]\",inf\n\
        g,Last one,,battery ; price,-1";
    std::fs::write(dir.path().join("r.csv"), csv).unwrap();
    let cfg = load(
        dir.path(),
        &format!(
            "[[datasets]]\nname = \"r\"\nformat = \"csv\"\nid = \"id\"\nfiles = {{ all = \"r.csv\" }}\n{CSV_TASKS}"
        ),
    );
    let (report, q) = clean(dir.path(), &cfg);
    assert_eq!(report.datasets["r"].read, 7, "the blank line is no record");
    let kept = kept(dir.path(), "r");
    assert_eq!(
        strs(&kept, col::ID),
        [Some("a".into()), Some("b".into()), Some("g".into())]
    );
    // The physical line each record starts on; the header is line 1.
    assert_eq!(u32s(&kept, col::SOURCE_LINE), [2, 3, 10]);
    assert_eq!(
        strs(&kept, col::TEXT),
        [
            Some("Cheap, and good".into()),
            Some("Two lines \"quoted\"".into()),
            Some("Last one".into())
        ]
    );
    assert_eq!(
        strs(&kept, "label_topic"),
        [Some("price".into()), Some("battery".into()), None]
    );
    assert_eq!(
        lists(&kept, "label_aspects"),
        [
            list(&["price", "quality"]),
            None,
            list(&["battery", "price"])
        ]
    );
    assert_eq!(
        f64s(&kept, "label_stars"),
        [Some(4.5), Some(3.0), Some(-1.0)]
    );
    assert_eq!(
        kept.column("label_aspects").unwrap().dtype(),
        &DataType::List(Box::new(DataType::String))
    );

    assert_eq!(
        reasons(&q),
        [
            (6, "bad_label".into()),
            (7, "wrong_field_count".into()),
            (8, "wrong_field_count".into()),
            (9, "bad_label".into()),
        ]
    );
    let detail = strs(&q, col::DETAIL);
    let d0 = detail[0].as_deref().unwrap();
    assert!(
        d0.contains("task `stars`") && d0.contains("`five` is not a number"),
        "{d0}"
    );
    assert_eq!(
        detail[1].as_deref(),
        Some("line 7: expected 5 fields, found 6")
    );
    assert_eq!(
        detail[2].as_deref(),
        Some("line 8: expected 5 fields, found 2")
    );
    assert!(
        detail[3]
            .as_deref()
            .unwrap()
            .contains("not a finite number")
    );
    assert_eq!(
        strs(&q, col::RAW)[1].as_deref(),
        Some("d,Too,many,fields,1,2")
    );
    assert!(
        strs(&q, col::SOURCE_FILE)
            .iter()
            .all(|f| f.as_deref() == Some("r.csv"))
    );
}

#[test]
fn tsv_and_headerless_csv_with_columns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.tsv"),
        "\u{feff}text\ttopic\tstars\nhello, world\tgreet\t1\n\"x\ty, 'z'\"\tgreet\t2\r\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("h.csv"),
        "\n5,Hi there,greet\n6,Bye now,leave\n",
    )
    .unwrap();
    let cfg = load(
        dir.path(),
        "[[datasets]]\nname = \"r\"\nformat = \"tsv\"\nfiles = { train = \"r.tsv\" }\n\
         [[datasets]]\nname = \"h\"\nformat = \"csv\"\nheader = false\nid = \"n\"\n\
         columns = [\"n\", \"body\", \"topic\"]\ntext = \"body\"\nfiles = { train = \"h.csv\" }\n\
         [[tasks]]\nname = \"topic\"\ndataset = \"r\"\ncolumn = \"topic\"\ntype = \"classification\"\n\
         [[tasks]]\nname = \"stars\"\ndataset = \"r\"\ncolumn = \"stars\"\ntype = \"regression\"\n\
         [[tasks]]\nname = \"topic2\"\ndataset = \"h\"\ncolumn = \"topic\"\ntype = \"classification\"\n",
    );
    let (report, q) = clean(dir.path(), &cfg);
    assert_eq!(q.height(), 0, "{q}");
    let r = kept(dir.path(), "r");
    assert_eq!(
        strs(&r, col::TEXT),
        [Some("hello, world".into()), Some("x y, 'z'".into())]
    );
    assert_eq!(strs(&r, col::ID)[0].as_deref(), Some("r:r.tsv:2"));
    assert_eq!(f64s(&r, "label_stars"), [Some(1.0), Some(2.0)]);
    assert_eq!(report.datasets["r"].kept_per_split["train"], 2);
    let h = kept(dir.path(), "h");
    assert_eq!(strs(&h, col::ID), [Some("5".into()), Some("6".into())]);
    assert_eq!(
        u32s(&h, col::SOURCE_LINE),
        [2, 3],
        "no header: physical lines"
    );
    assert_eq!(
        strs(&h, "label_topic2"),
        [Some("greet".into()), Some("leave".into())]
    );
}

#[test]
fn structural_problems_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.csv"), "id,text,topic,stars\na,x,y,1\n").unwrap();
    let cfg = load(
        dir.path(),
        &format!(
            "[[datasets]]\nname = \"r\"\nformat = \"csv\"\nid = \"id\"\nfiles = {{ all = \"r.csv\" }}\n{CSV_TASKS}"
        ),
    );
    let out = dir.path().join("clean");
    let err = mtl_clean::run(&cfg, &out, true).unwrap_err().to_string();
    assert!(
        err.contains("r.csv")
            && err.contains("no column `aspects`")
            && err.contains("task `aspects`")
            && err.contains("`id`, `text`, `topic`, `stars`"),
        "{err}"
    );
    assert!(!out.exists());

    std::fs::write(
        dir.path().join("r.csv"),
        "id,text,topic,aspects,stars\na,\"never closed,x,a,1\nb,y,x,a,2\n",
    )
    .unwrap();
    let err = mtl_clean::run(&cfg, &out, true).unwrap_err().to_string();
    assert!(
        err.contains("r.csv: line 2") && err.contains("never closed"),
        "{err}"
    );

    std::fs::write(dir.path().join("p.parquet"), b"not parquet").unwrap();
    let cfg = load(
        dir.path(),
        "[[datasets]]\nname = \"p\"\nformat = \"parquet\"\nfiles = { all = \"p.parquet\" }\n\
         [[tasks]]\nname = \"topic\"\ndataset = \"p\"\ncolumn = \"topic\"\ntype = \"classification\"\n",
    );
    let err = mtl_clean::run(&cfg, &out, true).unwrap_err();
    assert!(err.to_string().contains("p.parquet"), "{err}");
}

#[test]
fn parquet_round_trip_with_typed_and_list_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mut aspects = ListStringChunkedBuilder::new("aspects".into(), 4, 8);
    aspects.append_values_iter(["b", "a"].into_iter());
    aspects.append_values_iter(std::iter::empty());
    aspects.append_null();
    aspects.append_values_iter(["c"].into_iter());
    let mut df = DataFrame::new(
        4,
        vec![
            Column::new("key".into(), [10i64, 11, 12, 13]),
            Column::new(
                "text".into(),
                ["First one", "Second one", "Third", "Fourth"],
            ),
            Column::new("doc".into(), [Some("d1"), Some("d1"), None, Some("d2")]),
            Column::new(
                "score".into(),
                [Some(0.5f64), None, Some(f64::NAN), Some(2.0)],
            ),
            Column::new("topic".into(), [Some(1i32), Some(2), Some(1), None]),
            aspects.finish().into_column(),
        ],
    )
    .unwrap();
    write_parquet(&mut df, &dir.path().join("p.parquet")).unwrap();
    let cfg = load(
        dir.path(),
        "[[datasets]]\nname = \"p\"\nformat = \"parquet\"\nid = \"key\"\ngroup = \"doc\"\nfiles = { all = \"p.parquet\" }\n\
         [[tasks]]\nname = \"score\"\ndataset = \"p\"\ncolumn = \"score\"\ntype = \"regression\"\n\
         [[tasks]]\nname = \"topic\"\ndataset = \"p\"\ncolumn = \"topic\"\ntype = \"classification\"\n\
         [[tasks]]\nname = \"aspects\"\ndataset = \"p\"\ncolumn = \"aspects\"\ntype = \"multilabel\"\n",
    );
    let (report, q) = clean(dir.path(), &cfg);
    assert_eq!(report.datasets["p"].read, 4);
    assert_eq!(reasons(&q), [(3, "bad_label".into())], "NaN is no target");
    assert!(
        strs(&q, col::RAW)[0]
            .as_deref()
            .unwrap()
            .contains("\"key\":12")
    );
    let p = kept(dir.path(), "p");
    assert_eq!(
        strs(&p, col::ID),
        [Some("10".into()), Some("11".into()), Some("13".into())]
    );
    assert_eq!(u32s(&p, col::SOURCE_LINE), [1, 2, 4], "the 1-based row");
    assert_eq!(
        strs(&p, col::GROUP),
        [Some("d1".into()), Some("d1".into()), Some("d2".into())]
    );
    assert_eq!(f64s(&p, "label_score"), [Some(0.5), None, Some(2.0)]);
    assert_eq!(
        strs(&p, "label_topic"),
        [Some("1".into()), Some("2".into()), None]
    );
    assert_eq!(
        lists(&p, "label_aspects"),
        [list(&["a", "b"]), list(&[]), list(&["c"])],
        "an empty list is kept: no label applies"
    );
}

#[test]
fn multilabel_from_json_lists_and_dedup_compares_sets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.jsonl"),
        "{\"text\":\"one text\",\"tags\":[\"x\",\"y\"],\"y\":1}\n\
         {\"text\":\"One text!\",\"tags\":[\"y\",\"x\"],\"y\":1.0}\n\
         {\"text\":\"ONE TEXT\",\"tags\":[\"z\"],\"y\":1}\n\
         {\"text\":\"other\",\"tags\":\"x\",\"y\":\"2\"}\n\
         {\"text\":\"third\",\"tags\":[],\"y\":null}\n",
    )
    .unwrap();
    let cfg = load(
        dir.path(),
        "[[datasets]]\nname = \"m\"\nformat = \"jsonl\"\nfiles = { all = \"m.jsonl\" }\n\
         [[tasks]]\nname = \"tags\"\ndataset = \"m\"\ncolumn = \"tags\"\ntype = \"multilabel\"\n\
         [[tasks]]\nname = \"y\"\ndataset = \"m\"\ncolumn = \"y\"\ntype = \"regression\"\n",
    );
    let (report, q) = clean(dir.path(), &cfg);
    assert_eq!(
        reasons(&q),
        [
            (2, "near_duplicate".into()),
            (3, "conflicting_duplicate".into()),
            (4, "bad_label".into())
        ]
    );
    let detail = strs(&q, col::DETAIL);
    assert!(
        detail[1].as_deref().unwrap().contains("[x, y] vs [z]"),
        "{detail:?}"
    );
    assert!(detail[2].as_deref().unwrap().contains("no `separator`"));
    let conflicts = &report.datasets["m"].conflicts;
    assert_eq!(conflicts[0].task, "tags");
    assert_eq!(conflicts[0].kept_label, serde_json::json!(["x", "y"]));
    let m = kept(dir.path(), "m");
    assert_eq!(lists(&m, "label_tags"), [list(&["x", "y"]), list(&[])]);
    assert_eq!(f64s(&m, "label_y"), [Some(1.0), None]);
}

#[test]
fn conll_column_files_with_documents() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.txt"),
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n\
         Bad NNP B-NP\n\n-DOCSTART- -X- -X- O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER",
    )
    .unwrap();
    let cfg = load(
        dir.path(),
        "[[datasets]]\nname = \"c\"\nformat = \"conll\"\nfiles = { train = \"c.txt\" }\n\
         columns = [\"word\", \"pos\", \"chunk\", \"ner\"]\ntext = \"word\"\n\
         [[tasks]]\nname = \"ner\"\ndataset = \"c\"\ncolumn = \"ner\"\ntype = \"spans\"\n\
         [[tasks]]\nname = \"chunk\"\ndataset = \"c\"\ncolumn = \"chunk\"\ntype = \"tagging\"\n",
    );
    let (report, q) = clean(dir.path(), &cfg);
    assert_eq!(report.datasets["c"].read, 3);
    assert_eq!(reasons(&q), [(6, "wrong_field_count".into())]);
    let c = kept(dir.path(), "c");
    assert_eq!(
        strs(&c, col::ID),
        [Some("c:c.txt:3".into()), Some("c:c.txt:10".into())]
    );
    assert_eq!(
        strs(&c, col::GROUP),
        [Some("doc-1".into()), Some("doc-2".into())]
    );
    assert_eq!(
        strs(&c, col::TEXT),
        [Some("EU rejects".into()), Some("Peter Blackburn".into())]
    );
    assert_eq!(
        lists(&c, "label_ner"),
        [list(&["B-ORG", "O"]), list(&["B-PER", "I-PER"])]
    );
    assert_eq!(lists(&c, "label_chunk")[1], list(&["B-NP", "I-NP"]));
    let names: Vec<&str> = c.get_column_names().iter().map(|n| n.as_str()).collect();
    assert!(!names.iter().any(|n| n.starts_with("conllu_")), "{names:?}");
}

#[test]
fn conllu_keeps_its_annotation_as_list_columns() {
    let dir = tempfile::tempdir().unwrap();
    let w = |id: &str, form: &str, lemma: &str, upos: &str, head: &str| {
        format!("{id}\t{form}\t{lemma}\t{upos}\tX{upos}\tF={upos}\t{head}\trel{id}\t_\t_\n")
    };
    let mut f = String::from("# newdoc id = d1\n# sent_id = s1\n# text = Don't go\n");
    f += &w("1-2", "Don't", "_", "_", "_");
    f += &w("1", "Do", "do", "AUX", "3");
    f += &w("2", "n't", "not", "PART", "3");
    f += &w("2.1", "ghost", "ghost", "X", "_");
    f += &w("3", "go", "go", "VERB", "0");
    f += "\n# sent_id = s2\n";
    f += &w("1", "Hi", "hi", "INTJ", "_");
    std::fs::write(dir.path().join("u.conllu"), f).unwrap();
    let cfg = load(
        dir.path(),
        "[[datasets]]\nname = \"u\"\nformat = \"conllu\"\nfiles = { train = \"u.conllu\" }\n\
         [[tasks]]\nname = \"upos\"\ndataset = \"u\"\ncolumn = \"upos\"\ntype = \"tagging\"\n",
    );
    let (_, q) = clean(dir.path(), &cfg);
    assert_eq!(q.height(), 0);
    let u = kept(dir.path(), "u");
    let names: Vec<&str> = u.get_column_names().iter().map(|n| n.as_str()).collect();
    let mut expected = vec![
        "id",
        "dataset",
        "source_split",
        "source_file",
        "source_line",
        "group",
        "text",
        "words",
        "n_chars",
        "n_words",
        "label_upos",
    ];
    expected.extend(mtl_clean::conllu::COLUMNS);
    let features: Vec<String> = FEATURES.iter().map(|f| col::feature(f)).collect();
    expected.extend(features.iter().map(String::as_str));
    assert_eq!(names, expected);
    assert_eq!(strs(&u, col::ID), [Some("s1".into()), Some("s2".into())]);
    assert_eq!(strs(&u, col::GROUP), [Some("d1".into()), Some("d1".into())]);
    assert_eq!(lists(&u, col::WORDS)[0], list(&["Do", "n't", "go"]));
    assert_eq!(lists(&u, "label_upos")[0], list(&["AUX", "PART", "VERB"]));
    assert_eq!(lists(&u, "conllu_lemma")[0], list(&["do", "not", "go"]));
    assert_eq!(lists(&u, "conllu_upos")[0], list(&["AUX", "PART", "VERB"]));
    assert_eq!(
        lists(&u, "conllu_xpos")[0],
        list(&["XAUX", "XPART", "XVERB"])
    );
    assert_eq!(
        lists(&u, "conllu_feats")[0],
        list(&["F=AUX", "F=PART", "F=VERB"])
    );
    assert_eq!(
        lists(&u, "conllu_deprel")[0],
        list(&["rel1", "rel2", "rel3"])
    );
    let head = u.column("conllu_head").unwrap();
    assert_eq!(head.dtype(), &DataType::List(Box::new(DataType::UInt32)));
    let heads: Vec<Vec<Option<u32>>> = (0..2)
        .map(|i| {
            let s = head.list().unwrap().get_as_series(i).unwrap();
            s.u32().unwrap().iter().collect()
        })
        .collect();
    assert_eq!(heads, [vec![Some(3), Some(3), Some(0)], vec![None]]);
    assert_eq!(strs(&u, "conllu_text"), [Some("Don't go".into()), None]);
}

#[test]
fn features_of_matches_the_stage_table() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("f.jsonl"),
        "{\"text\":\"Hello  @Bob, see https://x.io/a #Deal 42!!\",\"s\":\"a\"}\n\
         {\"text\":\"x\",\"s\":\"b\"}\n\
         {\"text\":\"Été 2024 — café <b>OK</b>\",\"s\":\"c\"}\n",
    )
    .unwrap();
    let cfg = load(
        dir.path(),
        "[[datasets]]\nname = \"f\"\nformat = \"jsonl\"\nfiles = { all = \"f.jsonl\" }\n\
         [[tasks]]\nname = \"s\"\ndataset = \"f\"\ncolumn = \"s\"\ntype = \"classification\"\n",
    );
    clean(dir.path(), &cfg);
    let f = kept(dir.path(), "f");
    let texts: Vec<String> = strs(&f, col::TEXT)
        .into_iter()
        .map(Option::unwrap)
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let computed = mtl_clean::features_of(&texts).unwrap();
    assert_eq!(computed.len(), 3);
    for name in FEATURES {
        let column: Vec<f32> = f
            .column(&col::feature(name))
            .unwrap()
            .f32()
            .unwrap()
            .iter()
            .map(Option::unwrap)
            .collect();
        let ours: Vec<f32> = computed.iter().map(|m| m[name]).collect();
        assert_eq!(column, ours, "{name}");
    }
    let n_chars: Vec<f32> = u32s(&f, col::N_CHARS)
        .into_iter()
        .map(|n| n as f32)
        .collect();
    assert_eq!(
        computed.iter().map(|m| m["n_chars"]).collect::<Vec<_>>(),
        n_chars
    );
    assert_eq!(computed[0]["n_urls"], 1.0);
    assert_eq!(computed[0]["n_mentions"], 1.0);
    assert_eq!(computed[0]["n_hashtags"], 1.0);
}
