#!/usr/bin/env python3
"""The Python `tokenizers` peer of `mtl-tokenize`, for `cargo xtask bench tokenize`.

It does the tokenize stage's work on one split table with a pretrained
`tokenizer.json`, step for step as crates/mtl-tokenize/src/{encode,align,
stage,output}.rs do it, the way a Hugging Face user would write it: read the
`words` column with pyarrow, `Tokenizer.from_file(...).encode_batch(words,
is_pretokenized=True)` in batches of 4096 rows (padding and truncation
stored in the file turned off, as `load_pretrained` does), give a word that
produced no sub-token one unknown token, cut each example to `max_length`
sub-tokens keeping the trailing special token(s), put each word's label id
on its first sub-token (-100 elsewhere) for token tasks, map sentence
labels to ids (-1 = no label), and write `train.parquet` with the stage's
columns and types (`id`, `input_ids` list<u32>, `word_ids` list<i32>,
`n_words` u32, `length` u32, `y_<task>`) and a `report.json` with the rows
and sub-tokens written.

Not done (the stage does it, the benchmark leaves it out of the peer):
features (`feat_*`, none in the benchmarked pipelines), windowed
truncation, the report's length percentiles and padding estimates.

Usage: tokenize_hf.py --spec SPEC.json --out DIR
SPEC.json (written by xtask): {"input": train.parquet, "labels":
labels.json, "tokenizer": tokenizer.json, "max_length": N,
"label_all_subtokens": bool}.
"""

import argparse
import json
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer

IGNORE_INDEX = -100
NO_LABEL = -1
CHUNK = 4096
TOKEN_KINDS = ("tagging", "spans")


def unk_id(tok):
    """The unknown token's id, as crates/mtl-tokenize/src/encode.rs finds it."""
    model = tok.model
    unk = getattr(model, "unk_token", None)
    if unk:
        return tok.token_to_id(unk)
    if type(model).__name__ == "Unigram":
        pieces = model.tokenize("\U0010ffff")
        return pieces[0].id if len(pieces) == 1 else None
    return None


def fill_unknown(ids, wids, n_words, unk):
    """Slots one unknown token in for each word that produced none: before
    the next word's sub-tokens, or before the trailing special tokens."""
    has = [False] * n_words
    for w in wids:
        if 0 <= w < n_words:
            has[w] = True
    n = len(ids)
    last = max((p for p, w in enumerate(wids) if w >= 0), default=None)
    tail_at = max(n - 1, 0) if last is None else last + 1
    out_ids, out_wids = [], []
    next_word = 0

    def fill_to(upto):
        nonlocal next_word
        while next_word < min(upto, n_words):
            if not has[next_word]:
                out_ids.append(unk)
                out_wids.append(next_word)
            next_word += 1

    for p in range(n + 1):
        if p == tail_at:
            fill_to(n_words)
        if p == n:
            break
        w = wids[p]
        if w >= 0:
            fill_to(w)
            next_word = max(next_word, w + 1)
        out_ids.append(ids[p])
        out_wids.append(w)
    return out_ids, out_wids


def finish(enc, n_words, unk, max_length):
    """One encoding as (ids, word ids, words lost to truncation)."""
    ids = enc.ids
    wids = [-1 if w is None else w for w in enc.word_ids]
    if unk is not None and n_words and len({w for w in wids if w >= 0}) < n_words:
        ids, wids = fill_unknown(ids, wids, n_words, unk)
    lost = 0
    if len(ids) > max_length:
        before = {w for w in wids if w >= 0}
        trailing = 0
        for w in reversed(wids):
            if w >= 0:
                break
            trailing += 1
        if trailing < max_length:
            head, tail = max_length - trailing, len(ids) - trailing
            ids = ids[:head] + ids[tail:]
            wids = wids[:head] + wids[tail:]
        else:
            ids, wids = ids[:max_length], wids[:max_length]
        lost = len(before - {w for w in wids if w >= 0})
    return ids, wids, lost


def align(word_labels, wids, all_subtokens):
    """Word label ids on sub-tokens: the first sub-token of each word."""
    seen = set()
    out = []
    n = len(word_labels)
    for w in wids:
        if w < 0 or w >= n:
            out.append(IGNORE_INDEX)
        elif w not in seen:
            seen.add(w)
            out.append(word_labels[w])
        else:
            out.append(word_labels[w] if all_subtokens else IGNORE_INDEX)
    return out


def targets(task, info, values, wids_rows, n_words, all_subtokens):
    """The `y_<task>` column: label ids per row (or per sub-token)."""
    kind = info["kind"]
    index = {label: i for i, label in enumerate(info["labels"])}

    def lookup(row, label):
        try:
            return index[label]
        except KeyError:
            sys.exit(f"row {row}: task `{task}`: unknown label `{label}`")

    if kind == "classification":
        data = [NO_LABEL if v is None else lookup(r, v) for r, v in enumerate(values)]
        return pa.array(data, type=pa.int32())
    if kind in TOKEN_KINDS:
        data = []
        for r, (v, wids) in enumerate(zip(values, wids_rows)):
            if v is None:
                data.append(None)
                continue
            if len(v) != n_words[r]:
                sys.exit(f"row {r}: task `{task}`: {len(v)} labels for {n_words[r]} words")
            data.append(align([lookup(r, l) for l in v], wids, all_subtokens))
        return pa.array(data, type=pa.list_(pa.int32()))
    if kind == "multilabel":
        data = [None if v is None else sorted({lookup(r, l) for l in v}) for r, v in enumerate(values)]
        return pa.array(data, type=pa.list_(pa.int32()))
    if kind == "regression":
        return pa.array(values, type=pa.float32())
    sys.exit(f"task `{task}`: unknown kind `{kind}`")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    with open(spec["labels"], encoding="utf-8") as f:
        tasks = json.load(f)["tasks"]
    max_length = int(spec["max_length"])
    all_subtokens = bool(spec["label_all_subtokens"])

    tok = Tokenizer.from_file(spec["tokenizer"])
    tok.no_padding()
    tok.no_truncation()
    unk = unk_id(tok)

    label_cols = [f"label_{t}" for t in tasks]
    table = pq.read_table(spec["input"], columns=["id", "words"] + label_cols)
    words = table.column("words").to_pylist()
    n_words = [len(w) for w in words]

    input_ids, word_ids, truncated_words = [], [], 0
    for start in range(0, len(words), CHUNK):
        batch = words[start : start + CHUNK]
        encs = tok.encode_batch(batch, is_pretokenized=True, add_special_tokens=True)
        for enc, w in zip(encs, batch):
            ids, wids, lost = finish(enc, len(w), unk, max_length)
            input_ids.append(ids)
            word_ids.append(wids)
            truncated_words += lost

    columns = {
        "id": table.column("id"),
        "input_ids": pa.array(input_ids, type=pa.list_(pa.uint32())),
        "word_ids": pa.array(word_ids, type=pa.list_(pa.int32())),
        "n_words": pa.array(n_words, type=pa.uint32()),
        "length": pa.array([len(i) for i in input_ids], type=pa.uint32()),
    }
    for task, info in tasks.items():
        values = table.column(f"label_{task}").to_pylist()
        columns[f"y_{task}"] = targets(task, info, values, word_ids, n_words, all_subtokens)

    os.makedirs(args.out, exist_ok=True)
    pq.write_table(pa.table(columns), os.path.join(args.out, "train.parquet"))
    counts = {
        "rows": len(input_ids),
        "sub_tokens": sum(len(i) for i in input_ids),
        "truncated_words": truncated_words,
    }
    with open(os.path.join(args.out, "report.json"), "w", encoding="utf-8") as f:
        json.dump({"splits": {"train": counts}}, f, indent=2)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
