#!/usr/bin/env bash
# The GPU check of the full-size folder, for a GPU host (the device tool runs it with OUT set; results go to $OUT/log.txt).
#   bash tools/device-check-align.sh
# It adapts to what the host has, and says what it skipped and why:
#   1. what is there: GPU, driver, Node, Python packages, CUDA/cuDNN libraries, an onnxruntime CUDA provider;
#   2. the full-size folder: models/align-base-shape if present, else built with tools/align_shape.py (torch + torchvision);
#   3. ONNX Runtime (Python) on CUDA, when onnxruntime with CUDAExecutionProvider is installed: parity with its CPU
#      provider within 1e-3 on reference.json's inputs, and vision images/s at batch 8 and 32;
#   4. the project's encoder on CUDA (scripts/gpu-check.ts), when node_modules and ORT_NODE_PREFIX
#      (scripts/install-cuda-provider.sh) are there: parity with the CPU, images/s at 8 and 32, and the ingest rate.
#   5. when neither ONNX Runtime is there, PyTorch's CUDA rate on the same architecture, for scale only.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}
MODEL=${MODEL:-models/align-base-shape}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
{
  echo "== host"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -3
  nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*'
  nproc; node --version 2>&1; "$PY" --version 2>&1
  "$PY" - <<'PY'
import importlib
for m in ("torch", "torchvision", "onnx", "onnxruntime", "numpy", "PIL"):
    try:
        mod = importlib.import_module(m)
        extra = ""
        if m == "torch": extra = f" cuda={mod.cuda.is_available()} cuda_version={mod.version.cuda}"
        if m == "onnxruntime": extra = f" providers={mod.get_available_providers()}"
        print(m, getattr(mod, "__version__", "?"), extra)
    except Exception as e:
        print(m, "MISSING", type(e).__name__)
PY
  echo "cuda/cudnn libraries on the loader path:"; ldconfig -p 2>/dev/null | grep -oE 'lib(cudart|cublas|cublasLt|cudnn|curand|cufft)\.so\.[0-9]+' | sort -u | tr '\n' ' '; echo
  echo "onnxruntime CUDA providers on disk:"; timeout 20 find / -xdev -name 'libonnxruntime_providers_cuda.so*' 2>/dev/null | head -5
  echo "node_modules: $([ -d node_modules/onnxruntime-node ] && echo present || echo absent); ORT_NODE_PREFIX=${ORT_NODE_PREFIX:-unset}"

  echo "== full-size folder"
  if [ ! -f "$MODEL/vision.onnx" ]; then
    if "$PY" -c 'import torch, torchvision, numpy, PIL' 2>/dev/null; then
      time "$PY" tools/align_shape.py --out "$MODEL"
    else
      echo "SKIPPED: $MODEL is absent and $PY has no torch + torchvision to build it"
    fi
  fi
  ls -la "$MODEL" 2>&1 | head -8

  echo "== ONNX Runtime (Python) on CUDA"
  MODEL="$MODEL" "$PY" - <<'PY'
import json, os, time, sys
model = os.environ["MODEL"]
try:
    import numpy as np, onnxruntime as ort
except ImportError as e:
    print("SKIPPED: no onnxruntime for Python:", e); sys.exit(0)
if "CUDAExecutionProvider" not in ort.get_available_providers():
    print("SKIPPED: onnxruntime", ort.__version__, "has no CUDAExecutionProvider:", ort.get_available_providers()); sys.exit(0)
if not os.path.exists(f"{model}/vision.onnx"):
    print("SKIPPED: no", model); sys.exit(0)
ref = json.load(open(f"{model}/reference.json"))
res = {"onnxruntime": ort.__version__}
sess = {}
for name, prov in (("cpu", ["CPUExecutionProvider"]), ("cuda", ["CUDAExecutionProvider"])):
    t0 = time.time()
    sess[name] = (ort.InferenceSession(f"{model}/vision.onnx", providers=prov), ort.InferenceSession(f"{model}/text.onnx", providers=prov))
    res[f"{name} load s"] = round(time.time() - t0, 1)
    assert sess[name][0].get_providers()[0] == prov[0], sess[name][0].get_providers()
def outs(v, t):
    o = []
    for r in ref["texts"]:
        ids = np.array([r["input_ids"]], dtype=np.int64)
        o.append(t.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})[0][0])
    for r in ref["images"]:
        o.append(v.run(None, {"pixel_values": np.array(r["pixel_values"], dtype=np.float32).reshape(1, 3, 289, 289)})[0][0])
    return o
a, b = outs(*sess["cpu"]), outs(*sess["cuda"])
res["max |cuda - cpu|"] = float(max(np.abs(x - y).max() for x, y in zip(a, b)))
res["min cosine"] = float(min(np.dot(x, y) / np.linalg.norm(x) / np.linalg.norm(y) for x, y in zip(a, b)))
res["parity ok (1e-3)"] = res["max |cuda - cpu|"] <= 1e-3
v = sess["cuda"][0]
for batch in (8, 32):
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, 289, 289)).astype(np.float32)
    for _ in range(3): v.run(None, {"pixel_values": x})
    n, t0 = 0, time.time()
    while time.time() - t0 < 3 or n < 3: v.run(None, {"pixel_values": x}); n += 1
    res[f"vision images/s at batch {batch}"] = round(batch * n / (time.time() - t0), 1)
t = sess["cuda"][1]
ids = np.array([[101, 142, 238, 210, 142, 244, 102]] * 32, dtype=np.int64)
feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
for _ in range(3): t.run(None, feed)
n, t0 = 0, time.time()
while time.time() - t0 < 2: t.run(None, feed); n += 1
res["text texts/s at batch 32 (7 tokens)"] = round(32 * n / (time.time() - t0), 1)
print(json.dumps(res))
PY

  echo "== the project's encoder on CUDA (Node)"
  if [ ! -d node_modules/onnxruntime-node ]; then
    echo "SKIPPED: no node_modules here (npm ci first)"
  elif [ -z "${ORT_NODE_PREFIX:-}" ]; then
    echo "SKIPPED: ORT_NODE_PREFIX is unset (bash scripts/install-cuda-provider.sh, then ORT_NODE_PREFIX=.cache/ort-cuda)"
  else
    node --import tsx scripts/gpu-check.ts "$MODEL" cuda
  fi

  echo "== PyTorch on CUDA (same architecture, for scale only: not ONNX Runtime)"
  if "$PY" -c 'import torch, torchvision; assert torch.cuda.is_available()' 2>/dev/null; then
    "$PY" - <<'PY'
import sys, time, torch
sys.path.insert(0, "tools")
import align_shape as A
v = A.VisionTower().cuda().eval()
res = {}
with torch.no_grad():
    for batch in (8, 32):
        x = torch.rand(batch, 3, 289, 289, device="cuda") * 2 - 1
        for _ in range(3): v(x)
        torch.cuda.synchronize(); n, t0 = 0, time.time()
        while time.time() - t0 < 3 or n < 3: v(x); n += 1
        torch.cuda.synchronize()
        res[f"torch fp32 vision images/s at batch {batch}"] = round(batch * n / (time.time() - t0), 1)
print(res)
PY
  else
    echo "SKIPPED: no torch with CUDA"
  fi
} > "$OUT/log.txt" 2>&1
cat "$OUT/log.txt" | tail -c 11000
