"""int8 dynamic quantization of a model folder's text tower, with nothing but the `onnx` package.

    /usr/bin/python3 tools/quantize_int8.py models/align-base-shape models/align-base-shape-int8

onnxruntime's own quantize_dynamic (onnxruntime.quantization) needs onnxruntime for Python, which is not
installable here (no PyPI; Debian does not package it). This does the same rewrite for the ops that hold
BERT's weights, in the graph form ONNX Runtime fuses and runs with int8 kernels:

    Y = MatMul(X, W)            →  (Xq, sx, zx) = DynamicQuantizeLinear(X)     # uint8, per tensor, at run time
    Y = Gemm(X, Wᵀ, b)             Y = Cast(MatMulInteger(Xq, Wq, zx)) · (sx · sw) (+ b)
                                   Wq = round(W / sw) in int8, symmetric, one scale per output column

Only MatMul/Gemm whose weight is an initializer are rewritten (every Linear of BERT and the 768→640
projection); embeddings, LayerNorm and attention's activation×activation MatMuls stay float32. The vision
tower is copied unchanged: ONNX Runtime's ConvInteger takes uint8 weights only, and dynamic quantization of
EfficientNet's depthwise convs is known to cost accuracy, so it is not attempted here.
"""
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def quantize_weight(w):
    """int8 symmetric, per output column (w is [K, N]); returns (wq int8, scale float32 [N])."""
    scale = np.abs(w).max(axis=0) / 127.0
    scale[scale == 0] = 1.0
    wq = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return wq, scale.astype(np.float32)


def quantize_model(model):
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    new_nodes, dropped, done = [], set(), 0
    for node in graph.node:
        weight_name = node.input[1] if len(node.input) > 1 else None
        gemm_ok = node.op_type == "Gemm" and all(
            (a.name != "transA" or a.i == 0) and (a.name not in ("alpha", "beta") or a.f == 1.0) for a in node.attribute)
        if weight_name not in inits or not (node.op_type == "MatMul" or gemm_ok):
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(inits[weight_name]).astype(np.float32)
        if w.ndim != 2:
            new_nodes.append(node)
            continue
        if node.op_type == "Gemm" and any(a.name == "transB" and a.i == 1 for a in node.attribute):
            w = w.T
        wq, sw = quantize_weight(w)
        p = f"{node.name or node.output[0]}_q"
        graph.initializer.extend([numpy_helper.from_array(wq, f"{p}_W"), numpy_helper.from_array(sw, f"{p}_sw")])
        dropped.add(weight_name)
        x = node.input[0]
        out = node.output[0]
        mm_out = f"{p}_mm" if node.op_type == "Gemm" and len(node.input) > 2 else out
        new_nodes += [
            helper.make_node("DynamicQuantizeLinear", [x], [f"{p}_xq", f"{p}_sx", f"{p}_zx"], name=f"{p}_dql"),
            helper.make_node("MatMulInteger", [f"{p}_xq", f"{p}_W", f"{p}_zx"], [f"{p}_i32"], name=f"{p}_mmi"),
            helper.make_node("Cast", [f"{p}_i32"], [f"{p}_f"], to=TensorProto.FLOAT, name=f"{p}_cast"),
            helper.make_node("Mul", [f"{p}_sx", f"{p}_sw"], [f"{p}_s"], name=f"{p}_scale"),
            helper.make_node("Mul", [f"{p}_f", f"{p}_s"], [mm_out], name=f"{p}_rescale"),
        ]
        if mm_out != out:
            new_nodes.append(helper.make_node("Add", [mm_out, node.input[2]], [out], name=f"{p}_bias"))
        done += 1
    # a weight still read by another node stays
    still_used = {i for n in new_nodes for i in n.input}
    keep = [i for i in graph.initializer if i.name not in dropped or i.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.node[:]
    graph.node.extend(new_nodes)
    return done


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: quantize_int8.py MODEL_DIR OUT_DIR")
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for f in os.listdir(src):
        if f not in ("text.onnx", "text.onnx.data"):  # the int8 tower is written whole below
            shutil.copy(os.path.join(src, f), os.path.join(out, f))
    model = onnx.load(os.path.join(src, "text.onnx"))
    n = quantize_model(model)
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "text.onnx"))
    import json
    cfg_path = os.path.join(out, "config.json")
    cfg = json.load(open(cfg_path))
    cfg["model_id"] += "-text-int8"
    cfg["source"] += "; text tower int8 dynamic quantization by tools/quantize_int8.py (reference.json is float32's: int8 does not meet its tolerance)"
    json.dump(cfg, open(cfg_path, "w"), indent=2)
    sizes = {f: os.path.getsize(os.path.join(d, "text.onnx")) / 2**20 for f, d in (("float32", src), ("int8", out))}
    print(f"{n} MatMul/Gemm rewritten; text.onnx {sizes['float32']:.0f} MiB → {sizes['int8']:.0f} MiB; written to {out}")


if __name__ == "__main__":
    main()
