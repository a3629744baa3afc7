#!/usr/bin/env bash
# Run on a GPU machine with torch + transformers + onnxruntime (the device tool): exports random-init ALIGN
# (full align-base size, and a tiny one whose files come back for the Node parity test) and checks ONNX parity.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT/align-tiny"
{
  nvidia-smi -L
  python3 -c 'import torch, transformers, onnxruntime as o; print("torch", torch.__version__, "transformers", transformers.__version__, "ort", o.__version__, o.get_available_providers(), "cuda", torch.cuda.is_available())'
  echo "== tiny"; time python3 tools/export_align.py --random-init tiny --out "$OUT/align-tiny"
  echo "== full"; time python3 tools/export_align.py --random-init full --out /tmp/align-full
  ls -la /tmp/align-full "$OUT/align-tiny"
  python3 -c "import json; r=json.load(open(\"$OUT/align-tiny/reference.json\")); print(\"tiny image_embeds max\", [max(abs(x) for x in i[\"image_embeds\"]) for i in r[\"images\"]])"
  python3 - <<'PY'
import time, numpy as np, onnxruntime as ort, torch
for prov in (["CUDAExecutionProvider"], ["CPUExecutionProvider"]):
    if prov[0] not in ort.get_available_providers(): print("no", prov); continue
    s = ort.InferenceSession("/tmp/align-full/vision.onnx", providers=prov)
    x = np.random.rand(8, 3, 289, 289).astype(np.float32) * 2 - 1
    s.run(None, {"pixel_values": x}); t = time.time(); n = 3
    for _ in range(n): s.run(None, {"pixel_values": x})
    print(prov[0], "vision images/s at batch 8:", round(8 * n / (time.time() - t), 1))
PY
} > "$OUT/log.txt" 2>&1
tail -c 6000 "$OUT/log.txt"
