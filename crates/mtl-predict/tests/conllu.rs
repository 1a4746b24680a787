//! The binary end to end on a treebank-like bundle: `--segment auto`
//! picks UD segmentation for it, CoNLL-U output parses back (10 columns,
//! IDs in order, multiword tokens, a blank line after each sentence), its
//! columns hold the same tags as the JSONL output, `SpaceAfter=No` marks
//! exactly the words the raw text glues to the next, and pre-tokenized
//! input keeps its words.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const TEXTS: &str = "The battery died after two days, terrible.\n\
                     I don't know,  really!\n\
                     \n\
                     It's the parents' car:great (really).\n";

struct Job {
    dir: tempfile::TempDir,
    model: PathBuf,
}

impl Job {
    fn new(ud: bool) -> Job {
        let dir = tempfile::tempdir().unwrap();
        let model = if ud {
            common::ud_bundle(dir.path())
        } else {
            common::bundle(dir.path(), None)
        };
        Job { dir, model }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Runs mtl-predict on `input` into `output` with `args`.
    fn predict(&self, input: &Path, output: &str, args: &[&str]) -> (Output, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_mtl-predict"))
            .arg("--model")
            .arg(&self.model)
            .arg("--input")
            .arg(input)
            .arg("--output")
            .arg(self.path(output))
            .args(args)
            .output()
            .unwrap();
        let written = std::fs::read_to_string(self.path(output)).unwrap_or_default();
        (out, written)
    }
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A parsed sentence block.
#[derive(Debug)]
struct Block {
    comments: Vec<String>,
    /// Word and range lines, split into their 10 fields.
    lines: Vec<Vec<String>>,
}

impl Block {
    fn comment(&self, key: &str) -> Option<String> {
        self.comments
            .iter()
            .find_map(|c| c.strip_prefix(&format!("# {key} = ")).map(String::from))
    }

    /// The word lines (no range lines).
    fn words(&self) -> Vec<&Vec<String>> {
        self.lines.iter().filter(|l| !l[0].contains('-')).collect()
    }

    fn column(&self, k: usize) -> Vec<String> {
        self.words().iter().map(|l| l[k].clone()).collect()
    }
}

/// Parses CoNLL-U, checking its shape: every block ends with a blank line,
/// comments come first, every line has 10 tab-separated fields, word IDs
/// run 1..n and a range `a-b` comes right before word `a`, with `b` within
/// the sentence.
fn parse(conllu: &str) -> Vec<Block> {
    assert!(conllu.ends_with("\n\n"), "{conllu:?}");
    let mut blocks = Vec::new();
    for raw in conllu.trim_end_matches('\n').split("\n\n") {
        let mut block = Block {
            comments: Vec::new(),
            lines: Vec::new(),
        };
        let mut next_id = 1;
        for line in raw.lines() {
            assert!(!line.is_empty(), "two blank lines in {conllu:?}");
            if line.starts_with('#') {
                assert!(block.lines.is_empty(), "a comment after words: {raw}");
                block.comments.push(line.to_string());
                continue;
            }
            let fields: Vec<String> = line.split('\t').map(String::from).collect();
            assert_eq!(fields.len(), 10, "{line:?}");
            assert!(fields.iter().all(|f| !f.is_empty()), "{line:?}");
            match fields[0].split_once('-') {
                Some((a, b)) => {
                    let (a, b): (usize, usize) = (a.parse().unwrap(), b.parse().unwrap());
                    assert!(a == next_id && b > a, "{line:?} before word {next_id}");
                }
                None => {
                    assert_eq!(fields[0], next_id.to_string(), "{raw}");
                    next_id += 1;
                }
            }
            block.lines.push(fields);
        }
        for l in &block.lines {
            if let Some((_, b)) = l[0].split_once('-') {
                assert!(b.parse::<usize>().unwrap() < next_id, "{raw}");
            }
        }
        assert!(next_id > 1, "a sentence without words: {raw}");
        blocks.push(block);
    }
    blocks
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap_or("_").to_string())
        .collect()
}

#[test]
fn conllu_from_raw_text_parses_and_holds_the_tasks_tags() {
    let job = Job::new(true);
    let input = job.write("in.txt", TEXTS);
    let (out, conllu) = job.predict(&input, "out.conllu", &[]);
    let stdout = ok(&out);
    assert!(
        stdout.contains("words: ud (auto: task `upos` tags with UD's universal POS tags)"),
        "{stdout}"
    );
    let blocks = parse(&conllu);
    let lines: Vec<&str> = TEXTS.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(blocks.len(), lines.len());

    let forms: Vec<Vec<String>> = blocks.iter().map(|b| b.column(1)).collect();
    assert_eq!(
        forms[0],
        [
            "The", "battery", "died", "after", "two", "days", ",", "terrible", "."
        ]
    );
    assert_eq!(
        forms[2],
        [
            "It", "'s", "the", "parents", "'", "car", ":", "great", "(", "really", ")", "."
        ]
    );
    // `don't` is a multiword token: its range line, then its words.
    let ranges: Vec<(String, String)> = blocks[1]
        .lines
        .iter()
        .filter(|l| l[0].contains('-'))
        .map(|l| (l[0].clone(), l[1].clone()))
        .collect();
    assert_eq!(ranges, [("2-3".to_string(), "don't".to_string())]);

    let (out, json) = job.predict(&input, "out.jsonl", &[]);
    ok(&out);
    let records = jsonl(&json);
    for ((block, record), line) in blocks.iter().zip(&records).zip(&lines) {
        let one_line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(block.comment("text"), Some(one_line));
        // No id column, so no sent_id.
        assert_eq!(block.comment("sent_id"), None);
        assert_eq!(block.column(1), strings(&record["words"]));
        assert_eq!(block.column(3), strings(&record["upos"]["tags"]));
        assert_eq!(block.column(4), strings(&record["xpos"]["tags"]));
        assert_eq!(block.column(5), strings(&record["ufeats"]["tags"]));
        for w in block.words() {
            assert!(common::UPOS.contains(&w[3].as_str()), "{w:?}");
            assert!(common::XPOS.contains(&w[4].as_str()), "{w:?}");
            assert!(common::FEATS.contains(&w[5].as_str()), "{w:?}");
            // No lemma, no dependency task, no enhanced graph.
            assert_eq!([&w[2], &w[6], &w[7], &w[8]], ["_"; 4], "{w:?}");
        }
    }
}

#[test]
fn space_after_no_follows_the_raw_text() {
    let job = Job::new(true);
    let input = job.write("in.txt", TEXTS);
    let (out, conllu) = job.predict(&input, "out.conllu", &["--output-format", "conllu"]);
    ok(&out);
    for (block, line) in parse(&conllu)
        .iter()
        .zip(TEXTS.lines().filter(|l| !l.is_empty()))
    {
        // Rebuild the text from the tokens (range lines stand for their
        // words) and SpaceAfter: it is the raw line, whitespace runs as one
        // space.
        let mut text = String::new();
        let mut inside = 0;
        for l in &block.lines {
            let ids: Vec<usize> = l[0].split('-').map(|x| x.parse().unwrap()).collect();
            if ids[0] <= inside {
                assert_eq!(l[9], "_", "a word inside a multiword token: {l:?}");
                continue;
            }
            inside = *ids.last().unwrap();
            text.push_str(&l[1]);
            match l[9].as_str() {
                "SpaceAfter=No" => {}
                "_" => text.push(' '),
                other => panic!("MISC {other}"),
            }
        }
        let want = line.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(text.trim_end(), want);
    }
}

#[test]
fn pretokenized_input_keeps_its_words() {
    let job = Job::new(true);
    let input = job.write(
        "in.txt",
        "I do n't know , really .\nIt 's the parents ' car\n",
    );
    let (out, conllu) = job.predict(&input, "out.conllu", &["--pretokenized"]);
    let stdout = ok(&out);
    assert!(
        stdout.contains("words: whitespace (--segment whitespace)"),
        "{stdout}"
    );
    let blocks = parse(&conllu);
    assert_eq!(
        blocks[0].column(1),
        ["I", "do", "n't", "know", ",", "really", "."]
    );
    assert_eq!(
        blocks[1].column(1),
        ["It", "'s", "the", "parents", "'", "car"]
    );
    for b in &blocks {
        // Every word stands apart: no multiword tokens, spaces after all.
        assert!(b.lines.iter().all(|l| !l[0].contains('-') && l[9] == "_"));
    }
    // Raw text, pre-tokenized: `don't` stays one word.
    let raw = job.write("raw.txt", "I don't know, really.\n");
    let (out, conllu) = job.predict(&raw, "raw.conllu", &["--pretokenized"]);
    ok(&out);
    assert_eq!(
        parse(&conllu)[0].column(1),
        ["I", "don't", "know,", "really."]
    );

    // Pre-tokenized and UD segmentation contradict each other.
    let (out, _) = job.predict(&input, "x.conllu", &["--pretokenized", "--segment", "ud"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn ids_become_sent_ids_and_unusable_rows_are_left_out() {
    let job = Job::new(true);
    let input = job.write(
        "in.jsonl",
        "{\"id\": \"a 1\", \"text\": \"Great, thanks.\"}\nnot json\n{\"id\": 7, \"text\": \"<br/>\"}\n{\"id\": 8, \"text\": \"Fine\"}\n",
    );
    let (out, conllu) = job.predict(&input, "out.conllu", &["--id-column", "id"]);
    let stdout = ok(&out);
    assert!(
        stdout.contains("predicted 3 rows (1 unusable and 1 without words left out)"),
        "{stdout}"
    );
    let blocks = parse(&conllu);
    let ids: Vec<Option<String>> = blocks.iter().map(|b| b.comment("sent_id")).collect();
    assert_eq!(ids, [Some("a_1".to_string()), Some("8".to_string())]);
    assert_eq!(blocks[0].column(1), ["Great", ",", "thanks", "."]);
}

#[test]
fn auto_segmentation_follows_the_bundle() {
    let text = "Two days, terrible.\n";
    // A treebank bundle gets UD words unless told otherwise.
    let ud = Job::new(true);
    ud.write("in.txt", text);
    let words = |job: &Job, args: &[&str]| {
        let (out, json) = job.predict(&job.path("in.txt"), "out.jsonl", args);
        ok(&out);
        strings(&jsonl(&json)[0]["words"])
    };
    assert_eq!(words(&ud, &[]), ["Two", "days", ",", "terrible", "."]);
    assert_eq!(
        words(&ud, &["--segment", "whitespace"]),
        ["Two", "days,", "terrible."]
    );
    // Any other bundle splits at whitespace, as its training data was.
    let other = Job::new(false);
    other.write("in.txt", text);
    assert_eq!(words(&other, &[]), ["Two", "days,", "terrible."]);
    assert_eq!(
        words(&other, &["--segment", "ud"]),
        ["Two", "days", ",", "terrible", "."]
    );
}

#[test]
fn batch_mode_writes_conllu_files() {
    let job = Job::new(true);
    std::fs::create_dir(job.path("in")).unwrap();
    job.write("in/a.txt", TEXTS);
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_mtl-predict"))
            .arg("--model")
            .arg(&job.model)
            .arg("--input-dir")
            .arg(job.path("in"))
            .arg("--output-dir")
            .arg(job.path("out"))
            .args(["--output-format", "conllu"])
            .output()
            .unwrap()
    };
    let out = run();
    ok(&out);
    let conllu = std::fs::read_to_string(job.path("out/a.txt.conllu")).unwrap();
    assert_eq!(parse(&conllu).len(), 3);
    assert!(!job.path("out/a.txt.jsonl").exists());
    // Nothing changed: nothing to do.
    assert_eq!(run().status.code(), Some(3));
}
