#!/usr/bin/python3
"""Build the decoder's lexicon + word trigram LM from the TRAINING text only (corpus/train.txt), plus
optional plain word lists (--extra-words) that only widen the lexicon.

Interpolated Kneser-Ney (default; --smoothing absdisc: absolute discounting on raw counts) over a lexicon of
words seen >= --min-count times, unknown words mapped to nothing (the decoder is lexicon-constrained; an unknown
word breaks the context). Discounts D = n1/(n1+2 n2) per order unless --discount is given.
  unigram: P1(w)     = N1+(.,w) / N1+(.,.)                  (KN: how many distinct words precede w)
  bigram:  P2(w|v)   = max(N1+(.,v,w)-D,0)/N1+(.,v,.) + D*|{w: N1+(.,v,w)>0}|/N1+(.,v,.) * P1(w)
           (raw counts c(<s>,w) for the sentence start, whose bigram is a highest order)
  trigram: P3(w|u,v) = max(c(u,v,w)-D,0)/c(u,v) + D*N1+(u,v,.)/c(u,v) * P2(w|v)
Word-list words get --extra-count as their unigram count and no n-grams.
Stored: bigrams with count >= --min-bigram and trigrams with count >= --min-trigram, each with its
interpolated log-prob; for other pairs the decoder uses backoff(v) + P1(w), and for other triples
backoff(u,v) + P2(w|v). The sentence start is a context word (index = len(words)); the first word of a
sentence is scored by the bigram P2(w|<s>). --min-trigram 0 writes a bigram-only LM. Natural logs. Writes
<model dir>/lm.json.
"""
import argparse
import json
import math
import re
import os
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))


def discount(counts):
    """Ney's estimate D = n1 / (n1 + 2 n2) from the count-of-counts."""
    n1 = sum(1 for c in counts if c == 1)
    n2 = sum(1 for c in counts if c == 2)
    return n1 / (n1 + 2 * n2) if n1 + n2 else 0.75


def extra_words(paths, known):
    """Words of plain word lists (one per line) that fit the model's alphabet and are not in `known`."""
    out = set()
    for path in paths:
        for line in open(path, encoding="utf-8", errors="replace"):
            w = line.strip().lower()
            if w and w not in known and re.fullmatch(r"[a-z]+('[a-z]+)?", w) and len(w) <= 18:
                out.add(w)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.path.join(HERE, "work", "corpus"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "parley-asr-en", "lm.json"))
    ap.add_argument("--min-count", type=int, default=2)
    ap.add_argument("--min-bigram", type=int, default=2)
    ap.add_argument("--min-trigram", type=int, default=2, help="0: no trigrams")
    ap.add_argument("--discount", type=float, default=0.0, help="absolute discount; 0: n1/(n1+2*n2) per order")
    ap.add_argument("--smoothing", choices=["kn", "absdisc"], default="kn",
                    help="interpolated Kneser-Ney, or absolute discounting with raw lower-order counts")
    ap.add_argument("--extra-words", nargs="*", default=[],
                    help="word lists (e.g. /usr/share/dict/american-english) whose words, if missing from the "
                    "training text, join the lexicon with --extra-count as their unigram count and no n-grams")
    ap.add_argument("--extra-count", type=float, default=1.0)
    a = ap.parse_args()
    sents = [ln.rstrip("\n").split("\t")[1].split() for ln in open(os.path.join(a.corpus, "train.txt"))]
    uni = Counter(w for s in sents for w in s)
    words = sorted([w for w, c in uni.items() if c >= a.min_count], key=lambda w: (-uni[w], w))
    extra = sorted(extra_words(a.extra_words, set(uni)))  # never in the training text: no n-grams
    words += extra
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
    if a.smoothing == "kn":
        # Kneser-Ney: a lower order is estimated from how many distinct words precede a word (unigram) or a
        # pair (bigram), not from raw counts; the sentence-start bigrams P(w|<s>) are a highest order (raw).
        left1 = Counter(w for (_v, w) in big)
        left2 = Counter((v, w) for (_u, v, w) in tri)
        counts = {words[i]: c for i, c in left1.items()}  # n-gram keys are word indices
        big_est = Counter({(v, w): (c if v == S else left2[(v, w)]) for (v, w), c in big.items()})
        big_est = Counter({k: c for k, c in big_est.items() if c > 0})
    else:
        counts = {w: uni[w] for w in words if w in uni}
        big_est = big
    counts |= {w: a.extra_count for w in words if w not in counts}  # word-list words (and KN's unseen)
    total = sum(counts.values())
    uni_lp = [math.log(counts[w] / total) for w in words]
    ctx_count = Counter()
    ctx_types = Counter()
    for (v, w), c in big_est.items():
        ctx_count[v] += c
        ctx_types[v] += 1
    D2 = a.discount or discount(big_est.values())
    D3 = a.discount or discount(tri.values())
    def p2(v, w):  # interpolated bigram estimate
        cv = ctx_count[v]
        if not cv:
            return math.exp(uni_lp[w])
        return max(big_est.get((v, w), 0) - D2, 0) / cv + (D2 * ctx_types[v] / cv) * math.exp(uni_lp[w])

    # Pruning keeps n-grams seen at least --min-bigram / --min-trigram times. A context's backoff weight then
    # renormalizes the mass left to the unstored words (ARPA semantics, as the decoder reads them):
    #   P(w|v) = stored, else bo(v) * P1(w);  bo(v) = (1 - sum of stored P(.|v)) / (1 - sum of their P1)
    bi_ctx, bi_w, bi_lp = [], [], []
    kept_hi, kept_lo = Counter(), Counter()
    for (v, w), c in sorted(big.items()):
        if c < a.min_bigram:
            continue
        p = p2(v, w)
        bi_ctx.append(v)
        bi_w.append(w)
        bi_lp.append(round(math.log(p), 3))
        kept_hi[v] += p
        kept_lo[v] += math.exp(uni_lp[w])
    backoff = [0.0] * (S + 1)
    for v in kept_hi:
        backoff[v] = math.log(max(1e-9, 1 - kept_hi[v]) / max(1e-9, 1 - kept_lo[v]))
    bi_map = {(v, w): lp for v, w, lp in zip(bi_ctx, bi_w, bi_lp)}

    def p2_stored(v, w):  # the bigram probability as the decoder computes it
        lp = bi_map.get((v, w))
        return math.exp(lp if lp is not None else backoff[v] + uni_lp[w])

    tri_u, tri_v, tri_w, tri_lp, tri_bo_u, tri_bo_v, tri_bo = [], [], [], [], [], [], []
    if a.min_trigram > 0:
        uv_count, uv_types = Counter(), Counter()
        for (u, v, w), c in tri.items():
            uv_count[(u, v)] += c
            uv_types[(u, v)] += 1
        kept_hi, kept_lo = Counter(), Counter()
        for (u, v, w), c in sorted(tri.items()):
            if c < a.min_trigram:
                continue
            cuv = uv_count[(u, v)]
            p = (c - D3) / cuv + (D3 * uv_types[(u, v)] / cuv) * p2(v, w)
            tri_u.append(u)
            tri_v.append(v)
            tri_w.append(w)
            tri_lp.append(round(math.log(p), 3))
            kept_hi[(u, v)] += p
            kept_lo[(u, v)] += p2_stored(v, w)
        # backoff weights only for contexts that have stored trigrams (others back off with weight 1)
        for (u, v) in sorted(kept_hi):
            tri_bo_u.append(u)
            tri_bo_v.append(v)
            tri_bo.append(round(math.log(max(1e-9, 1 - kept_hi[(u, v)]) / max(1e-9, 1 - kept_lo[(u, v)])), 3))
    name = {"kn": "kneser-ney", "absdisc": "absolute-discounting"}[a.smoothing]
    out = {
        "type": f"bigram-{name}",
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
            "type": f"trigram-{name}",
            "trigram_u": tri_u, "trigram_v": tri_v, "trigram_word": tri_w, "trigram_logp": tri_lp,
            "trigram_backoff_u": tri_bo_u, "trigram_backoff_v": tri_bo_v, "trigram_backoff": tri_bo,
        })
    # held-out perplexity exactly as the decoder scores words (stored n-grams, else backoff), OOVs skipped
    tri_map = {(u, v, w): lp for u, v, w, lp in zip(tri_u, tri_v, tri_w, tri_lp)}
    tri_bo_map = {(u, v): bo for u, v, bo in zip(tri_bo_u, tri_bo_v, tri_bo)}

    def logp(u, v, w):
        lp2 = bi_map.get((v, w), backoff[v] + uni_lp[w])
        if u is None or not tri_lp:
            return lp2
        return tri_map.get((u, v, w), tri_bo_map.get((u, v), 0.0) + lp2)

    test = [ln.split() for ln in open(os.path.join(a.corpus, "test.txt"))]
    n = sum(len(s) for s in test)
    oov = scored = 0
    total_lp = 0.0
    for sent in test:
        u, v = None, S
        for w in sent:
            i = idx.get(w)
            if i is None:
                oov += 1
                u, v = None, S  # as in the decoder: an out-of-lexicon word restarts the context
                continue
            total_lp += logp(u, v, i)
            scored += 1
            u, v = v, i
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print(f"{out['type']}: lexicon {len(words)} words ({len(extra)} from word lists), bigrams {len(bi_lp)} "
          f"(of {len(big)}), trigrams {len(tri_lp)} "
          f"(of {len(tri)}), discounts {D2:.3f} / {D3:.3f}, held-out OOV rate {oov / max(1, n):.4f}, perplexity "
          f"{math.exp(-total_lp / max(1, scored)):.1f}, {os.path.getsize(a.out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
