"""A BERT-style WordPiece tokenizer built from the corpus, saved as a Hugging Face tokenizer.json.

The Python side mirrors what the `tokenizers` runtime does with that file (BertNormalizer,
BertPreTokenizer, WordPiece, [CLS] … [SEP]); reference.json pins the ids so any drift is caught.
"""
import collections
import json
import re
import unicodedata

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD, UNK, CLS, SEP = 0, 1, 2, 3


def normalize(text):
    text = "".join(" " if unicodedata.category(c).startswith("C") and c not in "\t\n\r" else c for c in text)
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in text if unicodedata.category(c) != "Mn")


def _is_punct(c):
    o = ord(c)
    if 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def pre_tokenize(text):
    out = []
    for word in normalize(text).split():
        cur = ""
        for c in word:
            if _is_punct(c):
                if cur:
                    out.append(cur)
                out.append(c)
                cur = ""
            else:
                cur += c
        if cur:
            out.append(cur)
    return out


def build_vocab(texts, max_words=7000, max_pieces=3000):
    words = collections.Counter(w for t in texts for w in pre_tokenize(t))
    chars = sorted({c for w in words for c in w})
    vocab = list(SPECIALS) + chars + ["##" + c for c in chars]
    seen = set(vocab)
    for w, n in words.most_common(max_words):
        if n >= 2 and w not in seen:
            vocab.append(w)
            seen.add(w)
    pieces = collections.Counter()
    for w, n in words.items():
        for k in range(3, min(6, len(w)) + 1):
            pieces[w[:k]] += n
        for k in range(2, min(5, len(w)) + 1):
            pieces["##" + w[-k:]] += n
    for p, n in pieces.most_common(max_pieces):
        if n >= 10 and p not in seen:
            vocab.append(p)
            seen.add(p)
    return vocab


class WordPiece:
    def __init__(self, vocab, max_len):
        self.vocab = {t: i for i, t in enumerate(vocab)}
        self.max_len = max_len
        # looked up, not assumed: align-mini puts the specials first, a BERT vocabulary at 0 and 100–103
        self.unk, self.cls, self.sep = self.vocab["[UNK]"], self.vocab["[CLS]"], self.vocab["[SEP]"]

    def word_ids(self, word, whole=True):
        """Greedy longest-match-first, as the `tokenizers` WordPiece model does; whole=False skips the
        whole-word entry, giving the word's sub-word pieces (training-time piece dropout only)."""
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end, found = len(word) - (0 if whole or start > 0 or len(word) < 2 else 1), None
            while start < end:
                piece = ("##" if start > 0 else "") + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            ids.append(found)
            start = end
        return ids

    def encode(self, text, piece_dropout=0.0, rng=None):
        words = pre_tokenize(text)
        keep = [True] * len(words) if not piece_dropout else [rng.random() >= piece_dropout for _ in words]
        ids = [i for w, k in zip(words, keep) for i in self.word_ids(w, k)]
        return [self.cls] + ids[: self.max_len - 2] + [self.sep]


def tokenizer_json(vocab, max_len):
    ids = {t: i for i, t in enumerate(vocab)}
    return {
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": max_len, "strategy": "LongestFirst", "stride": 0},
        "padding": None,
        "added_tokens": [
            {"id": ids[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
            for t in SPECIALS
        ],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True, "strip_accents": None, "lowercase": True},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in ("[CLS]", "[SEP]")},
        },
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                  "vocab": ids},
    }


def save(vocab, max_len, path):
    with open(path, "w") as f:
        json.dump(tokenizer_json(vocab, max_len), f, ensure_ascii=False)
