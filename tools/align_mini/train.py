"""Trains align-mini on the rasterized corpus, evaluates it on held-out sets and exports the model folder.

Usage: python3 train.py --corpus .cache/corpus --out models/align-mini [--steps N] [--seed S]
Selection run (held-out styles, one JSON line per recipe; same --steps for every recipe):
  python3 train.py --corpus .cache/corpus --out /tmp/x --steps 800 --eval-only-sets --captions v2|rich \
      [--piece-dropout 0.2] --recipe NAME --report .cache/selection.jsonl
Shipped run on every style, the held-out ones included: add --train-on-all (their numbers are then seen-style numbers).
Deterministic for a given seed, step count and thread count (CPU kernels).
"""
import argparse
import base64
import json
import math
import os
import struct
import time
import zlib

import numpy as np
import torch

import evaluate as ev
from captions import Captions
from data import Batches, add_modifier_texts, load_corpus, to_pixels
from model import AlignMini, contrastive_loss
from tokenizer import WordPiece, build_vocab, save as save_tokenizer

MAX_LEN, DIM = 32, 256
HELD_OUT_EMOJI = ["twemoji", "emojione", "emojione-monotone"]
HELD_OUT_ICONS = ["tabler", "carbon", "fa6-solid"]
EVERYDAY = os.path.join(os.path.dirname(__file__), "../../test/fixtures/everyday-words.json")


def png_bytes(u8):
    """A minimal RGB PNG writer, so reference images need no imaging library."""
    h, w, _ = u8.shape
    raw = b"".join(b"\x00" + u8[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--emoji-weight", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=48, help="image input in pixels; the corpus must be rasterized at it (CORPUS_SIZE)")
    ap.add_argument("--text-tower", choices=["bag", "bert"], default="bag")
    ap.add_argument("--captions", choices=["v2", "rich"], default="v2", help="caption recipe, see captions.py (v2 = the shipped model's; rich is measured in selection runs)")
    ap.add_argument("--piece-dropout", type=float, default=0.0, help="share of words trained as their sub-word pieces")
    ap.add_argument("--pieces", type=int, default=3000, help="sub-word pieces added to the vocabulary")
    ap.add_argument("--train-on-all", action="store_true", help="train on the held-out sets too (the shipped model); their numbers are then seen-style numbers")
    ap.add_argument("--recipe", default="", help="a name for this run in --report")
    ap.add_argument("--report", help="with --eval-only-sets: append the run's metrics as one JSON line here")
    ap.add_argument("--eval-only-sets", action="store_true", help="after training, print held-out retrieval and arithmetic only (ablations); export nothing")
    ap.add_argument("--from-checkpoint", help="skip training: evaluate and export a saved checkpoint")
    ap.add_argument("--resume", help="continue training a saved checkpoint for --steps more steps, with a fresh schedule")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # without it CPU training here slowed fourfold after a few hundred steps
    meta, images = load_corpus(args.corpus, args.size)
    add_modifier_texts(meta)
    captions = Captions(meta, args.captions)
    train_texts = [t for m in meta if args.train_on_all or not m["heldOut"] for t in captions.all_texts(m)]
    vocab = build_vocab(train_texts, max_pieces=args.pieces)
    tok = WordPiece(vocab, MAX_LEN)
    print(f"corpus {len(meta)} images, vocab {len(vocab)}, captions {args.captions}, piece dropout {args.piece_dropout}", flush=True)

    model = AlignMini(len(vocab), DIM, MAX_LEN, text=args.text_tower)
    if args.from_checkpoint:
        saved = torch.load(args.from_checkpoint)
        model.load_state_dict(saved["state"])
        evaluate_and_export(model, tok, vocab, meta, images, args.out, saved["training"])
        return
    previous = None
    if args.resume:
        saved = torch.load(args.resume)
        model.load_state_dict(saved["state"])
        previous = saved["training"]
    print(f"params: image {sum(p.numel() for p in model.image.parameters())/1e6:.2f}M, text {sum(p.numel() for p in model.text.parameters())/1e6:.2f}M", flush=True)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    warm = 100 if previous else max(1, min(300, args.steps // 5))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1, s / args.steps))))
    batches = Batches(meta, images, captions, tok, args.emoji_weight, args.seed, args.train_on_all, args.piece_dropout)
    # channels-last makes the depthwise convolutions' backward pass about 35% faster on this CPU
    model.image.to(memory_format=torch.channels_last)
    t0 = time.time()
    model.train()
    for step in range(args.steps):
        x, ids, mask, concepts, text_keys = batches.next(args.batch)
        loss = contrastive_loss(model.image(x.contiguous(memory_format=torch.channels_last)), model.text(ids, mask), concepts, model.temperature(), text_keys=text_keys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps - 1:
            el = time.time() - t0
            print(f"step {step} loss {loss.item():.3f} temp {model.temperature().item():.4f} {el/60:.1f} min, eta {(args.steps-step-1)*el/(step+1)/60:.1f} min", flush=True)
        if not args.eval_only_sets and step % 500 == 499:
            # insurance on a shared machine: a run cut short can still be evaluated and exported (--from-checkpoint)
            os.makedirs(".cache", exist_ok=True)
            torch.save({"state": model.state_dict(), "training": {"steps": step + 1, "batch": args.batch, "lr": args.lr, "seed": args.seed,
                        "emoji_weight": args.emoji_weight, "minutes": round((time.time() - t0) / 60, 1), "threads": args.threads,
                        "partial": True}}, ".cache/align-mini-partial.pt")
    training = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed, "emoji_weight": args.emoji_weight,
                "minutes": round((time.time() - t0) / 60, 1), "threads": args.threads,
                "train_images": int(len(batches.train)), "vocab": len(vocab), "torch": torch.__version__,
                "text_tower": args.text_tower, "size": args.size, "seconds_per_step": round((time.time() - t0) / args.steps, 3),
                "captions": args.captions, "piece_dropout": args.piece_dropout, "pieces": args.pieces, "train_on_all": args.train_on_all}
    if previous:
        phases = previous.get("phases", [dict(previous)]) + [dict(training)]
        training = dict(training, steps=previous["steps"] + args.steps, minutes=round(previous["minutes"] + training["minutes"], 1), phases=phases)
    if args.eval_only_sets:
        model.image.to(memory_format=torch.contiguous_format)
        model.eval()
        m = evaluation(model, tok, meta, images)
        row = {"recipe": args.recipe, "training": training, "headline": m["headline"], "everyday": m["everyday"],
               "cross_style": m["cross_style"], "text_to_image": {s: r["text_to_image"] for s, r in m["retrieval"].items()},
               "arithmetic": {s: {k: v for k, v in r.items() if k in ("image+text", "image only", "text only")} for s, r in m["arithmetic"].items()}}
        print(json.dumps(row["headline"]), flush=True)
        if args.report:
            with open(args.report, "a") as f:
                f.write(json.dumps(row) + "\n")
        return
    os.makedirs(".cache", exist_ok=True)
    torch.save({"state": model.state_dict(), "training": training}, ".cache/align-mini.pt")
    evaluate_and_export(model, tok, vocab, meta, images, args.out, training)


def evaluation(model, tok, meta, images):
    queries = json.load(open(EVERYDAY))["queries"]
    metrics = {
        "retrieval": {s: ev.retrieval(model, tok, meta, images, [s]) for s in HELD_OUT_EMOJI + HELD_OUT_ICONS},
        "zero_shot": {s: ev.zero_shot_groups(model, tok, meta, images, [s]) for s in HELD_OUT_EMOJI},
        "arithmetic": ev.arithmetic(model, tok, meta, images, HELD_OUT_EMOJI),
        "everyday": ev.everyday(model, tok, meta, images, HELD_OUT_EMOJI, queries),
        "cross_style": ev.cross_style(model, meta, images, HELD_OUT_EMOJI),
        "seen_style": ev.retrieval(model, tok, meta, images, ["noto"]),
    }
    metrics["headline"] = ev.headline(metrics, HELD_OUT_EMOJI)
    return metrics


def evaluate_and_export(model, tok, vocab, meta, images, out, training):
    model.image.to(memory_format=torch.contiguous_format)
    model.eval()
    os.makedirs(out, exist_ok=True)
    metrics = dict(evaluation(model, tok, meta, images), training=training)
    print(json.dumps({k: metrics[k] for k in ("headline", "everyday")}, indent=1), flush=True)
    export(model, tok, vocab, meta, images, out, metrics)


def export(model, tok, vocab, meta, images, out, metrics):
    class Vision(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            return self.m.image(pixel_values)

    class Text(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask):
            return self.m.text(input_ids, attention_mask)

    # torch.onnx.export restores each wrapper's own mode afterwards; a fresh wrapper is in training mode,
    # which would put BatchNorm back on batch statistics for the reference pass below.
    vision, text = Vision(model).eval(), Text(model).eval()
    size = images.shape[1]
    x = torch.zeros(2, 3, size, size)
    torch.onnx.export(vision, (x,), f"{out}/vision.onnx", input_names=["pixel_values"], output_names=["image_embeds"],
                      dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}}, opset_version=17)
    ids = torch.ones(2, 8, dtype=torch.long)
    torch.onnx.export(text, (ids, ids), f"{out}/text.onnx", input_names=["input_ids", "attention_mask"], output_names=["text_embeds"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}, "text_embeds": {0: "batch"}},
                      opset_version=17)
    save_tokenizer(vocab, MAX_LEN, f"{out}/tokenizer.json")
    with open(f"{out}/preprocessor_config.json", "w") as f:
        json.dump({"image_processor_type": "EfficientNetImageProcessor", "do_resize": True, "size": {"height": size, "width": size},
                   "resample": 2, "do_center_crop": False, "crop_size": {"height": size, "width": size}, "do_rescale": True,
                   "rescale_factor": 1 / 127.5, "rescale_offset": True, "do_normalize": False, "image_mean": [0.5, 0.5, 0.5],
                   "image_std": [0.5, 0.5, 0.5], "include_top": False, "background": [255, 255, 255]}, f, indent=2)
    with open(f"{out}/config.json", "w") as f:
        json.dump({"name": "align-mini", "model_id": "align-mini-v3", "embedding_dim": DIM, "max_text_length": MAX_LEN,
                   "temperature": float(model.temperature()), "prompt_template": "an icon of {}", "uses_token_type_ids": False,
                   "license": "CC-BY-4.0", "source": "trained from scratch by tools/train-align-mini.sh on licensed @iconify/json sets; see README.md"}, f, indent=2)
    with open(f"{out}/metrics.json", "w") as f:
        json.dump(metrics, f, indent=1)
    # reference.json: inputs at the model's own input size, so preprocessing is only the rescale
    ref_texts = ["cat", "grinning face", "waving hand: medium skin tone", "an icon of a house", "Café ☕ au lait!"]
    pick = [i for i, m in enumerate(meta) if m["set"] == "twemoji"][:3] + [i for i, m in enumerate(meta) if m["set"] == "tabler"][:1]
    model.eval()
    with torch.no_grad():
        t_ids = [tok.encode(t) for t in ref_texts]
        t_emb = [model.text(torch.tensor([s]), torch.ones(1, len(s), dtype=torch.long))[0] for s in t_ids]
        i_emb = model.image(to_pixels(images[pick]))
    ref = {"tolerance": 1e-4,
           "texts": [{"text": t, "input_ids": s, "text_embeds": e.tolist()} for t, s, e in zip(ref_texts, t_ids, t_emb)],
           "images": [{"name": f"{meta[i]['set']}:{meta[i]['name']}", "png_base64": base64.b64encode(png_bytes(images[i])).decode(),
                       "image_embeds": e.tolist()} for i, e in zip(pick, i_emb)]}
    with open(f"{out}/reference.json", "w") as f:
        json.dump(ref, f)
    print("exported", out, flush=True)


if __name__ == "__main__":
    main()
