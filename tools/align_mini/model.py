"""align-mini: ALIGN's dual-encoder shape, small. EfficientNet-style MBConv image tower, BERT-style text tower."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from tokenizer import SEP


class SqueezeExcite(nn.Module):
    def __init__(self, ch, reduced):
        super().__init__()
        self.reduce = nn.Conv2d(ch, reduced, 1)
        self.expand = nn.Conv2d(reduced, ch, 1)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.expand(F.silu(self.reduce(s))))


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet: expand 1×1, depthwise k×k, squeeze-excite, project 1×1."""

    def __init__(self, cin, cout, expand, stride, kernel=3):
        super().__init__()
        mid = cin * expand
        layers = []
        if expand != 1:
            layers += [nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.SiLU()]
        layers += [nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.SiLU(),
                   SqueezeExcite(mid, max(4, cin // 4)), nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class ImageTower(nn.Module):
    # (expand, channels, repeats, stride, kernel)
    STAGES = [(1, 16, 1, 1, 3), (4, 24, 2, 2, 3), (4, 40, 2, 2, 5), (4, 80, 3, 2, 3), (4, 112, 2, 1, 5), (4, 160, 1, 1, 3)]

    def __init__(self, dim, width=1.0, head=384):
        super().__init__()
        c = lambda n: int(round(n * width))
        layers = [nn.Conv2d(3, c(32), 3, 2, 1, bias=False), nn.BatchNorm2d(c(32)), nn.SiLU()]
        cin = c(32)
        for e, ch, n, s, k in self.STAGES:
            for i in range(n):
                layers.append(MBConv(cin, c(ch), e, s if i == 0 else 1, k))
                cin = c(ch)
        layers += [nn.Conv2d(cin, head, 1, bias=False), nn.BatchNorm2d(head), nn.SiLU()]
        self.features = nn.Sequential(*layers)
        self.proj = nn.Linear(head, dim)

    def forward(self, pixel_values):
        x = self.features(pixel_values).mean(dim=(2, 3))
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, d, heads, ff):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln1 = nn.LayerNorm(d)
        self.ln2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.GELU(), nn.Linear(ff, d))

    def forward(self, x, bias):
        b, s, d = x.shape
        h = self.ln1(x)
        q, k, v = self.qkv(h).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads) + bias, dim=-1)
        x = x + self.out((att @ v).transpose(1, 2).reshape(b, s, d))
        return x + self.ff(self.ln2(x))


class TextTower(nn.Module):
    """BERT-style pre-LN transformer; the [CLS] state goes through a linear projection, as in ALIGN."""

    def __init__(self, vocab, dim, d=192, layers=3, heads=4, max_len=32):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList(Block(d, heads, 3 * d) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.proj = nn.Linear(d, dim)

    def forward(self, input_ids, attention_mask):
        s = input_ids.shape[1]
        pos = torch.arange(s, device=input_ids.device).unsqueeze(0)
        x = self.tok(input_ids) + self.pos(pos)
        bias = (1.0 - attention_mask.to(x.dtype))[:, None, None, :] * -1e4
        for blk in self.blocks:
            x = blk(x, bias)
        return self.proj(self.ln(x[:, 0]))


class BagTextTower(nn.Module):
    """Mean-pooled WordPiece embeddings → residual MLP → linear projection.

    At this data scale (tens of thousands of short alt-texts) it learns several times faster than the
    transformer; it ignores word order, which icon names and CLDR labels barely use. Same inputs and
    tokenizer as TextTower, so it fits the model-folder contract unchanged.
    """

    def __init__(self, vocab, dim, d=256):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.ln = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.proj = nn.Linear(d, dim)

    def forward(self, input_ids, attention_mask):
        # the special ids [PAD] [UNK] [CLS] [SEP] come first in the vocabulary; [CLS] and [SEP] are in
        # every text, so pooling them would only add a constant, and [UNK] says nothing
        keep = (attention_mask * (input_ids > SEP)).to(torch.float32).unsqueeze(-1)
        x = (self.tok(input_ids) * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        x = self.ln(x)
        return self.proj(x + self.mlp(x))



class AlignMini(nn.Module):
    def __init__(self, vocab, dim=256, max_len=32, width=1.0, text="bag"):
        super().__init__()
        self.image = ImageTower(dim, width)
        self.text = TextTower(vocab, dim, max_len=max_len) if text == "bert" else BagTextTower(vocab, dim)
        # ALIGN learns the softmax temperature; log-parametrised to keep it positive.
        self.log_temp = nn.Parameter(torch.tensor(math.log(0.07)))

    def temperature(self):
        return self.log_temp.exp().clamp(min=0.005, max=1.0)


def contrastive_loss(img, txt, concepts, temperature, smoothing=0.1, text_keys=None):
    """Symmetric normalized-softmax loss; in-batch pairs of the same concept, or with the same alt-text
    (two skin-tone variants both captioned "dark skin tone"), count as positives."""
    img = F.normalize(img, dim=-1)
    txt = F.normalize(txt, dim=-1)
    logits = img @ txt.t() / temperature
    same = concepts[:, None] == concepts[None, :]
    if text_keys is not None:
        same = same | (text_keys[:, None] == text_keys[None, :])
    same = same.float()
    target = same / same.sum(dim=1, keepdim=True)
    n = target.shape[0]
    target = target * (1 - smoothing) + smoothing / n
    loss_i = -(target * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(target * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
    return (loss_i + loss_t) / 2
