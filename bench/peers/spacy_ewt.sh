#!/usr/bin/env bash
# The spaCy peer of `cargo xtask bench quality --peers`: spaCy 3.8 trained
# on UD English EWT (train, selected on dev) and scored on test, with the
# gold tokenization, the way the mtl `ewt` pipeline is scored.
#
#   bench/peers/spacy_ewt.sh [--data-dir DIR] [--out FILE] [--max-epochs N]
#       [--max-steps N] [--max-minutes M] [--eval-frequency N] [--sentences N]
#       [--work DIR] [--venv DIR]
#
# What it does (everything under bench/out/, git-ignored):
#   1. a virtual environment bench/out/venv-spacy/ (python3 -m venv, or
#      $PYTHON) with `pip install 'spacy==3.8.*'` on first use;
#   2. `python -m spacy convert` of en_ewt-ud-{train,dev,test}.conllu
#      (--converter conllu, -n 10 sentences per doc) into .spacy files;
#   3. `python -m spacy init config --lang en --pipeline
#      tagger,morphologizer,parser --optimize efficiency` (CPU, no vectors);
#   4. `python -m spacy train` on train with dev for model selection, gold
#      tokenization (corpora.*.gold_preproc), within the budget given;
#   5. `python -m spacy evaluate --gold-preproc` of model-best on test, and
#      the dependency-label accuracy per word (the relation alone, head
#      not checked), into one JSON file (default bench/out/quality/spacy_ewt.json):
#      tag_acc = XPOS, pos_acc = UPOS, morph_acc = UFeats (the whole feature
#      bundle), dep_las, dep_uas, dep_label_acc, as fractions, and the wall
#      times of training and scoring.
#
# Budget: by default spaCy's own (the efficiency config: up to 20,000 steps,
# stopping after 1,600 without a better dev score); about 30 minutes of two
# CPU cores. --max-epochs / --max-steps set training.max_epochs /
# training.max_steps; --max-minutes stops training after M minutes (SIGINT;
# the best model so far is scored). --sentences N uses only the first N
# sentences of each file (a quick check of the script, not a result).
# --work (default bench/out/quality/spacy_ewt/) holds the corpus, config,
# models and spaCy's own score files; it is rebuilt on every run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA_DIR="${MTL_DATA_DIR:-$ROOT/../shared/datasets}"
OUT="$ROOT/bench/out/quality/spacy_ewt.json"
WORK="$ROOT/bench/out/quality/spacy_ewt"
VENV="$ROOT/bench/out/venv-spacy"
SPACY_PIN='spacy==3.8.*'
MAX_EPOCHS=""
MAX_STEPS=""
MAX_MINUTES=""
EVAL_FREQUENCY=""
SENTENCES=""

usage() {
    sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --data-dir) DATA_DIR="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --work) WORK="$2"; shift 2 ;;
        --venv) VENV="$2"; shift 2 ;;
        --max-epochs) MAX_EPOCHS="$2"; shift 2 ;;
        --max-steps) MAX_STEPS="$2"; shift 2 ;;
        --max-minutes) MAX_MINUTES="$2"; shift 2 ;;
        --eval-frequency) EVAL_FREQUENCY="$2"; shift 2 ;;
        --sentences) SENTENCES="$2"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "spacy_ewt.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

EWT="$DATA_DIR/ud_english_ewt"
for split in train dev test; do
    if [ ! -f "$EWT/en_ewt-ud-$split.conllu" ]; then
        echo "spacy_ewt.sh: $EWT/en_ewt-ud-$split.conllu not found (pass --data-dir or set MTL_DATA_DIR)" >&2
        exit 2
    fi
done

now() { date +%s.%N; }
# Seconds from $1 to now.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
say() { echo "spacy_ewt.sh: $*" >&2; }
started="$(now)"

# 1. The virtual environment.
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    say "creating $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
fi
if ! "$PY" -c 'import sys, spacy; sys.exit(0 if spacy.__version__.startswith("3.8.") else 1)' 2>/dev/null; then
    say "installing $SPACY_PIN into $VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check "$SPACY_PIN"
fi
SPACY_VERSION="$("$PY" -c 'import spacy; print(spacy.__version__)')"
say "spaCy $SPACY_VERSION"

# 2. The corpus: CoNLL-U to spaCy's DocBin, 10 sentences per doc.
rm -rf "$WORK"
mkdir -p "$WORK/conllu" "$WORK/corpus" "$(dirname "$OUT")"
for split in train dev test; do
    src="$EWT/en_ewt-ud-$split.conllu"
    dst="$WORK/conllu/$split.conllu"
    if [ -n "$SENTENCES" ]; then
        # Blank-line separated blocks: the first N sentences.
        awk -v n="$SENTENCES" 'BEGIN { RS = ""; ORS = "\n\n" } NR <= n' "$src" > "$dst"
    else
        cp "$src" "$dst"
    fi
    "$PY" -m spacy convert "$dst" "$WORK/corpus" --converter conllu -n 10 --file-type spacy >&2
done

# 3. The config.
"$PY" -m spacy init config "$WORK/config.cfg" --lang en \
    --pipeline tagger,morphologizer,parser --optimize efficiency --force >&2

# 4. Training, selected on dev, gold tokenization.
train_args=(
    "$WORK/config.cfg" --output "$WORK/model"
    --paths.train "$WORK/corpus/train.spacy"
    --paths.dev "$WORK/corpus/dev.spacy"
    --corpora.train.gold_preproc true
    --corpora.dev.gold_preproc true
)
[ -n "$MAX_EPOCHS" ] && train_args+=(--training.max_epochs "$MAX_EPOCHS")
[ -n "$MAX_STEPS" ] && train_args+=(--training.max_steps "$MAX_STEPS")
[ -n "$EVAL_FREQUENCY" ] && train_args+=(--training.eval_frequency "$EVAL_FREQUENCY")
TRAIN_COMMAND="python -m spacy train ${train_args[*]}"
say "training: $TRAIN_COMMAND"
train_started="$(now)"
status=0
if [ -n "$MAX_MINUTES" ]; then
    timeout --signal=INT "${MAX_MINUTES}m" "$PY" -m spacy train "${train_args[@]}" >&2 || status=$?
    # 124: the time budget ran out; spaCy saves model-last on the way out.
    if [ "$status" -eq 124 ]; then
        say "stopped after $MAX_MINUTES minutes; scoring the best model so far"
        status=0
    fi
else
    "$PY" -m spacy train "${train_args[@]}" >&2 || status=$?
fi
train_seconds="$(since "$train_started")"
if [ "$status" -ne 0 ]; then
    say "spacy train failed ($status)"
    exit "$status"
fi
MODEL="$WORK/model/model-best"
[ -d "$MODEL" ] || MODEL="$WORK/model/model-last"
[ -d "$MODEL" ] || { say "no trained model in $WORK/model"; exit 1; }

# 5. Scores on test, gold tokenization.
eval_started="$(now)"
"$PY" -m spacy evaluate "$MODEL" "$WORK/corpus/test.spacy" --gold-preproc \
    --output "$WORK/evaluate.json" >&2
# The relation alone, head not checked (what a deprel tagging task scores): the
# share of words whose predicted dep_ equals the gold one (spaCy calls
# the root `ROOT`, UD `root`; compared without case).
"$PY" - "$MODEL" "$WORK/corpus/test.spacy" "$WORK/dep_label.json" <<'PYTHON'
import json
import sys

import spacy
from spacy.tokens import Doc, DocBin

model, corpus, out = sys.argv[1:4]
nlp = spacy.load(model)
gold = list(DocBin().from_disk(corpus).get_docs(nlp.vocab))
inputs = [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in gold]
right = total = 0
for g, p in zip(gold, nlp.pipe(inputs)):
    for gt, pt in zip(g, p):
        total += 1
        right += gt.dep_.lower() == pt.dep_.lower()
with open(out, "w") as f:
    json.dump({"dep_label_acc": right / max(total, 1), "words": total}, f)
PYTHON
eval_seconds="$(since "$eval_started")"
seconds="$(since "$started")"

SPACY_VERSION="$SPACY_VERSION" SPACY_PIN="$SPACY_PIN" SENTENCES="$SENTENCES" \
MAX_EPOCHS="$MAX_EPOCHS" MAX_STEPS="$MAX_STEPS" MAX_MINUTES="$MAX_MINUTES" \
MODEL="$MODEL" TRAIN_COMMAND="$TRAIN_COMMAND" TRAIN_SECONDS="$train_seconds" \
EVAL_SECONDS="$eval_seconds" SECONDS_TOTAL="$seconds" \
"$PY" - "$WORK" "$OUT" <<'PYTHON'
import json
import os
import sys

work, out = sys.argv[1:3]
env = os.environ


def number(name, kind):
    return kind(env[name]) if env.get(name) else None


scores = json.load(open(f"{work}/evaluate.json"))
extra = json.load(open(f"{work}/dep_label.json"))
keys = ["tag_acc", "pos_acc", "morph_acc", "dep_uas", "dep_las", "sents_f", "token_acc"]
report = {
    "tool": "spaCy",
    "version": env["SPACY_VERSION"],
    "pin": env["SPACY_PIN"],
    "pipeline": "tagger,morphologizer,parser",
    "optimize": "efficiency",
    "gold_tokenization": True,
    "docs_of_sentences": 10,
    "sentences": number("SENTENCES", int),
    "max_epochs": number("MAX_EPOCHS", int),
    "max_steps": number("MAX_STEPS", int),
    "max_minutes": number("MAX_MINUTES", float),
    "model": env["MODEL"],
    "train_command": env["TRAIN_COMMAND"],
    "scores": {k: scores[k] for k in keys if isinstance(scores.get(k), (int, float))},
    "test_words": extra["words"],
    "train_seconds": float(env["TRAIN_SECONDS"]),
    "eval_seconds": float(env["EVAL_SECONDS"]),
    "seconds": float(env["SECONDS_TOTAL"]),
}
report["scores"]["dep_label_acc"] = extra["dep_label_acc"]
with open(out, "w") as f:
    json.dump(report, f, indent=2)
    f.write("\n")
PYTHON
say "wrote $OUT"
