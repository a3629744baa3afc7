"""Exports a Hugging Face ALIGN checkpoint (e.g. kakaobrain/align-base) into align-search's model-folder contract.

    python3 tools/export_align.py --checkpoint kakaobrain/align-base --out models/align-base
    python3 tools/export_align.py --random-init full --out /tmp/align-random      # no weights needed: checks the export path
    python3 tools/export_align.py --random-init tiny --out test/fixtures/align-tiny

Needs torch, transformers and onnx (and onnxruntime for the parity check). write_model_folder is the one export
path: tools/align_shape.py (align-base's shape, random weights, no transformers) calls it with its own towers. The two towers are wrapped so that
  vision.onnx: pixel_values [B,3,H,W] → image_embeds [B,D]  (pooled EfficientNet output; no projection)
  text.onnx:   input_ids, attention_mask, token_type_ids [B,S] int64 → text_embeds [B,D]  (text_projection of [CLS])
See models/README.md and ALIGN-NOTES.md for the facts behind each step.
"""
import argparse
import base64
import io
import json
import os
import sys

import numpy as np
import torch
from torch import nn

# torch ≥ 2.5 defaults to the dynamo exporter; the TorchScript one handles these models and older torch alike
# A tower at least this large keeps its weights as ONNX external data in <tower>.onnx.data (models/README.md):
# ONNX Runtime then loads them without first holding the whole protobuf, which took the full-size vision
# process's peak RSS from 585 to 364 MiB (src/ml/malloc-env.ts). The same bound as src/ml/ort-session.ts's arena rule.
EXTERNAL_DATA_BYTES = 64 * 2**20

EXPORT_KW = {"dynamo": False} if tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 5) else {}


class MeanPool(nn.Module):
    """ALIGN's pooler is AvgPool2d(kernel=hidden_dim, ceil_mode=True) over a 9×9 map, which some exporters and
    runtimes get wrong (ceil_mode, divisor). Over the whole map it is exactly a mean over H and W."""

    def forward(self, x):
        return x.mean(dim=(2, 3), keepdim=True)


class Vision(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.vision = model.vision_model

    def forward(self, pixel_values):
        out = self.vision(pixel_values=pixel_values)
        return out.pooler_output.reshape(pixel_values.shape[0], -1)


class Text(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.text = model.text_model
        self.projection = model.text_projection

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.text(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return self.projection(out.last_hidden_state[:, 0, :])


def random_model(kind, vocab_file):
    from transformers import AlignConfig, AlignModel, AlignTextConfig, AlignVisionConfig, BertTokenizerFast, EfficientNetImageProcessor
    from PIL import Image
    if kind == "full":  # align-base's sizes: BERT-base text tower, EfficientNet-B7 vision tower at 289 px, 640-d
        text = AlignTextConfig()
        vision = AlignVisionConfig(image_size=289, hidden_dim=640)
        size, crop = 346, 289
    else:  # a few MB, for a committed test fixture
        text = AlignTextConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
        vision = AlignVisionConfig(image_size=64, width_coefficient=0.25, depth_coefficient=0.25, hidden_dim=128)
        size, crop = 72, 64
    config = AlignConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=640 if kind == "full" else 80)
    torch.manual_seed(0)
    model = AlignModel(config)
    with torch.no_grad():
        model.temperature.fill_(1 / 64)
        # transformers' init (normal, std 0.02) makes a deep random EfficientNet's output vanish (~1e-28),
        # which would let any runtime pass the parity check; He init keeps activations at unit scale.
        he_init_convs(model.vision_model)
    tok = bert_tokenizer(vocab_file)
    proc = EfficientNetImageProcessor(size={"height": size, "width": size}, crop_size={"height": crop, "width": crop}, do_center_crop=True,
                                      rescale_factor=1 / 127.5, rescale_offset=True, do_normalize=False, include_top=False,
                                      resample=Image.BILINEAR)
    return model, tok, proc, f"random-init ALIGN ({kind}) for export checks"


def he_init_convs(module):
    """He (fan_in) init of every conv, for random-weight exports: see random_model. fan_in is right for depthwise convs too."""
    for mod in module.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_in", nonlinearity="relu")


def bert_tokenizer(vocab_file):
    """An uncased BERT WordPiece tokenizer over vocab_file, as a transformers fast tokenizer."""
    from tokenizers.implementations import BertWordPieceTokenizer
    from transformers import PreTrainedTokenizerFast
    backend = BertWordPieceTokenizer(vocab_file, lowercase=True)._tokenizer
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                   pad_token="[PAD]", mask_token="[MASK]", model_input_names=["input_ids", "token_type_ids", "attention_mask"])


def write_vocab(path):
    """A BERT vocab for --random-init when no checkpoint is at hand: specials, characters and word pieces."""
    words = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(33, 127)]
    base = "a photo of cat cats dog two the and with on in red blue green car house face hand smiling sofa ##s ##ing".split()
    words += chars + ["##" + c for c in chars if c.isalnum()] + base
    with open(path, "w") as f:
        f.write("\n".join(dict.fromkeys(words)) + "\n")


def test_images(size):
    from PIL import Image
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    grad = np.stack([xx * 255 // size, yy * 255 // size, (xx + yy) * 127 // size], -1).astype(np.uint8)
    noise = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = []
    for arr in (grad, noise):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        out.append((Image.fromarray(arr), buf.getvalue()))
    return out


class HfTokenizer:
    """A transformers fast tokenizer behind the interface write_model_folder takes."""

    def __init__(self, tok, max_length):
        self.tok, self.max_length = tok, max_length

    def encode(self, text):
        enc = self.tok(text, truncation=True, max_length=self.max_length)
        ids = enc["input_ids"]
        return ids, enc.get("token_type_ids", [0] * len(ids))

    def save(self, path):
        self.tok.backend_tokenizer.save(path)


def hf_preprocess(proc):
    """A transformers image processor as a PIL image → [1,3,H,W] float tensor function."""
    return lambda img: proc(images=img, return_tensors="pt")["pixel_values"]


def export_onnx(out, vision, text, input_size, opset):
    """Writes vision.onnx ([B,3,H,W] → [B,D], dynamic batch) and text.onnx (three int64 [B,S] → [B,D], dynamic batch and length)."""
    with torch.no_grad():
        px = torch.zeros(2, 3, input_size, input_size)
        torch.onnx.export(vision, (px,), f"{out}/vision.onnx", input_names=["pixel_values"], output_names=["image_embeds"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}}, opset_version=opset, **EXPORT_KW)
        ids = torch.ones(2, 8, dtype=torch.long)
        torch.onnx.export(text, (ids, ids, torch.zeros_like(ids)), f"{out}/text.onnx",
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["text_embeds"],
                          dynamic_axes={n: {0: "batch", 1: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids")} | {"text_embeds": {0: "batch"}},
                          opset_version=opset, **EXPORT_KW)
    for tower in ("vision", "text"):
        to_external_data(f"{out}/{tower}.onnx")


def to_external_data(file):
    """Moves a large model's weights into <file>.data beside it (the graph stays in <file>)."""
    if os.path.getsize(file) < EXTERNAL_DATA_BYTES:
        return
    import onnx
    model = onnx.load(file)
    data = f"{file}.data"
    if os.path.exists(data):
        os.remove(data)
    onnx.save_model(model, file, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=os.path.basename(data), size_threshold=1024)
    # onnx creates the data file owner-only (0600): a server running as another user could not read it
    os.chmod(data, os.stat(file).st_mode & 0o777)


REFERENCE_TEXTS = ["a photo of a cat", "a photo of a dog", "two cats on a red sofa", "hand"]


def reference(vision, text, tokenizer, preprocess, input_size, tolerance):
    """reference.json's content: what PyTorch computes for fixed texts and generated images, with the exact
    token ids and pixel_values it was fed, so the runtime's parity test checks towers and inputs separately."""
    ref = {"tolerance": tolerance, "texts": [], "images": []}
    with torch.no_grad():
        for t in REFERENCE_TEXTS:
            ids, types = tokenizer.encode(t)
            ids_t = torch.tensor([ids], dtype=torch.long)
            e = text(ids_t, torch.ones_like(ids_t), torch.tensor([types], dtype=torch.long))[0]
            ref["texts"].append({"text": t, "input_ids": list(ids), "text_embeds": e.tolist()})
        for img, png in test_images(input_size):
            pv = preprocess(img)
            e = vision(pv)[0]
            ref["images"].append({"name": f"generated {input_size}px", "png_base64": base64.b64encode(png).decode(),
                                  "pixel_values": pv[0].flatten().tolist(), "image_embeds": e.tolist()})
    return ref


def write_model_folder(out, vision, text, tokenizer, preprocess, preprocessor_config, config, tolerance=1e-4, opset=17):
    """The one export path: both towers to ONNX, tokenizer.json, the two configs, reference.json, then the parity check.

    vision: nn.Module, pixel_values [B,3,H,W] → [B,D];  text: nn.Module, (input_ids, attention_mask, token_type_ids) → [B,D]
    tokenizer: .encode(text) → (ids, token_type_ids) with specials and truncation; .save(path) writes tokenizer.json
    preprocess: PIL RGB image → [1,3,H,W] float tensor, the function preprocessor_config describes
    """
    os.makedirs(out, exist_ok=True)
    vision.eval()
    text.eval()
    pc = preprocessor_config
    input_size = pc["crop_size"]["height"] if pc.get("do_center_crop") else pc["size"]["height"]
    export_onnx(out, vision, text, input_size, opset)
    tokenizer.save(f"{out}/tokenizer.json")
    json.dump(pc, open(f"{out}/preprocessor_config.json", "w"), indent=2)
    json.dump(config, open(f"{out}/config.json", "w"), indent=2)
    ref = reference(vision, text, tokenizer, preprocess, input_size, tolerance)
    json.dump(ref, open(f"{out}/reference.json", "w"))
    check_parity(out, ref, config)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", help="a Hugging Face id or local folder of an AlignModel")
    ap.add_argument("--random-init", choices=["full", "tiny"], help="export a randomly initialised model instead (needs transformers; tools/align_shape.py does not)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.checkpoint:
        from transformers import AlignModel, AlignProcessor
        model = AlignModel.from_pretrained(args.checkpoint)
        processor = AlignProcessor.from_pretrained(args.checkpoint)
        tok, proc, source = processor.tokenizer, processor.image_processor, f"exported from {args.checkpoint} by tools/export_align.py"
        name = os.path.basename(args.checkpoint.rstrip("/"))
    elif args.random_init:
        vocab = os.path.join(args.out, "vocab.txt")
        write_vocab(vocab)
        model, tok, proc, source = random_model(args.random_init, vocab)
        os.remove(vocab)
        name = f"align-random-{args.random_init}"
    else:
        sys.exit("give --checkpoint or --random-init")
    model.eval()
    model.vision_model.pooler = MeanPool()
    dim = model.config.projection_dim
    cfg = {"name": name, "model_id": f"{name}-{dim}", "embedding_dim": dim, "max_text_length": args.max_length,
           "temperature": float(model.temperature.detach()), "prompt_template": "a photo of a {}.", "uses_token_type_ids": True,
           "license": "see the checkpoint's model card (kakaobrain/align-base: BSD-3-Clause)" if args.checkpoint else "Apache-2.0 (random weights)",
           "source": source}
    write_model_folder(args.out, Vision(model), Text(model), HfTokenizer(tok, args.max_length), hf_preprocess(proc), proc.to_dict(), cfg, opset=args.opset)


def check_parity(out, ref, cfg):
    try:
        import onnxruntime as ort
    except ImportError:
        print("onnxruntime not installed: ONNX parity unchecked here (npm test checks it in Node)")
        return
    v = ort.InferenceSession(f"{out}/vision.onnx", providers=["CPUExecutionProvider"])
    t = ort.InferenceSession(f"{out}/text.onnx", providers=["CPUExecutionProvider"])
    worst = 0.0
    for r in ref["texts"]:
        ids = np.array([r["input_ids"]], dtype=np.int64)
        got = t.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})[0][0]
        worst = max(worst, float(np.abs(got - np.array(r["text_embeds"])).max()))
    for r in ref["images"]:
        n = len(r["pixel_values"])
        side = int(round((n / 3) ** 0.5))
        got = v.run(None, {"pixel_values": np.array(r["pixel_values"], dtype=np.float32).reshape(1, 3, side, side)})[0][0]
        worst = max(worst, float(np.abs(got - np.array(r["image_embeds"])).max()))
    scale = max(float(np.abs(np.array(r[k])).max()) for k, rows in (("text_embeds", ref["texts"]), ("image_embeds", ref["images"])) for r in rows)
    print(json.dumps({"onnxruntime_vs_pytorch_max_abs_diff": worst, "largest_embedding_value": scale, "tolerance": ref["tolerance"], "ok": worst <= ref["tolerance"], "dim": cfg["embedding_dim"]}))
    if worst > ref["tolerance"]:
        sys.exit("ONNX Runtime does not reproduce PyTorch within tolerance")


if __name__ == "__main__":
    main()
