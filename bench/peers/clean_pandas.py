#!/usr/bin/env python3
"""The pandas peer of `mtl-clean`, for `cargo xtask bench clean`.

It does the clean stage's work on one JSON Lines dataset, step for step as
crates/mtl-clean/src/{read,text,rules,stage}.rs do it, the way a pandas
user would write it: parse each line (quarantining the ones that are not
usable), split the text on whitespace, clean every word with vectorised
`Series.str` operations (tag strip, HTML unescape, control and zero-width
removal, Unicode normalization, optional URL/e-mail/user masks, optional
lowercase, whitespace inside a word removed), rebuild the text from the
non-empty words (the whitespace collapse), check each row (tag count,
emptied words under token labels, empty text, length limits, no labels),
drop exact and near duplicates (reporting conflicting labels) and repeated
ids, add the same numeric features, and write `<dataset>.parquet`,
`quarantine.parquet` and `report.json`.

It streams: lines are read and cleaned in chunks, and the tables are
written chunk by chunk. What grows with the input is the duplicate index
(one hash and the kept row's id and label codes per distinct text), the
same state any exact deduplication must keep.

Differences from mtl-clean, all outside what the benchmark file holds:
Python's `str.split()` also splits on U+001C..U+001F; `html.unescape`
knows a few more entity spellings than the `html-escape` crate; the
detail of a near duplicate names the kept row's id but not its text
(keeping every text would hold the whole file in memory).

Usage: clean_pandas.py --spec SPEC.json --out DIR [--chunk-lines N]
SPEC.json (written by xtask from the pipeline config): {"dataset", "input",
"source_file", "id", "text", "group", "tasks": [{"name", "column",
"token"}], "clean": {...the dataset's [datasets.clean] options...}}.
The last line of stdout is a JSON object with the counts.
"""

import argparse
import html
import json
import math
import os
import sys
import unicodedata

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# --- the patterns of crates/mtl-clean/src/text.rs, in Python `re` syntax ---
TAG = r"</?[A-Za-z][A-Za-z0-9-]*(?:[\s/][^<>]*)?>"
TAG_HEAD = r"^<[A-Za-z][A-Za-z0-9-]*$"
TAG_TAIL = r"""^[A-Za-z_:][-A-Za-z0-9_:.]*=(?:"[^"]*"|'[^']*'|[^\s"'<>=]+)/?>"""
CONTROL = "[\x00-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff]"
URL = r"""(?i)(?:https?://|ftp://|www\.)[^\s<>"']*[^\s<>"'.,;:!?)\]}]"""
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
USER = r"(^|[^\w@./])@\w+"
SPACE = r"\s+"
# [^\p{L}\p{N}]: Python's \w is letters, numbers and `_`.
NON_ALNUM = r"[\W_]"
URL_MASK, EMAIL_MASK, USER_MASK = "<url>", "<email>", "@user"
FEAT_URLS = r"<url>|(?i:https?://|www\.)\S+"
FEAT_MENTIONS = r"(?:^|\s)@\w+"
FEAT_HASHTAGS = r"(?:^|\s)#\w+"
# mtl_core::artifact::FEATURES, as `feat_<name>` columns.
FEATURES = [
    "feat_n_chars",
    "feat_n_words",
    "feat_mean_word_len",
    "feat_upper_ratio",
    "feat_digit_ratio",
    "feat_punct_ratio",
    "feat_n_urls",
    "feat_n_mentions",
    "feat_n_hashtags",
]


def category_class(prefixes):
    """A regex character class of every code point whose Unicode general
    category starts with one of `prefixes` (\\p{Lu}, \\p{P}: `re` has none)."""
    ranges, start, prev = [], None, None
    for cp in range(0x110000):
        if unicodedata.category(chr(cp)).startswith(prefixes):
            if start is None:
                start = cp
            prev = cp
        elif start is not None:
            ranges.append((start, prev))
            start = None
    if start is not None:
        ranges.append((start, prev))

    def esc(cp):
        return "\\U%08x" % cp

    body = "".join(esc(a) if a == b else esc(a) + "-" + esc(b) for a, b in ranges)
    return "[" + body + "]"


class Quarantine:
    def __init__(self):
        self.rows = []

    def add(self, line, reason, detail, raw):
        self.rows.append((line, reason, detail, raw))


def read_label(task, value):
    """(label, None) or (None, (reason, detail)); mirrors read.rs."""

    def bad(what):
        return None, ("bad_label", f"task `{task['name']}` (field `{task['column']}`): {what}")

    kind_ = task.get("kind")
    if kind_ == "multilabel":
        return read_multi(task, value, bad)
    if kind_ == "regression":
        return read_number(value, bad)
    if task["token"]:
        if value is None:
            return None, None
        if isinstance(value, list):
            for i, v in enumerate(value):
                if not isinstance(v, str):
                    return bad(f"tag {i} is {kind(v)}, expected a string")
            return value, None
        return bad(f"{kind(value)}, expected an array of tags")
    if value is None:
        return None, None
    if isinstance(value, str):
        value = value.strip()
        return (value or None), None
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, (int, float)):
        return json.dumps(value), None
    return bad(f"{kind(value)}, expected a string")


def read_multi(task, value, bad):
    """A JSON list, a string holding a JSON list, or a string split on the
    task's separator; sorted, without repeats. Mirrors read.rs."""
    if value is None:
        return None, None
    if isinstance(value, list):
        labels = []
        for i, v in enumerate(value):
            if isinstance(v, str):
                labels.append(v.strip())
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                labels.append(json.dumps(v))
            else:
                return bad(f"label {i} is {kind(v)}, expected a string")
    elif isinstance(value, str):
        if not value.strip():
            return None, None
        if value.lstrip().startswith("["):
            try:
                inner = json.loads(value.strip())
            except ValueError as e:
                return bad(f"`{value}` is not a JSON list of labels: {e}")
            return read_multi(task, inner, bad)
        sep = task.get("separator")
        if sep is None:
            return bad(
                f"`{value}` is a string but the task has no `separator`; give a JSON list or set `separator`"
            )
        labels = [x.strip() for x in value.split(sep) if x.strip()]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        labels = [json.dumps(value)]
    else:
        return bad(f"{kind(value)}, expected a list of labels or a string")
    for i, l in enumerate(labels):
        if not l:
            return bad(f"label {i} is empty")
    return sorted(set(labels)), None


def read_number(value, bad):
    """A finite number, or a numeric string. Mirrors read.rs."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return bad(f"{kind(value)}, expected a number")
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        if not value.strip():
            return None, None
        try:
            x = float(value.strip())
        except ValueError:
            return bad(f"`{value}` is not a number")
    else:
        return bad(f"{kind(value)}, expected a number")
    if not math.isfinite(x):
        return bad(f"`{x}` is not a finite number")
    return x, None


def kind(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    return "an object"


def parse_line(spec, tasks, line_no, text):
    """A row dict, or (reason, detail)."""
    try:
        obj = json.loads(text)
    except ValueError as e:
        return ("unparseable", str(e))
    if not isinstance(obj, dict):
        return ("unparseable", f"invalid type: {kind(obj)}, expected a map")
    id_key = spec.get("id")
    if id_key is None:
        row_id = f"{spec['dataset']}:{spec['source_file']}:{line_no}"
    else:
        v = obj.get(id_key)
        if isinstance(v, str) and v.strip():
            row_id = v
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            row_id = json.dumps(v)
        elif v is None:
            return ("missing_id", f"no value for id field `{id_key}`")
        elif isinstance(v, str):
            return ("missing_id", f"id field `{id_key}` is an empty string")
        else:
            return ("missing_id", f"id field `{id_key}` is {kind(v)}, expected a string or number")
    raw_text = obj.get(spec["text"])
    if raw_text is None:
        raw_text = ""
    elif not isinstance(raw_text, str):
        return ("bad_text", f"text field `{spec['text']}` is {kind(raw_text)}, expected a string")
    group = None
    if spec.get("group"):
        g = obj.get(spec["group"])
        group = None if g is None else (g if isinstance(g, str) else json.dumps(g))
    labels = []
    for t in tasks:
        label, err = read_label(t, obj.get(t["column"]))
        if err:
            return err
        labels.append(label)
    return {"id": row_id, "line": line_no, "group": group, "words": raw_text.split(), "labels": labels, "raw": text}


def clean_tokens(tok, opts):
    """The token expression of text.rs, as pandas string operations."""
    if opts["strip_html"]:
        tok = tok.str.replace(TAG_TAIL, "", regex=True)
        tok = tok.str.replace(TAG_HEAD, "", regex=True)
        tok = tok.str.replace(TAG, "", regex=True)
        tok = tok.map(html.unescape)
    if opts["remove_control"]:
        tok = tok.str.replace(CONTROL, "", regex=True)
    norm = opts["normalize"]
    if norm != "none":
        tok = tok.str.normalize(norm.upper())
    if opts["mask_urls"]:
        tok = tok.str.replace(URL, URL_MASK, regex=True)
    if opts["mask_emails"]:
        tok = tok.str.replace(EMAIL, EMAIL_MASK, regex=True)
    if opts["mask_users"]:
        tok = tok.str.replace(USER, r"\g<1>" + USER_MASK, regex=True)
    if opts["lowercase"]:
        tok = tok.str.lower()
    return tok.str.replace(SPACE, "", regex=True)


class Cleaner:
    def __init__(self, spec, out_dir):
        self.spec = spec
        self.tasks = spec["tasks"]
        self.opts = spec["clean"]
        self.out_dir = out_dir
        self.read = 0
        self.kept = 0
        self.dropped = {}
        self.labelled = {t["name"]: 0 for t in self.tasks}
        self.conflicts = []
        # Near-duplicate key hash -> (kept id, text hash, label codes).
        self.seen = {}
        # Kept id -> line, for `duplicate_id`.
        self.ids = {}
        self.codes = {}
        self.upper = category_class(("Lu",))
        self.punct = category_class(("P",))
        label_types = [
            pa.float64()
            if t.get("kind") == "regression"
            else pa.list_(pa.string())
            if t["token"] or t.get("kind") == "multilabel"
            else pa.string()
            for t in self.tasks
        ]
        self.schema = pa.schema(
            [
                ("id", pa.string()),
                ("dataset", pa.string()),
                ("source_split", pa.string()),
                ("source_file", pa.string()),
                ("source_line", pa.uint32()),
                ("group", pa.string()),
                ("text", pa.string()),
                ("words", pa.list_(pa.string())),
                ("n_chars", pa.uint32()),
                ("n_words", pa.uint32()),
            ]
            + [("label_" + t["name"], ty) for t, ty in zip(self.tasks, label_types)]
            + [(f, pa.float32()) for f in FEATURES]
        )
        self.q_schema = pa.schema(
            [
                ("dataset", pa.string()),
                ("source_file", pa.string()),
                ("source_line", pa.uint32()),
                ("reason", pa.string()),
                ("detail", pa.string()),
                ("raw", pa.string()),
            ]
        )
        self.writer = pq.ParquetWriter(os.path.join(out_dir, spec["dataset"] + ".parquet"), self.schema)
        self.q_writer = pq.ParquetWriter(os.path.join(out_dir, "quarantine.parquet"), self.q_schema)

    def code(self, label, token):
        """A label as one comparable, shared value (tags or labels joined)."""
        if label is None:
            return None
        if isinstance(label, float):
            return label
        key = "\x01".join(label) if isinstance(label, list) else label
        return self.codes.setdefault(key, key)

    def run(self, chunk_lines):
        q = Quarantine()
        rows = []
        with open(self.spec["input"], "rb") as f:
            for line_no, b in enumerate(f, start=1):
                if line_no == 1 and b.startswith(b"\xef\xbb\xbf"):
                    b = b[3:]
                b = b.rstrip(b"\r\n")
                try:
                    text = b.decode("utf-8")
                except UnicodeDecodeError as e:
                    self.read += 1
                    q.add(line_no, "invalid_utf8", str(e), b.decode("utf-8", "replace"))
                    continue
                if not text.strip():
                    continue
                self.read += 1
                r = parse_line(self.spec, self.tasks, line_no, text)
                if isinstance(r, tuple):
                    q.add(line_no, r[0], r[1], text)
                else:
                    rows.append(r)
                if len(rows) >= chunk_lines:
                    self.chunk(rows, q)
                    rows, q = [], Quarantine()
        self.chunk(rows, q)
        self.writer.close()
        self.q_writer.close()

    def chunk(self, rows, q):
        if not rows and not q.rows:
            return
        kept = self.clean_rows(rows, q) if rows else None
        if kept is not None and len(kept):
            self.writer.write_table(pa.Table.from_pandas(kept, schema=self.schema, preserve_index=False))
        if q.rows:
            q.rows.sort(key=lambda r: r[0])
            n = len(q.rows)
            for _, reason, _, _ in q.rows:
                self.dropped[reason] = self.dropped.get(reason, 0) + 1
            qt = pa.table(
                {
                    "dataset": [self.spec["dataset"]] * n,
                    "source_file": [self.spec["source_file"]] * n,
                    "source_line": pa.array([r[0] for r in q.rows], pa.uint32()),
                    "reason": [r[1] for r in q.rows],
                    "detail": [r[2] for r in q.rows],
                    "raw": [r[3] for r in q.rows],
                },
                schema=self.q_schema,
            )
            self.q_writer.write_table(qt)

    def clean_rows(self, rows, q):
        tasks, opts = self.tasks, self.opts
        df = pd.DataFrame(
            {
                "id": [r["id"] for r in rows],
                "line": np.array([r["line"] for r in rows], dtype=np.uint32),
                "group": pd.Series([r["group"] for r in rows], dtype=object),
                "raw_words": [r["words"] for r in rows],
            }
        )
        for i, t in enumerate(tasks):
            df["label_" + t["name"]] = pd.Series([r["labels"][i] for r in rows], dtype=object)

        # Clean every word: one row per raw word, cleaned column-wise.
        tok = df["raw_words"].explode()
        has_tok = tok.notna()
        raw_tok = tok[has_tok].astype(str)
        cleaned = clean_tokens(raw_tok, opts)
        non_empty = cleaned.str.len() > 0
        emptied = raw_tok[~non_empty]
        pos = raw_tok.groupby(level=0).cumcount()
        df["words"] = cleaned[non_empty].groupby(level=0).agg(list).reindex(df.index)
        df["words"] = df["words"].map(lambda w: w if isinstance(w, list) else [])
        df["n_emptied"] = (~non_empty).groupby(level=0).sum().reindex(df.index, fill_value=0)
        first_emptied = ~emptied.index.duplicated()
        df["emptied_token"] = emptied[first_emptied].reindex(df.index)
        df["emptied_at"] = pos[~non_empty][first_emptied].reindex(df.index)
        df["text"] = df["words"].str.join(" ")
        df["n_words"] = df["words"].str.len().astype(np.uint32)
        df["n_raw_words"] = df["raw_words"].str.len()
        df["n_chars"] = df["text"].str.len().astype(np.uint32)

        # The rules of rules.rs `check_rows`, first broken rule wins.
        reason = pd.Series(None, index=df.index, dtype=object)
        detail = pd.Series(None, index=df.index, dtype=object)

        def rule(cond, code, text_of):
            m = reason.isna() & cond
            if m.any():
                reason[m] = code
                detail[m] = text_of(df[m])

        present = {t["name"]: df["label_" + t["name"]].notna() for t in tasks}
        token_tasks = [t for t in tasks if t["token"]]
        for t in token_tasks:
            n_tags = df["label_" + t["name"]].map(lambda l: len(l) if isinstance(l, list) else -1)
            rule(
                present[t["name"]] & (n_tags != df["n_raw_words"]),
                "tag_count_mismatch",
                lambda d, t=t, n_tags=n_tags: (
                    f"task `{t['name']}`: " + n_tags[d.index].astype(str) + " tags for " + d["n_raw_words"].astype(str) + " words"
                ),
            )
        any_token = pd.Series(False, index=df.index)
        for t in token_tasks:
            any_token |= present[t["name"]]
        rule(
            any_token & (df["n_emptied"] > 0),
            "token_emptied",
            lambda d: "word `"
            + d["emptied_token"].astype(str)
            + "` at position "
            + d["emptied_at"].astype(int).astype(str)
            + " (0-based) is empty after cleaning; dropping it would misalign the token labels",
        )
        rule(df["n_words"] == 0, "empty", lambda d: "no text left after cleaning")
        if opts["min_chars"] > 1:
            m = opts["min_chars"]
            rule(df["n_chars"] < m, "too_short", lambda d: d["n_chars"].astype(str) + f" chars < min_chars = {m}")
        if opts.get("max_chars") is not None:
            m = opts["max_chars"]
            rule(df["n_chars"] > m, "too_long", lambda d: d["n_chars"].astype(str) + f" chars > max_chars = {m}")
        any_label = pd.Series(False, index=df.index)
        for p in present.values():
            any_label |= p
        names = ", ".join(t["name"] for t in tasks)
        rule(
            ~any_label,
            "no_labels",
            lambda d: "the dataset has no tasks" if not tasks else f"no label for any of: {names}",
        )

        # Duplicates, then repeated ids: sequential, against everything
        # kept so far (earlier chunks included).
        valid = reason.isna()
        if opts["dedup"]:
            texts = df.loc[valid, "text"]
            norm = texts.str.lower().str.replace(NON_ALNUM, "", regex=True)
            norm = norm.where(norm.str.len() > 0, "\x02" + texts)
            keys = "\x1f" + norm  # no source split: one file
            label_cols = [df.loc[valid, "label_" + t["name"]].tolist() for t in tasks]
            ids = df.loc[valid, "id"].tolist()
            for j, (idx, key, text) in enumerate(zip(texts.index, keys.tolist(), texts.tolist())):
                codes = tuple(self.code(col[j], t["token"]) for col, t in zip(label_cols, tasks))
                h = hash(key)
                first = self.seen.get(h)
                if first is None:
                    self.seen[h] = (ids[j], hash(text), codes)
                    continue
                kept_id, kept_text, kept_codes = first
                identical = codes == kept_codes
                compatible = all(a is None or b is None or a == b for a, b in zip(codes, kept_codes))
                if compatible:
                    one_sided = "".join(
                        f" `{t['name']}`" for t, a, b in zip(tasks, codes, kept_codes) if (a is None) != (b is None)
                    )
                    note = "" if identical else f" (labels agree; only one of the two rows has{one_sided})"
                    if hash(text) == kept_text:
                        reason[idx], detail[idx] = "duplicate", f"duplicate of {kept_id}{note}"
                    else:
                        reason[idx], detail[idx] = "near_duplicate", f"near-duplicate of {kept_id}{note}"
                    continue
                parts = []
                for t, a, b in zip(tasks, kept_codes, codes):
                    if a is None or b is None or a == b:
                        continue
                    ka, kb = self.decode(a, t), self.decode(b, t)
                    parts.append(f"task `{t['name']}` disagrees: {display(ka, t)} vs {display(kb, t)}")
                    self.conflicts.append(
                        {"kept_id": kept_id, "dropped_id": ids[j], "task": t["name"], "kept_label": ka, "dropped_label": kb}
                    )
                reason[idx] = "conflicting_duplicate"
                detail[idx] = f"near-duplicate of {kept_id} with other labels: " + "; ".join(parts)
        src = self.spec["source_file"]
        for idx, row_id, line in zip(df.index[reason.isna()], df.loc[reason.isna(), "id"], df.loc[reason.isna(), "line"]):
            first = self.ids.setdefault(row_id, int(line))
            if first != line:
                reason[idx], detail[idx] = "duplicate_id", f"id already used at {src}:{first}"

        dropped = reason.notna()
        raws = [r["raw"] for r in rows]
        for idx in np.flatnonzero(dropped.to_numpy()):
            q.add(int(df.at[idx, "line"]), reason.iat[idx], detail.iat[idx], raws[idx])

        kept = df[~dropped]
        self.kept += len(kept)
        for t in tasks:
            self.labelled[t["name"]] += int(kept["label_" + t["name"]].notna().sum())
        return self.output(kept)

    def decode(self, code, task):
        if code is None or isinstance(code, float):
            return code
        if task["token"] or task.get("kind") == "multilabel":
            return code.split("\x01") if code else []
        return code

    def output(self, d):
        text = d["text"]
        chars = d["n_chars"].astype(np.float32)
        words = d["n_words"].astype(np.float32)

        def count(p):
            return text.str.count(p).astype(np.float32)

        out = pd.DataFrame(
            {
                "id": d["id"],
                "dataset": self.spec["dataset"],
                "source_split": None,
                "source_file": self.spec["source_file"],
                "source_line": d["line"],
                "group": d["group"],
                "text": text,
                "words": d["words"],
                "n_chars": d["n_chars"],
                "n_words": d["n_words"],
            }
        )
        for t in self.tasks:
            out["label_" + t["name"]] = d["label_" + t["name"]]
        def per(num, den):
            # Kept rows always have a word; the guard mirrors features.rs.
            return (num / den.where(den > 0, np.float32(1.0))).where(den > 0, np.float32(0.0)).astype(np.float32)

        out[FEATURES[0]] = chars
        out[FEATURES[1]] = words
        out[FEATURES[2]] = per(chars - words + np.float32(1.0), words)
        out[FEATURES[3]] = per(count(self.upper), chars)
        out[FEATURES[4]] = per(count(r"\d"), chars)
        out[FEATURES[5]] = per(count(self.punct), chars)
        out[FEATURES[6]] = count(FEAT_URLS)
        out[FEATURES[7]] = count(FEAT_MENTIONS)
        out[FEATURES[8]] = count(FEAT_HASHTAGS)
        return out

    def report(self):
        return {
            self.spec["dataset"]: {
                "read": self.read,
                "kept": self.kept,
                "dropped": dict(sorted(self.dropped.items())),
                "kept_per_split": {"all": self.kept} if self.kept else {},
                "labelled": self.labelled,
                "conflicts": self.conflicts,
            }
        }


def display(label, task=None):
    if label is None:
        return "null"
    if isinstance(label, float):
        return f"`{rust_float(label)}`"
    if isinstance(label, list):
        if task is not None and task.get("kind") == "multilabel":
            return "[" + ", ".join(label) + "]"
        return "`" + " ".join(label) + "`"
    return f"`{label}`"


def rust_float(x):
    """A float as Rust's `{}` writes it: integers without `.0`."""
    return str(int(x)) if x.is_integer() and abs(x) < 1e16 else repr(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--chunk-lines", type=int, default=100_000)
    args = ap.parse_args()
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    c = Cleaner(spec, args.out)
    c.run(args.chunk_lines)
    report = c.report()
    with open(os.path.join(args.out, "report.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    ds = report[spec["dataset"]]
    dropped = sum(ds["dropped"].values())
    if ds["read"] != ds["kept"] + dropped:
        print(f"accounting is off: read {ds['read']} != kept {ds['kept']} + dropped {dropped}", file=sys.stderr)
        return 1
    reasons = ", ".join(f"{k} {v}" for k, v in ds["dropped"].items())
    print(f"  {spec['dataset']}: read {ds['read']}, kept {ds['kept']}, dropped {dropped} ({reasons})")
    print(json.dumps({"read": ds["read"], "kept": ds["kept"], "dropped": ds["dropped"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
