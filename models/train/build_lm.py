#!/usr/bin/python3
"""Build the decoder's lexicon + word bigram LM from the TRAINING text only (corpus/train.txt).

Interpolated absolute-discounting bigram (D=0.75) over a lexicon of words seen >= --min-count times,
unknown words mapped to nothing (the decoder is lexicon-constrained). Pruned bigrams (count >= --min-bigram)
are stored with their interpolated log-prob; for other pairs the decoder uses backoff(ctx) + unigram(w).
Natural logs. Writes <model dir>/lm.json.
"""
import argparse
import json
import math
import os
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(HERE, "work", "corpus"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "parley-asr-en", "lm.json"))
    ap.add_argument("--min-count", type=int, default=2)
    ap.add_argument("--min-bigram", type=int, default=2)
    ap.add_argument("--discount", type=float, default=0.75)
    a = ap.parse_args()
    sents = [ln.rstrip("\n").split("\t")[1].split() for ln in open(os.path.join(a.corpus, "train.txt"))]
    uni = Counter(w for s in sents for w in s)
    words = sorted([w for w, c in uni.items() if c >= a.min_count], key=lambda w: (-uni[w], w))
    idx = {w: i for i, w in enumerate(words)}
    S = len(words)  # index of the sentence-start context
    big = Counter()
    for s in sents:
        prev = S
        for w in s:
            i = idx.get(w)
            if i is None:
                prev = None  # unknown word breaks the context
                continue
            if prev is not None:
                big[(prev, i)] += 1
            prev = i
    total = sum(uni[w] for w in words)
    uni_lp = [math.log(uni[w] / total) for w in words]
    ctx_count = Counter()
    ctx_types = Counter()
    for (v, w), c in big.items():
        ctx_count[v] += c
        ctx_types[v] += 1
    D = a.discount
    backoff = []
    for v in range(S + 1):
        cv = ctx_count[v]
        backoff.append(math.log(D * ctx_types[v] / cv) if cv else 0.0)
    bi_ctx, bi_w, bi_lp = [], [], []
    for (v, w), c in sorted(big.items()):
        if c < a.min_bigram:
            continue
        cv = ctx_count[v]
        p = (c - D) / cv + (D * ctx_types[v] / cv) * math.exp(uni_lp[w])
        bi_ctx.append(v)
        bi_w.append(w)
        bi_lp.append(round(math.log(p), 3))
    test = [ln.split() for ln in open(os.path.join(a.corpus, "test.txt"))]
    n = sum(len(s) for s in test)
    oov = sum(1 for s in test for w in s if w not in idx)
    out = {
        "type": "bigram-absolute-discounting",
        "note": "built by models/train/build_lm.py from the training split of the corpus only; natural log",
        "words": words,
        "unigram": [round(x, 3) for x in uni_lp],
        "backoff": [round(x, 3) for x in backoff],
        "bigram_ctx": bi_ctx,
        "bigram_word": bi_w,
        "bigram_logp": bi_lp,
    }
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"lexicon {len(words)} words, bigrams {len(bi_lp)} (of {len(big)}), held-out OOV rate "
          f"{oov / max(1, n):.4f}, {os.path.getsize(a.out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
