"""Held-out evaluation of align-mini: retrieval, zero-shot groups and image+text arithmetic."""
import re

import numpy as np
import torch
import torch.nn.functional as F

from data import pad, to_pixels

KS = (1, 5, 10)


@torch.no_grad()
def embed_images(model, u8, batch=512):
    out = [F.normalize(model.image(to_pixels(u8[i:i + batch])), dim=-1) for i in range(0, len(u8), batch)]
    return torch.cat(out)


@torch.no_grad()
def embed_texts(model, tok, texts, batch=512):
    out = []
    for i in range(0, len(texts), batch):
        ids, mask = pad([tok.encode(t) for t in texts[i:i + batch]])
        out.append(F.normalize(model.text(ids, mask), dim=-1))
    return torch.cat(out)


def recall(sim, correct):
    """sim: [Q, G]; correct: bool [Q, G]. Recall@K = a correct item is within the top K."""
    order = sim.argsort(dim=1, descending=True)
    hits = torch.gather(correct, 1, order)
    first = torch.where(hits.any(1), hits.float().argmax(1), torch.full((sim.shape[0],), 10**9))
    return {f"R@{k}": float((first < k).float().mean()) for k in KS}


def retrieval(model, tok, meta, images, sets):
    idx = [i for i, m in enumerate(meta) if m["set"] in sets]
    concepts = np.array([meta[i]["concept"] for i in idx])
    img = embed_images(model, images[idx])
    # one query text per concept: the emoji's CLDR label, or the icon's name
    labels = {}
    for i in idx:
        labels.setdefault(meta[i]["concept"], meta[i]["label"])
    lc = np.array(list(labels.keys()))
    txt = embed_texts(model, tok, list(labels.values()))
    correct = torch.from_numpy(lc[:, None] == concepts[None, :])
    t2i = recall(txt @ img.t(), correct)
    i2t = recall(img @ txt.t(), correct.t().contiguous())
    return {"images": len(idx), "queries": len(lc), "text_to_image": t2i, "image_to_text": i2t}


GROUP_TEMPLATE = "{} emoji"


def zero_shot_groups(model, tok, meta, images, sets):
    idx = [i for i, m in enumerate(meta) if m["set"] in sets and m.get("group") and m["group"] != "components"]
    groups = sorted({meta[i]["group"] for i in idx})
    txt = embed_texts(model, tok, [GROUP_TEMPLATE.format(g) for g in groups])
    img = embed_images(model, images[idx])
    pred = (img @ txt.t()).argmax(1).numpy()
    truth = np.array([groups.index(meta[i]["group"]) for i in idx])
    return {"images": len(idx), "groups": groups, "template": GROUP_TEMPLATE, "accuracy": float((pred == truth).mean()),
            "chance": float(np.bincount(truth).max() / len(truth))}


def modifier_pairs(labels):
    """(base, variant, modifier) label triples: 'waving hand' → 'waving hand: medium skin tone' + 'medium skin tone'."""
    words = {l: re.findall(r"[a-z0-9]+", l) for l in labels}
    pairs = []
    for v in labels:
        if ":" in v:
            base, mod = v.split(":", 1)
            if base in labels and "," not in mod:
                pairs.append((base, v, mod.strip(), "skin tone" if "skin tone" in mod else "other"))
            continue
        for g in ("man", "woman"):
            if v.startswith(g + " ") and "person " + v[len(g) + 1:] in labels:
                pairs.append(("person " + v[len(g) + 1:], v, g, "gender"))
    for b in labels:
        for v in labels:
            if b == v or ":" in v or v.startswith(("man ", "woman ")):
                continue
            wb, wv = words[b], words[v]
            extra = [w for w in wv if w not in wb]
            if set(wb) <= set(wv) and 0 < len(extra) <= 3 and len(wv) == len(wb) + len(extra):
                pairs.append((b, v, " ".join(extra), "other"))
    return pairs


def arithmetic(model, tok, meta, images, sets):
    results = {}
    for s in sets:
        idx = [i for i, m in enumerate(meta) if m["set"] == s and m["concept"].startswith("emoji:")]
        by_label = {}
        for i in idx:
            by_label.setdefault(meta[i]["label"], i)
        pairs = modifier_pairs(set(by_label))
        if not pairs:
            continue
        gallery = list(by_label.values())
        pos = {g: k for k, g in enumerate(gallery)}
        img = embed_images(model, images[gallery])
        mods = sorted({p[2] for p in pairs})
        mtxt = embed_texts(model, tok, mods)
        qi = img[[pos[by_label[p[0]]] for p in pairs]]
        qt = mtxt[[mods.index(p[2]) for p in pairs]]
        correct = torch.zeros(len(pairs), len(gallery), dtype=torch.bool)
        excl = torch.zeros_like(correct)
        for r, p in enumerate(pairs):
            correct[r, pos[by_label[p[1]]]] = True
            excl[r, pos[by_label[p[0]]]] = True  # the query image itself is not an answer
        out = {}
        for name, q in (("image+text", F.normalize(qi + qt, dim=-1)), ("image only", qi), ("text only", qt)):
            sim = (q @ img.t()).masked_fill(excl, -2)
            out[name] = recall(sim, correct)
            for kind in ("skin tone", "gender", "other"):
                rows = [r for r, p in enumerate(pairs) if p[3] == kind]
                if rows:
                    out.setdefault("by kind", {}).setdefault(kind, {"pairs": len(rows)})[name] = recall(sim[rows], correct[rows])
        out["pairs"] = len(pairs)
        out["examples"] = [list(p[:3]) for p in pairs[:: max(1, len(pairs) // 6)]][:6]
        results[s] = out
    return results


def everyday(model, tok, meta, images, sets, queries, ks=(1, 5)):
    """Words people type ("dog", "birthday cake") against a whole set; a hit is any image whose CLDR name is one
    of the query's accepted labels. Queries with no accepted image in the set are left out."""
    results = {}
    for s in sets:
        idx = [i for i, m in enumerate(meta) if m["set"] == s]
        labels = np.array([meta[i]["label"] for i in idx])
        usable = [q for q in queries if np.isin(q["labels"], labels).any()]
        if not usable:
            continue
        img = embed_images(model, images[idx])
        txt = embed_texts(model, tok, [q["q"] for q in usable])
        correct = torch.from_numpy(np.stack([np.isin(labels, q["labels"]) for q in usable]))
        order = (txt @ img.t()).argsort(dim=1, descending=True)
        hits = torch.gather(correct, 1, order)
        first = hits.float().argmax(1)
        out = {"queries": len(usable)}
        out.update({f"success@{k}": float((first < k).float().mean()) for k in ks})
        out["missed@5"] = [q["q"] for q, f in zip(usable, first.tolist()) if f >= 5]
        results[s] = out
    return results


def cross_style(model, meta, images, sets):
    """Image → image across styles: an emoji drawn in set A finds the same emoji drawn in set B (R@1/@5/@10)."""
    emb = {s: ([i for i, m in enumerate(meta) if m["set"] == s and m["concept"].startswith("emoji:")]) for s in sets}
    vec = {s: embed_images(model, images[idx]) for s, idx in emb.items()}
    results = {}
    for a in sets:
        for b in sets:
            if a == b:
                continue
            ca = np.array([meta[i]["concept"] for i in emb[a]])
            cb = np.array([meta[i]["concept"] for i in emb[b]])
            q = np.isin(ca, cb)
            correct = torch.from_numpy(ca[q][:, None] == cb[None, :])
            results[f"{a} → {b}"] = dict(queries=int(q.sum()), **recall(vec[a][torch.from_numpy(q)] @ vec[b].t(), correct))
    return results


def mean_over(d, key):
    vals = [v[key] for v in d.values()]
    return sum(vals) / len(vals) if vals else float("nan")


def headline(metrics, emoji_sets):
    """The issue's targets, averaged over the held-out emoji sets (unweighted mean of the per-set numbers)."""
    ret = {s: metrics["retrieval"][s]["text_to_image"] for s in emoji_sets if s in metrics["retrieval"]}
    ar = {s: metrics["arithmetic"][s]["image+text"] for s in emoji_sets if s in metrics["arithmetic"]}
    return {"text→image R@1": mean_over(ret, "R@1"), "text→image R@10": mean_over(ret, "R@10"),
            "image→image R@10": mean_over(metrics["cross_style"], "R@10"), "image→image R@1": mean_over(metrics["cross_style"], "R@1"),
            "arithmetic R@1": mean_over(ar, "R@1"),
            "everyday success@1": mean_over(metrics["everyday"], "success@1"), "everyday success@5": mean_over(metrics["everyday"], "success@5")}
