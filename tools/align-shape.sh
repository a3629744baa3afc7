#!/usr/bin/env bash
# npm run model:align-shape: builds models/align-base-shape (or $OUT), a model folder in kakaobrain/align-base's
# exact shape with random weights (tools/align_shape.py), in about 3 minutes on 2 cores; ~650 MB, git-ignored.
# Needs Debian's PyTorch, torchvision and ONNX only (no transformers, no network):
#   apt-get install python3-torch python3-torchvision python3-onnx
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
OUT=${OUT:-models/align-base-shape}
if ! "$PY" -c 'import torch, torchvision, onnx' 2>/dev/null; then
  echo "PyTorch, torchvision and ONNX for $PY are missing: apt-get install python3-torch python3-torchvision python3-onnx" >&2
  exit 1
fi
# written to a temporary sibling and renamed, so an interrupted build never leaves a folder that looks complete
rm -rf "$OUT.partial"
"$PY" tools/align_shape.py --out "$OUT.partial" "$@"
rm -rf "$OUT"
mv "$OUT.partial" "$OUT"
echo "$OUT written; npm test -- test/ml checks its ONNX Runtime parity, npm run bench -- --sections align-base measures it"
