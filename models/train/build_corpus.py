#!/usr/bin/python3
"""Build the English text corpus for the Parley recognizer from offline Debian sources.

Sources: fortune-mod/fortunes (/usr/share/games/fortunes), WordNet glosses and usage examples
(/usr/share/wordnet/data.*), and plain-text README files under /usr/share/doc.

Every sentence is normalized to the model's character vocabulary (lowercase a-z, apostrophe, space)
and split deterministically (hash of the sentence + seed) into train / held-out test. The held-out
sentences never enter the training audio or the decoder's lexicon / n-gram counts.

Outputs (in --out, default models/train/work/corpus):
  train.txt   all training sentences (one per line) -> audio subset + decoder LM
  test.txt    held-out sentences (natural ones: fortunes + WordNet examples)
"""
import argparse
import glob
import hashlib
import os
import re

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
    "sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def num_words(n: int) -> str:
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        r = n % 100
        return ONES[n // 100] + " hundred" + ("" if r == 0 else " and " + num_words(r))
    if n < 1000000:
        r = n % 1000
        return num_words(n // 1000) + " thousand" + ("" if r == 0 else " " + num_words(r))
    return " ".join(ONES[int(d)] for d in str(n))


def expand_number(m: re.Match) -> str:
    s = m.group(0)
    n = int(s)
    if len(s) == 4 and 1100 <= n <= 2099 and n % 100 != 0 and not (2000 <= n <= 2009):  # years
        return num_words(n // 100) + " " + (num_words(n % 100) if n % 100 >= 10 else "oh " + num_words(n % 100))
    if len(s) > 7:
        return " ".join(ONES[int(d)] for d in s)
    return num_words(n)


VOWEL = re.compile(r"[aeiouy]")


def normalize(s: str):
    s = s.replace("\u2019", "'").replace("`", "'").replace("&", " and ").replace("%", " percent ")
    s = s.lower()
    s = re.sub(r"(\d),(\d{3})", r"\1\2", s)
    s = re.sub(r"\d+", lambda m: " " + expand_number(m) + " ", s)
    s = re.sub(r"[-/_]", " ", s)
    s = re.sub(r"[\"(),.!?;:\[\]{}<>*]", " ", s)
    # quotes used as quotation marks, not apostrophes
    s = re.sub(r"(^|\s)'+|'+(\s|$)", " ", s)
    s = re.sub(r"\s+", " ", s).strip()
    if not s or re.search(r"[^a-z' ]", s):
        return None
    words = s.split()
    for w in words:
        core = w.replace("'", "")
        if not core:
            return None
        # abbreviations / letter strings that espeak would spell or expand (mr, st, etc, xyz)
        if len(core) >= 2 and not VOWEL.search(core):
            return None
        if len(core) == 1 and core not in ("a", "i", "o"):
            return None
        if w.count("'") > 1 or len(core) > 18:
            return None
    if len(words) < 3 or len(words) > 16 or len(s) > 110:
        return None
    return s


def split_sentences(text: str):
    text = re.sub(r"\s+", " ", text)
    for part in re.split(r"(?<=[.!?;:])\s+|\s--\s", text):
        yield part


def fortunes():
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if "." in os.path.basename(path) or os.path.isdir(path):
            continue
        try:
            data = open(path, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        for block in data.split("\n%\n"):
            lines = [ln for ln in block.split("\n") if not ln.strip().startswith("--")]
            for s in split_sentences(" ".join(lines)):
                yield "fortune", s


def wordnet():
    for pos in ("noun", "verb", "adj", "adv"):
        for line in open(f"/usr/share/wordnet/data.{pos}", encoding="utf-8", errors="replace"):
            if line.startswith("  ") or "|" not in line:
                continue
            gloss = line.split("|", 1)[1]
            for part in gloss.split(";"):
                part = part.strip()
                if part.startswith('"'):
                    for ex in re.findall(r'"([^"]+)"', part):
                        yield "example", ex
                elif part:
                    yield "gloss", part


def docs():
    files = sorted(glob.glob("/usr/share/doc/*/README")) + sorted(glob.glob("/usr/share/doc/*/README.txt"))
    for path in files:
        try:
            data = open(path, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        for para in data.split("\n\n"):
            for s in split_sentences(para):
                yield "doc", s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "work", "corpus"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--test-per-mille", type=int, default=15)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    seen = set()
    train, test = [], []
    stats = {}
    for gen in (fortunes(), wordnet(), docs()):
        for src, raw in gen:
            s = normalize(raw)
            if s is None or s in seen:
                continue
            seen.add(s)
            stats[src] = stats.get(src, 0) + 1
            h = int(hashlib.sha1(f"{a.seed}:{s}".encode()).hexdigest()[:8], 16) % 1000
            if h < a.test_per_mille:
                if src in ("fortune", "example") and 4 <= len(s.split()) <= 14:
                    test.append(s)
                # held-out glosses/docs are simply dropped (never used for training)
            else:
                train.append((src, s))
    with open(os.path.join(a.out, "train.txt"), "w") as f:
        for src, s in train:
            f.write(f"{src}\t{s}\n")
    with open(os.path.join(a.out, "test.txt"), "w") as f:
        for s in test:
            f.write(s + "\n")
    print("sources:", stats, "train:", len(train), "test:", len(test))


if __name__ == "__main__":
    main()
