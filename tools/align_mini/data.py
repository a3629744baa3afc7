"""Loads the rasterized corpus and makes augmented training batches."""
import json
import math

import numpy as np
import torch
import torch.nn.functional as F


def load_corpus(corpus_dir, size):
    meta = [json.loads(line) for line in open(f"{corpus_dir}/meta.jsonl")]
    images = np.fromfile(f"{corpus_dir}/images.u8", dtype=np.uint8).reshape(len(meta), size, size, 3)
    return meta, images


def to_pixels(u8):
    """uint8 NHWC → float NCHW in [-1, 1]; the same rescale the preprocessor_config declares."""
    return torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def add_modifier_texts(meta):
    """Captions a modified emoji with its modifier alone ("dark skin tone", "woman"), so that the text
    tower learns what the modifier means by itself: image(base) + text(modifier) arithmetic needs it."""
    for m in meta:
        label = m.get("label") or ""
        if not m["concept"].startswith("emoji:"):
            continue
        if ":" in label:
            m["texts"].append(label.split(":", 1)[1].strip())
        for g in ("man", "woman"):
            if label.startswith(g + " "):
                m["texts"].append(g)


def keeps_colour(meta):
    """Images whose meaning is their colour (skin tones): hue, grayscale and line-art augmentation would erase it."""
    return np.array([" skin tone" in (m.get("label") or "") for m in meta])


def augment(x, gen, keep_colour=None):
    """Style augmentation on a batch in [-1, 1]: geometry, colour, grayscale, line-art, blur, low resolution.

    The held-out styles differ from the training ones in colour palette, line weight and detail,
    so the augmentations perturb exactly those.
    """
    b = x.shape[0]
    r = lambda *shape: torch.rand(*shape, generator=gen)
    free = torch.ones(b, dtype=torch.bool) if keep_colour is None else ~keep_colour
    # geometry, padding with white: work on (1 - x) so zero padding means white
    scale = 0.75 + 0.35 * r(b)
    ang = (r(b) - 0.5) * 0.35
    tx, ty = (r(b) - 0.5) * 0.25, (r(b) - 0.5) * 0.25
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    flip = r(b) < 0.3
    theta[flip, 0, :2] *= -1
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = 1 - F.grid_sample(1 - x, grid, align_corners=False, padding_mode="zeros")
    # colour: brightness/contrast/saturation jitter and a random hue rotation
    gray = x.mean(1, keepdim=True)
    sat = torch.where(r(b, 1, 1, 1) < 0.5, 0.6 + 0.8 * r(b, 1, 1, 1), torch.ones(b, 1, 1, 1))
    x = gray + (x - gray) * sat
    hue = (r(b) < 0.25) & free
    if hue.any():
        a = r(int(hue.sum())) * 2 * math.pi
        k = torch.tensor([1.0, 1.0, 1.0]) / math.sqrt(3)
        K = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        R = torch.eye(3) + torch.sin(a)[:, None, None] * K + (1 - torch.cos(a))[:, None, None] * (K @ K)
        x[hue] = torch.einsum("bij,bjhw->bihw", R, x[hue])
    spread = torch.where(free, 1.0, 0.4).view(b, 1, 1, 1)
    x = x * (1 + (r(b, 1, 1, 1) - 0.5) * 0.5 * spread) + (r(b, 1, 1, 1) - 0.5) * 0.3 * spread
    # grayscale and line-art (monochrome icon sets draw emoji as dark outlines on white)
    g = (r(b) < 0.15) & free
    x[g] = x[g].mean(1, keepdim=True).expand(-1, 3, -1, -1)
    la = (r(b) < 0.1) & free
    if la.any():
        m = x[la].mean(1, keepdim=True)
        x[la] = torch.where(m < 0.6, -1.0, 1.0).expand(-1, 3, -1, -1).clone()
    # blur and low resolution
    bl = r(b) < 0.2
    if bl.any():
        x[bl] = F.avg_pool2d(x[bl], 3, 1, 1, count_include_pad=False)
    lr = r(b) < 0.2
    if lr.any():
        s = x.shape[-1]
        small = F.interpolate(x[lr], size=int(s * 0.6), mode="bilinear", align_corners=False)
        x[lr] = F.interpolate(small, size=s, mode="bilinear", align_corners=False)
    return x.clamp(-1, 1)


class Batches:
    """Samples (image, one of its alt-texts) pairs; emoji weighted up over monochrome icons.

    captions: a captions.Captions recipe; tok: the WordPiece tokenizer; piece_dropout: the share of whole
    words tokenized by their sub-word pieces instead (see WordPiece.encode), so the pieces learn meaning too.
    """

    def __init__(self, meta, images, captions, tok, emoji_weight, seed, train_on_all=False, piece_dropout=0.0):
        self.train = np.array([i for i, m in enumerate(meta) if train_on_all or not m["heldOut"]])
        w = np.array([emoji_weight if meta[i]["isEmoji"] else 1.0 for i in self.train])
        self.p = w / w.sum()
        concepts = {}
        self.concept = np.array([concepts.setdefault(m["concept"], len(concepts)) for m in meta])
        self.images, self.captions, self.tok, self.piece_dropout = images, captions, tok, piece_dropout
        self.keep_colour = torch.from_numpy(keeps_colour(meta))
        self.keys = {}
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)

    def next(self, batch):
        idx = self.rng.choice(self.train, size=batch, p=self.p)
        x = augment(to_pixels(self.images[idx]), self.gen, self.keep_colour[idx])
        seqs = [self.tok.encode(self.captions.draw(i, self.rng), self.piece_dropout, self.rng) for i in idx]
        ids, mask = pad(seqs)
        # in-batch pairs with the same caption are positives: key each distinct token sequence
        keys = torch.tensor([self.keys.setdefault(tuple(s), len(self.keys)) for s in seqs])
        return x, ids, mask, torch.from_numpy(self.concept[idx]), keys


def pad(seqs, length=None):
    length = length or max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), length, dtype=torch.long)
    mask = torch.zeros(len(seqs), length, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids, mask
