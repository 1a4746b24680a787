#!/usr/bin/env python3
"""The PyTorch peer of `mtl-train`'s bilstm encoder, for `cargo xtask bench train`.

It trains the same model on the same tokenize output with the same
hyperparameters, the way a PyTorch user would write it, and mirrors
crates/mtl-train/src/{trainer,sampling,batching,optim,score}.rs and
crates/mtl-model/src/{encoder/birnn,encoder/lstm,encoder/charcnn,heads/tagging,loss}.rs:

- model: embeddings N(0, 0.1); with `char_cnn`, each sub-token's word
  vector from the character CNN concatenated to its embedding; dropout; an
  `nn.LSTM` of `layers` bidirectional layers over packed sequences
  (dropout between layers); dropout; one `nn.Linear` per task on every
  sub-token. mtl's LSTM has one bias per gate, PyTorch's two (`bias_ih` +
  `bias_hh`): `bias_hh` is set to zero and frozen, so the parameters are
  the same (and counted the same).
  Packing gives what mtl's mask does: the reverse direction starts at each
  row's last real sub-token.
- character CNN (encoder/charcnn.rs): character embeddings N(0, 0.1)
  (id 0 included: mtl pads words with it, so it is a learned word-boundary
  marker, not a zero vector), each word padded with id 0 to `width - 1`
  on both sides, an `nn.Conv1d` of `filters` filters over `width`
  characters (PyTorch's default U(+-1/sqrt(width * char_dim)) is what mtl
  draws), windows without a real character masked out of the max pool,
  `tanh`, a word without characters all zeros. It runs once per distinct
  word of a batch, as mtl's does, and every sub-token of a word (specials:
  the empty word) takes that word's vector.
- word dropout (batching.rs `WordDropout`): in a training batch each
  sub-token that is not one of the tokenizer's special tokens becomes the
  unknown token with probability `p`; its characters stay the word's own.
- loss: per task, cross-entropy averaged over the positions with a target
  (`-100` ignored; class weights as PyTorch's weighted mean), tasks with no
  such position in the batch left out, summed with the tasks' weights.
- batches: mtl's sampler. One pool per task (its rows), a task picked per
  step (proportional, temperature, uniform or annealed, with caps), the
  pool reshuffled when used up: shuffled, cut into runs of 32 batches'
  worth of rows, each run sorted by length (stable) and cut into batches,
  the batches shuffled. A batch is padded to its longest row and carries
  every target its rows have. Steps per epoch and in all as mtl counts
  them. The random draws come from numpy/torch generators seeded with the
  pipeline seed, so the exact rows of each batch differ from mtl's; the
  distribution of batch shapes is the same.
- optimizer: `torch.optim.AdamW` (betas 0.9/0.999, eps 1e-8, decoupled
  weight decay on every parameter, as mtl's), the rate set before each step
  to the base rate times mtl's `lr_factor` (linear warmup, then linear or
  cosine decay), `clip_grad_norm_` on the global norm (PyTorch divides by
  `norm + 1e-6`, mtl by `norm`).
- evaluation: on dev at the end of each epoch (batches of 64 in file
  order, argmax per sub-token, accuracy over the positions with a target,
  as crates/mtl-train/src/score.rs), the best dev mean's weights kept, and
  a checkpoint (model and optimizer state) written, as mtl does at each
  evaluation; with `patience`, training stops after that many
  evaluations in a row without a better mean.

Counted as mtl counts them: `tokens` = the unpadded sub-tokens of every
batch that took a step; `seconds` = the whole training loop, evaluations
and checkpoints included; `tokens_per_second` = tokens / seconds. Loading
the data and scoring test afterwards are outside it.

Usage: train_torch.py --spec SPEC.json --out DIR [--bundle MTL_MODEL_DIR]
Writes DIR/report.json (mtl's train report keys, plus `tokens`,
`test_score`, `step_seconds`, `eval_seconds`, `load_seconds`, `threads`,
`torch_version`) and DIR/model.pt (the best weights). With `--bundle`, it
trains nothing: it loads mtl-train's weights from that bundle into this
model and writes their dev and test accuracy to DIR/bundle.json, which
must equal mtl-eval's if the two models compute the same function.
"""

import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

IGNORE_INDEX = -100
# Subtracted from a character window without a real character, so that it
# never wins the max pool (charcnn.rs `EMPTY_WINDOW`).
EMPTY_WINDOW = 1e4


class Split:
    """One tokenize table: per row its input ids, and per task its targets
    (None = the row does not carry the task) with the number of positions
    that have one. With `chars`, also each row's word of every sub-token as
    an index into `char_table` (the split's distinct character sequences,
    padded with 0; row 0 is the empty word that specials point to) and each
    entry's number of characters, `char_lens`."""

    def __init__(self, path, tasks, chars):
        names = [t["name"] for t in tasks]
        columns = ["input_ids"] + ["y_" + n for n in names]
        if chars:
            columns += ["word_ids", "char_ids"]
        table = pq.read_table(path, columns=columns)
        self.ids = [torch.tensor(r, dtype=torch.long) for r in table.column("input_ids").to_pylist()]
        self.targets = {}
        self.scored = {}
        for n in names:
            col = table.column("y_" + n).to_pylist()
            self.targets[n] = [None if y is None else torch.tensor(y, dtype=torch.long) for y in col]
            self.scored[n] = [0 if y is None else sum(1 for v in y if v >= 0) for y in col]
        self.words = None
        self.char_table = None
        self.char_lens = None
        if chars:
            self._chars(path, table.column("word_ids").to_pylist(), table.column("char_ids").to_pylist())

    def _chars(self, path, word_ids, char_ids):
        distinct = {(): 0}
        self.words = []
        for row, (ws, cs) in enumerate(zip(word_ids, char_ids)):
            if len(ws) != len(self.ids[row]):
                sys.exit(f"{path}: row {row}: {len(ws)} word ids for {len(self.ids[row])} sub-tokens")
            of_word = [distinct.setdefault(tuple(c), len(distinct)) for c in cs]
            if any(w >= len(of_word) for w in ws):
                sys.exit(f"{path}: row {row}: a word id beyond its {len(of_word)} words of `char_ids`")
            self.words.append(torch.tensor([0 if w < 0 else of_word[w] for w in ws], dtype=torch.long))
        widest = max(1, max(len(c) for c in distinct))
        self.char_table = torch.zeros((len(distinct), widest), dtype=torch.long)
        self.char_lens = torch.zeros(len(distinct), dtype=torch.long)
        for chars, k in distinct.items():
            self.char_table[k, : len(chars)] = torch.tensor(chars, dtype=torch.long)
            self.char_lens[k] = len(chars)

    def __len__(self):
        return len(self.ids)

    def batch(self, rows, tasks=None):
        """Padded ids, lengths, the words of every position (None without
        characters) and, per task of `tasks` (default: every task), the
        targets with `-100` on padding and on rows without the task."""
        x = pad_sequence([self.ids[i] for i in rows], batch_first=True)
        lengths = torch.tensor([len(self.ids[i]) for i in rows], dtype=torch.long)
        words = None
        if self.words is not None:
            words = pad_sequence([self.words[i] for i in rows], batch_first=True)
        ys = {}
        for task in self.targets if tasks is None else tasks:
            per_row = self.targets[task]
            cols = [per_row[i] if per_row[i] is not None else torch.full((len(self.ids[i]),), IGNORE_INDEX) for i in rows]
            ys[task] = pad_sequence(cols, batch_first=True, padding_value=IGNORE_INDEX)
        return x, lengths, words, ys


class CharCnn(nn.Module):
    """crates/mtl-model/src/encoder/charcnn.rs: (W, C) character ids, padded
    with 0 after each word's characters, to (W, filters)."""

    def __init__(self, spec):
        super().__init__()
        # No `padding_idx`: mtl pads with id 0 and trains its embedding, a
        # word-boundary marker; zeros there change the function (about 10
        # points with mtl's trained EWT weights).
        self.embeddings = nn.Embedding(spec["vocab_size"], spec["char_dim"])
        nn.init.normal_(self.embeddings.weight, 0.0, 0.1)
        self.conv = nn.Conv1d(spec["char_dim"], spec["filters"], spec["width"])
        self.width = spec["width"]

    def forward(self, words):
        w = self.width
        # Padded with the id, not with zero vectors (Conv1d's `padding`), so
        # that the windows at a word's edges see the learned marker.
        padded = nn.functional.pad(words, (w - 1, w - 1), value=0) if w > 1 else words
        h = self.conv(self.embeddings(padded).transpose(1, 2))
        # A window with a real character: the others never win the max, so
        # padding to the batch's longest word changes no word's vector.
        real = (padded != 0).to(h.dtype).unsqueeze(1)
        valid = nn.functional.max_pool1d(real, w, stride=1) if w > 1 else real
        h = h + (valid - 1.0) * EMPTY_WINDOW
        # `tanh` after the max, as mtl (it is increasing: the same result);
        # a word without characters (specials) gets zeros.
        return h.amax(dim=2).tanh() * valid.amax(dim=2)


class BiLstmTagger(nn.Module):
    def __init__(self, enc, tasks):
        super().__init__()
        self.embeddings = nn.Embedding(enc["vocab_size"], enc["embedding_dim"])
        nn.init.normal_(self.embeddings.weight, 0.0, 0.1)
        self.char_cnn = CharCnn(enc["char_cnn"]) if enc.get("char_cnn") else None
        self.dropout = nn.Dropout(enc["dropout"])
        width_in = enc["embedding_dim"] + (enc["char_cnn"]["filters"] if self.char_cnn else 0)
        self.lstm = nn.LSTM(
            width_in,
            enc["hidden_dim"],
            num_layers=enc["layers"],
            bidirectional=True,
            batch_first=True,
            dropout=enc["dropout"] if enc["layers"] > 1 else 0.0,
        )
        # One bias per gate, as mtl: the second is zero and stays zero.
        for name, p in self.lstm.named_parameters():
            if name.startswith("bias_hh"):
                with torch.no_grad():
                    p.zero_()
                p.requires_grad_(False)
        width = 2 * enc["hidden_dim"]
        self.heads = nn.ModuleDict({t["name"]: nn.Linear(width, t["num_labels"]) for t in tasks})

    def encoder_parameters(self):
        chars = [*self.char_cnn.parameters()] if self.char_cnn else []
        return [p for p in [*self.embeddings.parameters(), *chars, *self.lstm.parameters()] if p.requires_grad]

    def head_parameters(self):
        return [p for p in self.heads.parameters() if p.requires_grad]

    def char_features(self, words, split):
        """Each position's word vector, the CNN run once per distinct word
        of the batch (the empty word included) and cut to the batch's
        longest word, as mtl's `Batch::with_chars`."""
        distinct, position = torch.unique(words, return_inverse=True)
        widest = max(1, int(split.char_lens[distinct].max()))
        return self.char_cnn(split.char_table[distinct, :widest])[position]

    def forward(self, ids, lengths, words=None, split=None):
        x = self.embeddings(ids)
        if self.char_cnn is not None:
            x = torch.cat([x, self.char_features(words, split)], dim=2)
        x = self.dropout(x)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        out = self.dropout(out)
        return {name: head(out) for name, head in self.heads.items()}


class Sampler:
    """crates/mtl-train/src/sampling.rs."""

    def __init__(self, lengths, carries, tasks, tc, rng):
        names = [t["name"] for t in tasks]
        n = len(lengths)
        self.rng = rng
        self.lengths = np.asarray(lengths)
        self.pools = [np.array([i for i in range(n) if carries[name][i]], dtype=np.int64) for name in names]
        self.caps = [tc["task_caps"].get(name) for name in names]
        carrying = sum(1 for i in range(n) if any(carries[name][i] for name in names))
        full = sum(len(p) for p in self.pools)
        usable = sum(self.usable(k) for k in range(len(names)))
        rows = 0.0 if full == 0 else carrying * usable / full
        self.batch_size = max(1, tc["batch_size"])
        self.bucket_batches = tc["bucket_batches"]
        self.strategy = tc["sampling"]
        self.temperature = tc["temperature"]
        self.epochs = max(1, tc["epochs"])
        self.steps_per_epoch = max(1, math.ceil(rows / self.batch_size))
        self.cursors = [None] * len(names)
        self.drawn = [0] * len(names)
        self.next_task = 0
        self.epoch = 1

    def usable(self, k):
        n = len(self.pools[k])
        return n if self.caps[k] is None else min(self.caps[k], n)

    def eligible(self, k):
        return self.usable(k) > 0 and (self.caps[k] is None or self.drawn[k] < self.caps[k])

    def start_epoch(self, epoch):
        self.epoch = epoch
        self.drawn = [0] * len(self.pools)

    def current_temperature(self):
        if self.strategy in ("proportional", "uniform"):
            return 1.0
        if self.strategy == "temperature":
            return self.temperature
        if self.epochs <= 1:
            return 1.0
        progress = min(1.0, (self.epoch - 1) / (self.epochs - 1))
        return 1.0 + (self.temperature - 1.0) * progress

    def weight(self, n):
        if n == 0:
            return 0.0
        if self.strategy == "uniform":
            return 1.0
        return float(n) ** (1.0 / self.current_temperature())

    def pick(self):
        k_all = range(len(self.pools))
        if self.strategy == "uniform":
            for i in k_all:
                k = (self.next_task + i) % len(self.pools)
                if self.eligible(k):
                    self.next_task = (k + 1) % len(self.pools)
                    return k
            return None
        w = [self.weight(self.usable(k)) if self.eligible(k) else 0.0 for k in k_all]
        total = sum(w)
        if total <= 0.0:
            return None
        x = self.rng.random() * total
        last = max(k for k in k_all if w[k] > 0.0)
        for k, wk in enumerate(w):
            if wk > 0.0 and (x < wk or k == last):
                return k
            x -= wk
        return last

    def reshuffle(self, k):
        pool = self.pools[k].copy()
        self.rng.shuffle(pool)
        bs = self.batch_size
        batches = []
        for start in range(0, len(pool), bs * self.bucket_batches):
            bucket = pool[start : start + bs * self.bucket_batches]
            bucket = bucket[np.argsort(self.lengths[bucket], kind="stable")]
            batches.extend(bucket[i : i + bs] for i in range(0, len(bucket), bs))
        order = self.rng.permutation(len(batches))
        self.pools[k] = np.concatenate([batches[i] for i in order])

    def next_batch(self):
        k = self.pick()
        if k is None:
            return None
        if self.cursors[k] is None or self.cursors[k] >= len(self.pools[k]):
            self.reshuffle(k)
            self.cursors[k] = 0
        start = self.cursors[k]
        take = min(self.batch_size, len(self.pools[k]) - start)
        if self.caps[k] is not None:
            take = min(take, self.caps[k] - self.drawn[k])
        rows = self.pools[k][start : start + take].tolist()
        self.cursors[k] = start + take
        self.drawn[k] += take
        return k, rows


def lr_factor(schedule, warmup, step, total):
    """crates/mtl-train/src/optim.rs `lr_factor`."""
    total = max(total, 1)
    # Rust's `round` takes halves away from zero, Python's to even.
    warm = min(max(math.floor(warmup * total + 0.5), 1), total) if warmup > 0.0 else 0
    if step < warm:
        return (step + 1) / warm
    rest = float(max(total - warm, 1))
    progress = min(max((step - warm) / rest, 0.0), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0 - progress


def word_dropout(x, lengths, wd):
    """crates/mtl-train/src/batching.rs `WordDropout::apply` over a padded
    batch: each real position whose id is not a special token becomes
    `unk` with probability `p`."""
    real = torch.arange(x.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    drop = (torch.rand(x.shape) < wd["p"]) & real & ~torch.isin(x, wd["specials"])
    return torch.where(drop, torch.full_like(x, wd["unk"]), x)


def accuracy(model, split, batch_size):
    """crates/mtl-train/src/score.rs for tagging: per task, accuracy over
    the positions with a target, in batches taken in file order."""
    model.eval()
    hits = {t: 0 for t in split.targets}
    seen = {t: 0 for t in split.targets}
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            rows = list(range(start, min(start + batch_size, len(split))))
            x, lengths, words, ys = split.batch(rows)
            out = model(x, lengths, words, split)
            for task, y in ys.items():
                mask = y >= 0
                hits[task] += int(((out[task].argmax(-1) == y) & mask).sum())
                seen[task] += int(mask.sum())
    model.train()
    return {t: hits[t] / seen[t] for t in split.targets if seen[t] > 0}


def save_atomic(obj, path):
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def read_safetensors(path):
    """Every tensor of a safetensors file (F32 only: what mtl writes)."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            sys.exit(f"{path}: `{name}` is {t['dtype']}, not F32")
        start, end = t["data_offsets"]
        data = np.frombuffer(raw, dtype="<f4", count=(end - start) // 4, offset=8 + n + start)
        out[name] = torch.from_numpy(data.reshape(t["shape"]).copy())
    return out


def load_mtl_weights(model, enc, path):
    """mtl-train's weights (`model.safetensors` of its bundle) into this
    model, so that the two can be compared as functions. mtl keeps matrices
    as (in, out) and the LSTM gates as [input, forget, output, cell];
    PyTorch as (out, in) and [input, forget, cell, output]. A name or shape
    that does not fit is an error: it means the models differ."""
    w = read_safetensors(path)
    h = enc["hidden_dim"]

    def gates(t):
        return torch.cat([t[: 2 * h], t[3 * h :], t[2 * h : 3 * h]], 0)

    pairs = [(model.embeddings.weight, w.pop("encoder.embeddings"))]
    if model.char_cnn is not None:
        c = enc["char_cnn"]
        conv = w.pop("encoder.char_cnn.weight").reshape(c["width"], c["char_dim"], c["filters"])
        pairs += [
            (model.char_cnn.embeddings.weight, w.pop("encoder.char_cnn.embeddings")),
            (model.char_cnn.conv.weight, conv.permute(2, 1, 0)),
            (model.char_cnn.conv.bias, w.pop("encoder.char_cnn.bias")),
        ]
    for layer in range(enc["layers"]):
        for direction, suffix in (("fwd", ""), ("bwd", "_reverse")):
            prefix = f"encoder.lstm{layer}_{direction}."
            pairs += [
                (getattr(model.lstm, f"weight_ih_l{layer}{suffix}"), gates(w.pop(prefix + "w_ih").T)),
                (getattr(model.lstm, f"weight_hh_l{layer}{suffix}"), gates(w.pop(prefix + "w_hh").T)),
                (getattr(model.lstm, f"bias_ih_l{layer}{suffix}"), gates(w.pop(prefix + "bias"))),
            ]
    for name, head in model.heads.items():
        pairs += [(head.weight, w.pop(f"heads.{name}.weight").T), (head.bias, w.pop(f"heads.{name}.bias"))]
    if w:
        sys.exit(f"{path}: weights this model does not have: {', '.join(sorted(w))}")
    with torch.no_grad():
        for p, t in pairs:
            if p.shape != t.shape:
                sys.exit(f"{path}: a weight of shape {tuple(t.shape)} for a parameter of {tuple(p.shape)}")
            p.copy_(t)


def score_bundle(spec, bundle, out):
    """`--bundle`: no training; mtl-train's weights scored on dev and test
    (`bundle.json`). Equal accuracies to mtl-eval's mean the two models
    are the same function, not only the same number of parameters."""
    tasks = spec["tasks"]
    chars = bool(spec["encoder"].get("char_cnn"))
    model = BiLstmTagger(spec["encoder"], tasks)
    load_mtl_weights(model, spec["encoder"], os.path.join(bundle, "model.safetensors"))
    result = {"parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}
    for split in ("dev", "test"):
        data = Split(spec["data"][split], tasks, chars)
        result[split + "_score"] = accuracy(model, data, spec["eval_batch_size"]) if len(data) else {}
    with open(os.path.join(out, "bundle.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--bundle", help="score mtl-train's bundle in this folder instead of training")
    args = ap.parse_args()
    with open(args.spec) as f:
        spec = json.load(f)
    if args.bundle:
        torch.set_num_threads(spec["threads"])
        score_bundle(spec, args.bundle, args.out)
        return
    tc = spec["train"]
    tasks = spec["tasks"]
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    rng = np.random.default_rng(spec["seed"])

    chars = bool(spec["encoder"].get("char_cnn"))
    wd = tc.get("word_dropout")
    if wd:
        wd = {**wd, "specials": torch.tensor(wd["specials"], dtype=torch.long)}
    patience = tc.get("patience")

    t_load = time.perf_counter()
    train = Split(spec["data"]["train"], tasks, chars)
    dev = Split(spec["data"]["dev"], tasks, chars)
    load_seconds = time.perf_counter() - t_load

    model = BiLstmTagger(spec["encoder"], tasks)
    model.train()
    base_head = tc["learning_rate"]
    base_encoder = tc["encoder_learning_rate"] if tc["encoder_learning_rate"] is not None else base_head
    opt = torch.optim.AdamW(
        [
            {"params": model.encoder_parameters(), "lr": base_encoder},
            {"params": model.head_parameters(), "lr": base_head},
        ],
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=tc["weight_decay"],
    )
    bases = [base_encoder, base_head]
    trainable = [p for p in model.parameters() if p.requires_grad]
    class_weights = {
        t["name"]: torch.tensor(t["class_weights"], dtype=torch.float32) if t["class_weights"] else None
        for t in tasks
    }
    task_weight = {t["name"]: t["weight"] for t in tasks}

    carries = {t: [y is not None for y in ys] for t, ys in train.targets.items()}
    sampler = Sampler([len(x) for x in train.ids], carries, tasks, tc, rng)
    spe = sampler.steps_per_epoch
    total_steps = spe * tc["epochs"]
    if tc["max_steps"] is not None:
        total_steps = min(total_steps, tc["max_steps"])
    total_steps = max(total_steps, 1)

    step, epoch, in_epoch = 0, 1, 0
    tokens = 0
    first_loss = None
    loss_sum, loss_steps, last_epoch_loss = 0.0, 0, float("nan")
    evaluations = 0
    since_best = 0
    stopped_early = False
    best = None
    best_state = None
    step_seconds = 0.0
    eval_seconds = 0.0
    checkpoint = os.path.join(args.out, "checkpoint.pt")

    started = time.perf_counter()
    while step < total_steps and not stopped_early:
        if in_epoch == 0:
            sampler.start_epoch(epoch)
        drawn = sampler.next_batch()
        stepped = drawn is not None
        epoch_done = not stepped
        if drawn is not None:
            t_step = time.perf_counter()
            _, rows = drawn
            factor = lr_factor(tc["schedule"], tc["warmup"], step, total_steps)
            for group, base in zip(opt.param_groups, bases):
                group["lr"] = base * factor
            # Only the tasks with a position to learn from in these rows:
            # the others add no loss, as in mtl.
            learn = [t for t in train.targets if any(train.scored[t][i] for i in rows)]
            x, lengths, words, ys = train.batch(rows, learn)
            if ys:
                if wd:
                    x = word_dropout(x, lengths, wd)
                out = model(x, lengths, words, train)
                loss = None
                for task, y in ys.items():
                    logits = out[task]
                    part = nn.functional.cross_entropy(
                        logits.reshape(-1, logits.shape[-1]),
                        y.reshape(-1),
                        weight=class_weights[task],
                        ignore_index=IGNORE_INDEX,
                    )
                    part = part * task_weight[task]
                    loss = part if loss is None else loss + part
                objective = loss.item()
                if not math.isfinite(objective):
                    sys.exit(f"step {step}: the weighted loss is {objective}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if tc["grad_clip"] is not None:
                    nn.utils.clip_grad_norm_(trainable, tc["grad_clip"], error_if_nonfinite=True)
                opt.step()
                if first_loss is None:
                    first_loss = objective
                loss_sum += objective
                loss_steps += 1
                tokens += int(lengths.sum())
            step_seconds += time.perf_counter() - t_step
            step += 1
            in_epoch += 1
            epoch_done = epoch_done or in_epoch >= spe
        elif in_epoch == 0:
            sys.exit(f"no task can be sampled in epoch {epoch}")
        epoch_done = epoch_done or step >= total_steps
        this_epoch = epoch
        if epoch_done:
            last_epoch_loss = loss_sum / max(loss_steps, 1)
            loss_sum, loss_steps = 0.0, 0
            epoch += 1
            in_epoch = 0
        if not epoch_done:
            continue
        t_eval = time.perf_counter()
        scores = accuracy(model, dev, spec["eval_batch_size"])
        mean = sum(scores.values()) / max(len(scores), 1)
        evaluations += 1
        better = best is None or mean > best["mean"]
        if better:
            best_state = copy.deepcopy(model.state_dict())
            best = {"mean": mean, "step": step, "epoch": this_epoch, "scores": scores}
            since_best = 0
        else:
            since_best += 1
        stopped_early = patience is not None and since_best >= patience
        save_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step}, checkpoint)
        eval_seconds += time.perf_counter() - t_eval
        print(
            f"  epoch {this_epoch:>3}  step {step:>5}/{total_steps}  loss {last_epoch_loss:.4f}  dev "
            + ", ".join(f"{t} accuracy {a:.3f}" for t, a in scores.items())
            + ("  *" if better else "")
            + f"  {tokens / max(time.perf_counter() - started, 1e-9):.0f} tok/s",
            file=sys.stderr,
            flush=True,
        )
        if stopped_early:
            print(f"  stopping early: no better dev average in {since_best} evaluations", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started

    if best is None:
        sys.exit("no training step ran")
    model.load_state_dict(best_state)
    test = Split(spec["data"]["test"], tasks, chars)
    test_score = accuracy(model, test, spec["eval_batch_size"]) if len(test) else {}
    save_atomic(model.state_dict(), os.path.join(args.out, "model.pt"))
    os.remove(checkpoint)
    report = {
        "parameters": sum(p.numel() for p in trainable),
        "steps": step,
        "epochs": epoch - 1 if in_epoch == 0 else epoch,
        "steps_per_epoch": spe,
        "best_epoch": best["epoch"],
        "best_step": best["step"],
        "best_dev_score": best["scores"],
        "best_dev_mean": best["mean"],
        "evaluations": evaluations,
        "stopped_early": stopped_early,
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_second": tokens / max(seconds, 1e-9),
        "first_loss": first_loss,
        "last_epoch_loss": last_epoch_loss,
        "test_score": test_score,
        "step_seconds": step_seconds,
        "eval_seconds": eval_seconds,
        "load_seconds": load_seconds,
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }
    tmp = os.path.join(args.out, "report.json.tmp")
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
    os.replace(tmp, os.path.join(args.out, "report.json"))
    print(json.dumps({k: report[k] for k in ("steps", "tokens", "seconds", "tokens_per_second")}))


if __name__ == "__main__":
    main()
