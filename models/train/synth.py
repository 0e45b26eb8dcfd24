#!/usr/bin/python3
"""Synthesize the training / dev / eval audio with espeak-ng (+ sox, opus-tools) deterministically.

Training voices: 6 English dialects x ~90 espeak-ng variants (minus the held-out ones), random speed,
pitch and word gap. Per-utterance augmentation baked into the audio: small speed perturbation (sox speed),
sample-rate round trips (8 / 11.025 / 12 kHz), light reverb, Opus round trip (opusenc/opusdec, if present).
Noise and gain are added on the fly during training (train.py).

Held out (never used in training): the dialects en-us-nyc and en-gb-x-rp, and the variants in HELD_VARIANTS.
Dev and eval audio use only held-out sentences (corpus/test.txt) spoken by held-out dialect+variant voices.

Outputs:
  work/data/train.bin + train.tsv   int16 16 kHz audio (concatenated) and index (offset, samples, text, voice)
  work/data/dev.bin + dev.tsv       held-out dev set used for validation during training
  models/eval/*.wav + manifest.tsv  the committed held-out eval set (16 kHz mono 16-bit WAV)
"""
import argparse
import os
import re
import random
import shutil
import subprocess
import wave
from multiprocessing import Pool

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN_DIALECTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"]
DIALECT_WEIGHTS = [3, 3, 1, 1, 1, 1]
HELD_DIALECTS = ["en-us-nyc", "en-gb-x-rp"]
HELD_VARIANTS = ["m3", "f4", "klatt3", "Annie", "john", "steph2", "max", "belinda"]
HAVE_OPUS = shutil.which("opusenc") is not None and shutil.which("opusdec") is not None


def all_variants():
    d = None
    for cand in ("/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v", "/usr/share/espeak-ng-data/voices/!v"):
        if os.path.isdir(cand):
            d = cand
            break
    names = sorted(os.listdir(d)) if d else ["m1", "m2", "f1", "f2", "klatt"]
    return [n for n in names if os.path.isfile(os.path.join(d, n))] if d else names


def run(cmd: str, stdin: bytes = b"") -> bytes:
    return subprocess.run(cmd, shell=True, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          check=True).stdout


# Stress marks, tie bars and espeak's word/clause breaks are dropped from the phoneme targets: espeak joins
# function words ("had been" -> "hɐdbɪn"), so its spaces are not word boundaries anyway.
PHONE_DROP = re.compile(r"[\sˈˌ‿͡_]")


def espeak(job) -> tuple:
    """-> (wav bytes, IPA phoneme string). One espeak-ng call: the WAV on stdout, its phonemes on stderr."""
    path = [f"--path={job['path']}"] if job.get("path") else []
    p = subprocess.run(["espeak-ng", *path, "-v", job["voice"], "-s", str(job["speed"]), "-p", str(job["pitch"]), "-g",
                        str(job["gap"]), "--ipa", "--phonout=/dev/stderr", "--stdout", job["text"]],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return p.stdout, PHONE_DROP.sub("", p.stderr.decode("utf-8", "replace"))


def shq(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def synth(job):
    """job: dict with text, voice, speed, pitch, gap, and augmentation params -> (int16 bytes at 16 kHz, phonemes)."""
    wav, phones = espeak(job)
    return post(wav, job), phones


def post(wav: bytes, job) -> bytes:
    """A synthesizer's WAV -> int16 bytes at 16 kHz after the job's channel effects (sox speed / pitch, a
    sample-rate round trip, reverb, or an Opus round trip), digital silence trimmed to 0.1 s margins."""
    effects = []
    if job.get("pitch_cents"):
        effects.append(f"pitch {job['pitch_cents']}")
    if job.get("sp", 1.0) != 1.0:
        effects.append(f"speed {job['sp']:.3f}")
    if job.get("rt"):
        effects.append(f"rate {job['rt']}")
    if job.get("reverb"):
        effects.append(f"reverb {job['reverb']} 50 {job['room']}")
        effects.append("channels 1")
    effects.append("rate 16000")
    if job.get("opus") and HAVE_OPUS:
        raw48 = run(f"sox -R -G -t wav - -t raw -r 48000 -e signed -b 16 -c 1 - {' '.join(effects[:-1])} rate 48000",
                    wav)
        out = run(f"opusenc --quiet --serial 1 --raw --raw-rate 48000 --raw-chan 1 --bitrate {job['opus']} - - | "
                  "opusdec --quiet --no-dither --rate 16000 - -", raw48)
    else:
        out = run(f"sox -R -G -t wav - -t raw -r 16000 -e signed -b 16 -c 1 - {' '.join(effects)}", wav)
    a = np.frombuffer(out, dtype=np.int16)
    # trim leading/trailing digital silence but keep 0.1 s margins
    nz = np.nonzero(np.abs(a) > 64)[0]
    if len(nz):
        a = a[max(0, nz[0] - 1600):nz[-1] + 1600]
    return a.tobytes()


# Channel mixes: (share, low, high) of the sox speed change; (share, bitrates) of the Opus round trip; (cumulative
# share, rates) of a sample-rate round trip instead; (share, reverberance range, room-scale range) of reverb.
CHANNEL_V1 = dict(speed=(0.5, 0.9, 1.1), opus=(0.15, [12, 16, 24, 32]), rate=(0.35, [8000, 11025, 12000, 22050]),
                  reverb=(0.1, (10, 50), (10, 60)))
CHANNEL_V2 = dict(speed=(0.4, 0.92, 1.08), opus=(0.10, [16, 24, 32, 48]),
                  rate=(0.22, [8000, 11025, 11025, 12000, 22050, 22050]), reverb=(0.05, (10, 40), (10, 50)))


def channel(job, rng: random.Random, mix):
    share, lo, hi = mix["speed"]
    if rng.random() < share:
        job["sp"] = rng.uniform(lo, hi)
    r = rng.random()
    if r < mix["opus"][0]:
        job["opus"] = rng.choice(mix["opus"][1])
    elif r < mix["rate"][0]:
        job["rt"] = rng.choice(mix["rate"][1])
    share, reverb, room = mix["reverb"]
    if rng.random() < share:
        job["reverb"] = rng.randint(*reverb)
        job["room"] = rng.randint(*room)
    return job


def train_job(rng: random.Random, text: str, variants):
    dialect = rng.choices(TRAIN_DIALECTS, DIALECT_WEIGHTS)[0]
    v = dialect if rng.random() < 0.15 else dialect + "+" + rng.choice(variants)
    job = dict(text=text, voice=v, speed=rng.randint(125, 235), pitch=rng.randint(15, 85), gap=rng.choice([0, 0, 0, 1, 2, 4]))
    return channel(job, rng, CHANNEL_V1)


# Optional voice-quality lines of a random variant: (share of variants that get it, the line).
VOICE_QUALITY = [
    (0.3, lambda r: f"flutter {r.randint(0, 10)}"),
    (0.3, lambda r: f"roughness {r.randint(0, 5)}"),
    (0.3, lambda r: "breath " + " ".join(str(r.randint(0, 4)) for _ in range(8))),
    (0.3, lambda r: f"voicing {r.randint(70, 140)}"),
    (0.4, lambda r: f"consonants {r.randint(70, 125)} {r.randint(70, 125)}"),
    (0.15, lambda r: f"klatt {r.randint(1, 4)}"),
    (0.15, lambda r: f"echo {r.randint(80, 160)} {r.randint(5, 20)}"),
]


def random_variant(rng: random.Random) -> str:
    """An espeak-ng voice variant file with random pitch, formant frequencies / heights / widths and voice quality,
    in the ranges of the bundled variants. Many more vocal tracts than the ~90 bundled ones, for voices never
    heard in training (the held-out variants are not copied or consulted)."""
    female = rng.random() < 0.45
    base = rng.randint(130, 175) if female else rng.randint(65, 105)
    lines = ["language variant", f"name parley-random", f"gender {'female' if female else 'male'}",
             f"pitch {base} {base + rng.randint(25, 110 if female else 60)}"]
    scale = rng.uniform(1.03, 1.3) if female else rng.uniform(0.9, 1.08)
    for k in range(9):
        freq = round(100 * scale * rng.uniform(0.95, 1.05))
        lines.append(f"formant {k} {freq} {rng.randint(60, 150)} {rng.randint(70, 160)}")
    for share, line in VOICE_QUALITY:
        if rng.random() < share:
            lines.append(line(rng))
    return "\n".join(lines) + "\n"


def random_voice_dir(work: str, n: int, seed: int) -> str:
    """A copy of the espeak-ng data folder with n random variants (parley_r000 ...); returns the --path value."""
    src = next(d for d in ("/usr/lib/x86_64-linux-gnu/espeak-ng-data", "/usr/share/espeak-ng-data")
               if os.path.isdir(d))
    root = os.path.join(work, "espeak")
    dst = os.path.join(root, "espeak-ng-data")
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(src, dst)
    rng = random.Random(seed)
    for i in range(n):
        with open(os.path.join(dst, "voices", "!v", f"parley_r{i:03d}"), "w") as f:
            f.write(random_variant(rng))
    return root


def degrade(job, arng: random.Random):
    """Channel degradation v2 (replaces train_job's): milder and rarer. The v1 mix (Opus at 12 kb/s, 8 kHz
    round trips for 20%, reverb) cost a capacity-bound model accuracy on clean speech. Drawn from its own
    generator, so `rng` (and with it the dev/eval jobs drawn after the training jobs) stays as it was."""
    for k in ("sp", "opus", "rt", "reverb", "room"):
        job.pop(k, None)
    return channel(job, arng, CHANNEL_V2)


def held_job(rng: random.Random, text: str):
    v = rng.choice(HELD_DIALECTS)
    var = rng.choice(HELD_VARIANTS + [None])
    return dict(text=text, voice=v if var is None else f"{v}+{var}", speed=rng.randint(140, 200),
                pitch=rng.randint(30, 70), gap=0)


def existing_rows(jobs, path_bin, path_tsv, voice_of, pcm_of, verify=2):
    """--resume: the rows already in path_tsv must be the first jobs (same text and voice), path_bin must hold
    exactly their audio, and the last `verify` of them are synthesized again and must come out byte-identical
    (synthesis is deterministic), so the data on disk is what this run would make. -> (rows, samples) kept."""
    if not (os.path.exists(path_tsv) and os.path.exists(path_bin)):
        return 0, 0
    lines = open(path_tsv).readlines()
    if lines and (not lines[-1].endswith("\n") or len(lines[-1].split("\t")) != 5):
        lines.pop()  # an interrupted run's last, partial row
        with open(path_tsv, "w") as ft:
            ft.writelines(lines)
    rows = [ln.rstrip("\n").split("\t") for ln in lines]
    samples = 0
    for r in rows:
        if int(r[0]) != samples:
            raise SystemExit(f"{path_tsv}: offsets are not contiguous; delete it and its .bin to start again")
        samples += int(r[1])
    if os.path.getsize(path_bin) < 2 * samples:
        raise SystemExit(f"{path_bin} is shorter than {path_tsv} says; delete both to start again")
    # the audio is flushed before its row, so an interrupted run can leave audio without a row: dropped
    os.truncate(path_bin, 2 * samples)
    for i, (r, j) in enumerate(zip(rows, jobs)):
        if r[2] != j["text"] or r[3] != voice_of(j):
            raise SystemExit(f"{path_tsv} row {i} is not this run's job {i} ({r[2]!r} {r[3]} != {j['text']!r} "
                             f"{voice_of(j)}): other seed, corpus or options; delete it to start again")
    with open(path_bin, "rb") as fb:
        for i in range(max(0, min(len(rows), len(jobs)) - verify), min(len(rows), len(jobs))):
            fb.seek(2 * int(rows[i][0]))
            if fb.read(2 * int(rows[i][1])) != pcm_of(jobs[i]):
                raise SystemExit(f"{path_tsv} row {i}: the stored audio differs from a fresh synthesis of the job")
    print(f"  {path_tsv}: resuming after {len(rows)} rows (checked: jobs match, last {verify} byte-identical)",
          flush=True)
    return len(rows), samples


def write_set(pool, jobs, path_bin, path_tsv, resume=False):
    start, off = existing_rows(jobs, path_bin, path_tsv, lambda j: j["voice"], lambda j: synth(j)[0]) \
        if resume else (0, 0)
    mode = "a" if start else "w"
    with open(path_bin, mode + "b") as fb, open(path_tsv, mode) as ft:
        for i, (a, phones) in enumerate(pool.imap(synth, jobs[start:], chunksize=32), start):
            n = len(a) // 2
            fb.write(a)
            fb.flush()  # audio before its row: an interrupted run resumes cleanly (see existing_rows)
            j = jobs[i]
            ft.write(f"{off}\t{n}\t{j['text']}\t{j['voice']}\t{phones}\n")
            ft.flush()
            off += n
            if i % 5000 == 0 or i == start:
                print(f"  {path_tsv}: {i}/{len(jobs)}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--n-train", type=int, default=40000)
    ap.add_argument("--limit", type=int, default=0, help="synthesize only the first N of the n-train jobs")
    ap.add_argument("--n-dev", type=int, default=300)
    ap.add_argument("--n-eval", type=int, default=120)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--degrade", type=int, default=2, choices=[1, 2], help="channel degradation mix (see degrade)")
    ap.add_argument("--skip-eval", action="store_true", help="do not rewrite the committed eval WAVs")
    ap.add_argument("--resume", action="store_true", help="keep the dev/train rows already made (checked to be "
                    "this run's first jobs) and synthesize only the rest")
    ap.add_argument("--random-voices", type=int, default=0, help="random espeak-ng variants to generate")
    ap.add_argument("--random-voice-p", type=float, default=0.5, help="share of training jobs that use one")
    ap.add_argument("--n-extra", type=int, default=0, help="training utterances beyond --n-train, from the "
                    "sentences it left unused (own generator: the dev/eval draws stay as they are)")
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--eval-dir", default=os.path.join(HERE, "..", "eval"))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    corpus = os.path.join(a.work, "corpus")
    train = [ln.rstrip("\n").split("\t") for ln in open(os.path.join(corpus, "train.txt"))]
    test = [ln.strip() for ln in open(os.path.join(corpus, "test.txt")) if ln.strip()]
    natural = [s for src, s in train if src in ("fortune", "example")]
    gloss = [s for src, s in train if src not in ("fortune", "example")]
    rng.shuffle(natural)
    rng.shuffle(gloss)
    n_nat = min(len(natural), int(a.n_train * 0.75))
    texts = natural[:n_nat] + gloss[:a.n_train - n_nat]
    rng.shuffle(texts)
    variants = [v for v in all_variants() if v not in HELD_VARIANTS]
    train_jobs = [train_job(rng, t, variants) for t in texts]
    if a.degrade == 2:
        arng = random.Random(a.seed + 77)
        train_jobs = [degrade(j, arng) for j in train_jobs]
    # extra jobs and random voices come from their own generator, after the rng draws above and below are fixed
    xrng = random.Random(a.seed + 99)
    spare = natural[n_nat:] + gloss[a.n_train - n_nat:]
    xrng.shuffle(spare)
    extra_jobs = [degrade(train_job(xrng, t, variants), xrng) for t in spare[:a.n_extra]]

    rng.shuffle(test)
    eval_texts = [s for s in test if 4 <= len(s.split()) <= 11][:a.n_eval]
    dev_texts = [s for s in test if s not in set(eval_texts)][:a.n_dev]
    dev_jobs = [held_job(rng, t) for t in dev_texts]
    eval_jobs = [held_job(rng, t) for t in eval_texts]

    train_jobs += extra_jobs
    if a.random_voices:
        path = random_voice_dir(a.work, a.random_voices, a.seed + 5)
        for j in train_jobs:
            if xrng.random() < a.random_voice_p:
                j["voice"] = j["voice"].split("+")[0] + f"+parley_r{xrng.randrange(a.random_voices):03d}"
                j["path"] = path
    if a.limit:
        train_jobs = train_jobs[:a.limit]
    data = os.path.join(a.work, "data")
    os.makedirs(data, exist_ok=True)
    os.makedirs(a.eval_dir, exist_ok=True)
    print(f"opus round trip: {HAVE_OPUS}; train {len(train_jobs)} dev {len(dev_jobs)} eval {len(eval_jobs)}", flush=True)
    with Pool(a.procs) as pool:
        # eval set: committed WAVs
        with open(os.path.join(a.eval_dir, "manifest.tsv") if not a.skip_eval else os.devnull, "w") as mf:
            mf.write("file\tvoice\ttext\n")
            for i, (pcm, _phones) in enumerate(pool.imap(synth, eval_jobs if not a.skip_eval else [], chunksize=8)):
                name = f"heldout_{i:03d}.wav"
                with wave.open(os.path.join(a.eval_dir, name), "wb") as w:
                    w.setnchannels(1)
                    w.setsampwidth(2)
                    w.setframerate(16000)
                    w.writeframes(pcm)
                mf.write(f"{name}\t{eval_jobs[i]['voice']}\t{eval_jobs[i]['text']}\n")
        write_set(pool, dev_jobs, os.path.join(data, "dev.bin"), os.path.join(data, "dev.tsv"), a.resume)
        write_set(pool, train_jobs, os.path.join(data, "train.bin"), os.path.join(data, "train.tsv"), a.resume)
    print("done")


if __name__ == "__main__":
    main()
