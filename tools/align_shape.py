"""Builds a model folder in kakaobrain/align-base's exact shape, with random weights, without transformers.

    /usr/bin/python3 tools/align_shape.py --out models/align-base-shape     # npm run model:align-shape

What it is for: speed and memory of the full-size model through the service (bench/align-base.ts, test/ml), on
machines where transformers (and so `export_align.py --random-init full`) cannot be installed. Its embeddings
mean nothing. Needs only Debian's python3-torch, python3-torchvision and python3-onnx.

  vision: torchvision's EfficientNet-B7 body (features[0..7], 640 channels) at 289×289, mean-pooled to 640-d. Its
          features[8] (the 1×1 conv 640→2560) is dropped: ALIGN's image embedding is the block output, no projection.
  text:   BERT-base written out below (12 layers, width 768, 12 heads, FFN 3072, GELU, post-LayerNorm,
          512 positions, 2 token types), [CLS] state → Linear 768→640 (BERT's tanh pooler is unused by ALIGN).
  tokenizer: a synthetic 30,522-entry uncased WordPiece vocabulary laid out like bert-base-uncased's
          ([PAD] 0, [unused*] 1–99, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103), written as tokenizer.json.
  preprocess: resize 346×346 bilinear, center crop 289 (offset 28), x/127.5 − 1 (ALIGN-NOTES.md).

The export, the reference step and the configs are tools/export_align.py's write_model_folder: one implementation.
"""
import argparse
import itertools
import os
import string
import sys
import time

import numpy as np
import torch
import torchvision
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "align_mini"))
from export_align import he_init_convs, write_model_folder  # noqa: E402
from tokenizer import WordPiece, save as save_tokenizer_json  # noqa: E402  (tools/align_mini/tokenizer.py)

VOCAB_SIZE, WIDTH, LAYERS, HEADS, FFN, POSITIONS, DIM = 30522, 768, 12, 12, 3072, 512, 640
RESIZE, CROP = 346, 289


class VisionTower(nn.Module):
    """EfficientNet-B7 without its final 1×1 conv, mean-pooled: [B,3,289,289] → [B,640]."""

    def __init__(self):
        super().__init__()
        # torchvision ≥ 0.13 takes weights=None; nothing is downloaded
        self.features = torchvision.models.efficientnet_b7(weights=None).features[:8]

    def forward(self, pixel_values):
        # a mean over H and W, not AdaptiveAvgPool: ALIGN's pooler is exactly this, and it exports as one ReduceMean
        return self.features(pixel_values).mean(dim=(2, 3))


class BertLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH), nn.Linear(WIDTH, WIDTH)
        self.attn_out, self.attn_norm = nn.Linear(WIDTH, WIDTH), nn.LayerNorm(WIDTH, eps=1e-12)
        self.ffn_in, self.ffn_out, self.ffn_norm = nn.Linear(WIDTH, FFN), nn.Linear(FFN, WIDTH), nn.LayerNorm(WIDTH, eps=1e-12)

    def forward(self, x, bias):
        b, s, _ = x.shape
        heads = lambda t: t.view(b, s, HEADS, WIDTH // HEADS).transpose(1, 2)  # noqa: E731
        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        att = torch.softmax(q @ k.transpose(-1, -2) / (WIDTH // HEADS) ** 0.5 + bias, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(b, s, WIDTH)
        x = self.attn_norm(x + self.attn_out(ctx))
        return self.ffn_norm(x + self.ffn_out(nn.functional.gelu(self.ffn_in(x))))


class TextTower(nn.Module):
    """BERT-base plus ALIGN's text_projection of the [CLS] state: (input_ids, attention_mask, token_type_ids) → [B,640]."""

    def __init__(self):
        super().__init__()
        self.words = nn.Embedding(VOCAB_SIZE, WIDTH, padding_idx=0)
        self.positions = nn.Embedding(POSITIONS, WIDTH)
        self.types = nn.Embedding(2, WIDTH)
        self.norm = nn.LayerNorm(WIDTH, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer() for _ in range(LAYERS))
        self.projection = nn.Linear(WIDTH, DIM)
        self.register_buffer("position_ids", torch.arange(POSITIONS).unsqueeze(0), persistent=False)
        # BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, input_ids, attention_mask, token_type_ids):
        s = input_ids.shape[1]
        x = self.norm(self.words(input_ids) + self.positions(self.position_ids[:, :s]) + self.types(token_type_ids))
        # padded keys get a large negative bias, as BERT's extended attention mask does
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0
        for layer in self.layers:
            x = layer(x, bias)
        return self.projection(x[:, 0, :])


# Words a search box sees, so that queries tokenize to about as many pieces as in bert-base-uncased.
WORDS = """a an the of on in at with and or to from by for is are two three four red blue green yellow black white
brown orange pink purple gray grey photo picture image drawing painting icon cat cats dog dogs bird birds horse fish
car cars bike bus train plane boat ship house tree trees flower flowers sky sea beach sunset sunrise mountain
mountains lake river forest snow rain city street road bridge building night day light dark sofa chair table bed
window door man woman men women child children person people face hand hands eye smiling smile running walking
sitting standing old young small big large little happy sad food pizza cake coffee cup book phone computer
garden field grass sun moon star stars cloud clouds water fire ice rock stone wall kitchen room office park
holiday party wedding family friends baby portrait landscape autumn winter summer spring""".split()


def vocabulary():
    """30,522 entries in bert-base-uncased's layout; the word pieces after the specials are synthetic."""
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [c for c in map(chr, range(33, 127)) if not c.isupper()]
    vocab += chars + ["##" + c for c in chars if c.isalnum()]
    vocab += [w for w in dict.fromkeys(WORDS) if w not in vocab]
    letters = string.ascii_lowercase
    fill = itertools.chain((p + a + b for a, b in itertools.product(letters, repeat=2) for p in ("", "##")),
                           (p + a + b + c for a, b, c in itertools.product(letters, repeat=3) for p in ("", "##")))
    seen = set(vocab)
    for piece in fill:
        if len(vocab) == VOCAB_SIZE:
            break
        if piece not in seen:
            vocab.append(piece)
            seen.add(piece)
    assert len(vocab) == VOCAB_SIZE and len(set(vocab)) == VOCAB_SIZE
    return vocab


class ShapeTokenizer:
    """tools/align_mini's WordPiece (the `tokenizers` algorithm, mirrored in Python) over the synthetic vocabulary."""

    def __init__(self, max_length):
        self.vocab, self.max_length = vocabulary(), max_length
        self.wordpiece = WordPiece(self.vocab, max_length)

    def encode(self, text):
        ids = self.wordpiece.encode(text)
        return ids, [0] * len(ids)

    def save(self, path):
        save_tokenizer_json(self.vocab, self.max_length, path)


PREPROCESSOR_CONFIG = {
    "image_processor_type": "EfficientNetImageProcessor", "do_resize": True, "size": {"height": RESIZE, "width": RESIZE},
    "resample": 2, "do_center_crop": True, "crop_size": {"height": CROP, "width": CROP}, "do_rescale": True,
    "rescale_factor": 1 / 127.5, "rescale_offset": True, "do_normalize": False, "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5], "include_top": False,
}


def preprocess(img):
    """PREPROCESSOR_CONFIG as a function: PIL RGB → [1,3,289,289]."""
    from PIL import Image
    img = img.convert("RGB").resize((RESIZE, RESIZE), Image.BILINEAR)
    off = (RESIZE - CROP) // 2  # 28, as transformers' center_crop rounds it
    x = np.asarray(img.crop((off, off, off + CROP, off + CROP)), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(x.transpose(2, 0, 1).copy()).unsqueeze(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="models/align-base-shape")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--tolerance", type=float, default=2e-5,
                    help="largest |Δ| per component accepted between ONNX Runtime and PyTorch; text outputs are of order 1, "
                         "image outputs of order 1e-2 with these random weights, so a wrong input or op shows far above it")
    args = ap.parse_args()
    t0 = time.time()
    torch.manual_seed(args.seed)
    vision, text = VisionTower(), TextTower()
    # torchvision's fan_out init leaves a random B7's output near zero; He fan_in keeps it at about 1e-2, and
    # the BatchNorms keep their neutral statistics (recalibrating them on synthetic images was tried: it
    # fits the images it saw and blows others up by 1e5, which no parity tolerance survives)
    he_init_convs(vision)
    params = {n: sum(p.numel() for p in m.parameters()) for n, m in (("vision", vision), ("text", text))}
    print(f"parameters: vision {params['vision'] / 1e6:.1f}M, text {params['text'] / 1e6:.1f}M", flush=True)
    config = {"name": "align-base-shape", "model_id": f"align-base-shape-seed{args.seed}-{DIM}", "embedding_dim": DIM,
              "max_text_length": args.max_length, "temperature": 1 / 64, "prompt_template": "a photo of a {}.", "uses_token_type_ids": True,
              "license": "Apache-2.0 (random weights; architecture from torchvision (BSD-3-Clause) and BERT)",
              "source": "random weights in kakaobrain/align-base's shape, built by tools/align_shape.py (npm run model:align-shape): "
                        "for speed and memory only, its embeddings mean nothing"}
    write_model_folder(args.out, vision, text, ShapeTokenizer(args.max_length), preprocess, PREPROCESSOR_CONFIG, config, tolerance=args.tolerance)
    def weights(f):
        path = os.path.join(args.out, f)
        return os.path.getsize(path) + (os.path.getsize(path + ".data") if os.path.exists(path + ".data") else 0)
    sizes = {f: weights(f) for f in ("vision.onnx", "text.onnx")}
    print(f"{args.out}: vision.onnx {sizes['vision.onnx'] / 2**20:.0f} MiB, text.onnx {sizes['text.onnx'] / 2**20:.0f} MiB, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
