#!/usr/bin/python3
"""Build the decoder's lexicon + word trigram LM from the TRAINING text only (corpus/train.txt).

Interpolated absolute discounting (D=0.75) over a lexicon of words seen >= --min-count times, unknown words
mapped to nothing (the decoder is lexicon-constrained; an unknown word breaks the context).
  bigram:  P2(w|v)   = max(c(v,w)-D,0)/c(v) + D*N1+(v,.)/c(v) * P1(w)
  trigram: P3(w|u,v) = max(c(u,v,w)-D,0)/c(u,v) + D*N1+(u,v,.)/c(u,v) * P2(w|v)
Stored: bigrams with count >= --min-bigram and trigrams with count >= --min-trigram, each with its
interpolated log-prob; for other pairs the decoder uses backoff(v) + P1(w), and for other triples
backoff(u,v) + P2(w|v). The sentence start is a context word (index = len(words)); the first word of a
sentence is scored by the bigram P2(w|<s>). --min-trigram 0 writes a bigram-only LM. Natural logs. Writes
<model dir>/lm.json.
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
    ap.add_argument("--min-trigram", type=int, default=2, help="0: no trigrams")
    ap.add_argument("--discount", type=float, default=0.75)
    a = ap.parse_args()
    sents = [ln.rstrip("\n").split("\t")[1].split() for ln in open(os.path.join(a.corpus, "train.txt"))]
    uni = Counter(w for s in sents for w in s)
    words = sorted([w for w, c in uni.items() if c >= a.min_count], key=lambda w: (-uni[w], w))
    idx = {w: i for i, w in enumerate(words)}
    S = len(words)  # index of the sentence-start context
    big = Counter()
    tri = Counter()
    for s in sents:
        prev2, prev = None, S
        for w in s:
            i = idx.get(w)
            if i is None:
                prev2, prev = None, None  # unknown word breaks the context
                continue
            if prev is not None:
                big[(prev, i)] += 1
                if prev2 is not None:
                    tri[(prev2, prev, i)] += 1
            prev2, prev = prev, i
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

    def p2(v, w):
        cv = ctx_count[v]
        if not cv:
            return math.exp(uni_lp[w])
        return max(big.get((v, w), 0) - D, 0) / cv + (D * ctx_types[v] / cv) * math.exp(uni_lp[w])

    tri_u, tri_v, tri_w, tri_lp, tri_bo_u, tri_bo_v, tri_bo = [], [], [], [], [], [], []
    if a.min_trigram > 0:
        uv_count, uv_types = Counter(), Counter()
        for (u, v, w), c in tri.items():
            uv_count[(u, v)] += c
            uv_types[(u, v)] += 1
        kept_ctx = set()
        for (u, v, w), c in sorted(tri.items()):
            if c < a.min_trigram:
                continue
            cuv = uv_count[(u, v)]
            p = (c - D) / cuv + (D * uv_types[(u, v)] / cuv) * p2(v, w)
            tri_u.append(u)
            tri_v.append(v)
            tri_w.append(w)
            tri_lp.append(round(math.log(p), 3))
            kept_ctx.add((u, v))
        # backoff weights only for contexts that have stored trigrams (others back off with weight 1)
        for (u, v) in sorted(kept_ctx):
            tri_bo_u.append(u)
            tri_bo_v.append(v)
            tri_bo.append(round(math.log(D * uv_types[(u, v)] / uv_count[(u, v)]), 3))
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
    if tri_lp:
        out.update({
            "type": "trigram-absolute-discounting",
            "trigram_u": tri_u, "trigram_v": tri_v, "trigram_word": tri_w, "trigram_logp": tri_lp,
            "trigram_backoff_u": tri_bo_u, "trigram_backoff_v": tri_bo_v, "trigram_backoff": tri_bo,
        })
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"lexicon {len(words)} words, bigrams {len(bi_lp)} (of {len(big)}), trigrams {len(tri_lp)} "
          f"(of {len(tri)}), held-out OOV rate "
          f"{oov / max(1, n):.4f}, {os.path.getsize(a.out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
