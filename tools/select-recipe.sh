#!/usr/bin/env bash
# The selection run of issue 15: every recipe trained for the same steps with the held-out styles held out,
# then measured on them (text → image, image → image across styles, arithmetic, everyday words).
# One JSON line per recipe lands in models/align-mini/selection-runs.jsonl, which the model card tabulates.
# On a busy machine run the recipes side by side, one thread each:
#   for r in v2 rich rich-pieces rich-64; do RECIPES=$r THREADS=1 bash tools/select-recipe.sh & done; wait
# Needs the corpus of `npm run model:train` (.cache/corpus), and for the -64 recipes the same at 64 px:
#   CORPUS_SIZE=64 node tools/prepare-corpus.mjs .cache/train-deps/node_modules .cache/corpus-64
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-1500}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
PY=${PYTHON:-/usr/bin/python3}
REPORT=${REPORT:-models/align-mini/selection-runs.jsonl}
RECIPES=${RECIPES:-"v2 rich rich-pieces rich-64 v2-64"}
for recipe in $RECIPES; do
  corpus=.cache/corpus
  case $recipe in
    v2) flags=(--captions v2) ;;
    rich) flags=(--captions rich) ;;
    rich-pieces) flags=(--captions rich --piece-dropout 0.2) ;;
    rich-64) flags=(--captions rich --size 64); corpus=.cache/corpus-64 ;;
    v2-64) flags=(--captions v2 --size 64); corpus=.cache/corpus-64 ;;
    *) echo "unknown recipe $recipe" >&2; exit 1 ;;
  esac
  "$PY" tools/align_mini/train.py --corpus "$corpus" --out "/tmp/align-mini-selection-$recipe" --steps "$STEPS" --seed "$SEED" --threads "$THREADS" \
    --eval-only-sets "${flags[@]}" --recipe "$recipe" --report "$REPORT"
done
