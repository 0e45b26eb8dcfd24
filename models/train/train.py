#!/usr/bin/python3
"""Train the Parley CTC recognizer on the espeak-ng data made by synth.py. Deterministic given --seed
(fixed process and thread counts, no data-loader workers, all randomness from seeded generators).

Losses: character CTC on the output, plus an intermediate CTC on espeak-ng's IPA phonemes (model.py) whose
weight falls linearly from --phone-weight to --phone-weight-end. One warmup + cosine schedule, AdamW, EMA of
the weights (exported). Data parallel over --ddp one-thread processes (gloo).

On-the-fly augmentation: additive noise (white / pink / brown / babble from other training utterances) at
--snr-lo..30 dB SNR on --noise-p of the utterances, random leading/trailing silence, light SpecAugment; then
the same per-utterance zero-mean / unit-variance normalization that Transformers.js' Wav2Vec2FeatureExtractor
applies (do_normalize=true).
"""
import argparse
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

from model import VOCAB, CtcModel

# oneDNN (mkldnn) convolutions off: in Debian's torch 1.13 (oneDNN 2.6.3) on this machine's AVX-512 EPYC, the
# backward of the first, stride-2 convolution (whose input needs no gradient) returns wrong weight and bias
# gradients that change from run to run and are now and then 1e5-1e14 times too large. That was the source of
# the "non-finite gradient norm" steps in earlier runs, and every earlier model trained its first layer on
# garbage gradients. check_grads.py shows it; the native kernels cost ~8% more time per step.
torch.backends.mkldnn.enabled = False

HERE = os.path.dirname(os.path.abspath(__file__))
CHAR2ID = {c: i for i, c in enumerate(VOCAB)}


def encode(text):
    return [CHAR2ID["|" if c == " " else c] for c in text]


def load_set(work, name, data="data"):
    """-> (int16 memmap, [(offset, samples, text, phonemes)]); phonemes is "" in data from an older synth.py."""
    rows = [ln.rstrip("\n").split("\t") for ln in open(os.path.join(work, data, f"{name}.tsv"))]
    audio = np.memmap(os.path.join(work, data, f"{name}.bin"), dtype=np.int16, mode="r")
    items = [(int(r[0]), int(r[1]), r[2], r[4] if len(r) > 4 else "") for r in rows]
    return audio, items


def load_sets(work, spec):
    """spec: comma-separated "dir/name[:limit]" (e.g. "data-flite/train,data/train:8000") -> one (audio, items)
    with the sets concatenated in order, each cut to its first `limit` utterances. One set without a limit stays
    a memmap (the from-scratch recipe); a mix is copied into memory."""
    parts = []
    for p in spec.split(","):
        path, _, limit = p.partition(":")
        d, name = os.path.split(path)
        audio, items = load_set(os.path.join(work, d), name, data="")
        if limit:
            if len(items) < int(limit):
                raise SystemExit(f"{path}: {len(items)} utterances, fewer than the {limit} asked for")
            items = items[:int(limit)]
        parts.append((audio, items))
    if len(parts) == 1 and ":" not in spec:
        return parts[0]
    chunks, out, off = [], [], 0
    for audio, items in parts:
        for o, n, t, ph in items:
            chunks.append(audio[o:o + n])
            out.append((off, n, t, ph))
            off += n
    return np.concatenate(chunks), out


def phone_vocab(items, min_count=20):
    """IPA code points seen at least min_count times in the training phonemes; index 0 is the CTC blank, the
    last index stands for the rare rest."""
    counts = {}
    for it in items:
        for ch in it[3]:
            counts[ch] = counts.get(ch, 0) + 1
    return ["<blank>"] + sorted(c for c, n in counts.items() if n >= min_count) + ["<other>"]


def normalize(x):
    m = x.mean()
    v = x.var()
    return (x - m) / np.sqrt(v + 1e-7)


class NoiseBank:
    def __init__(self, rng: np.random.Generator, seconds=30):
        n = 16000 * seconds
        white = rng.standard_normal(n).astype(np.float32)
        spec = np.fft.rfft(rng.standard_normal(n))
        f = np.arange(len(spec)) + 1.0
        pink = np.fft.irfft(spec / np.sqrt(f), n).astype(np.float32)
        brown = np.fft.irfft(spec / f, n).astype(np.float32)
        self.kinds = [white / white.std(), pink / pink.std(), brown / brown.std()]


def augment(x, rng: np.random.Generator, bank: NoiseBank, audio, items, noise_p=0.65, snr_lo=0.0):
    if rng.random() < 0.3:
        a, b = rng.integers(0, 6400, size=2)
        x = np.concatenate([np.zeros(a, np.float32), x, np.zeros(b, np.float32)])
    if rng.random() < noise_p:
        n = len(x)
        r = rng.random()
        if r < 0.3:
            o, ln = items[rng.integers(len(items))][:2]
            src = audio[o:o + ln].astype(np.float32)
            noise = np.zeros(n, np.float32)
            if ln:
                reps = int(math.ceil(n / ln))
                noise = np.tile(src, reps)[:n]
            snr = rng.uniform(max(5.0, snr_lo), 25)
        else:
            kind = bank.kinds[0 if r < 0.55 else 1 if r < 0.85 else 2]
            s = rng.integers(0, len(kind) - n) if len(kind) > n else 0
            noise = kind[s:s + n]
            if len(noise) < n:
                noise = np.resize(noise, n)
            snr = rng.uniform(snr_lo, 30)
        ps = float(np.mean(x * x)) + 1e-9
        pn = float(np.mean(noise * noise)) + 1e-9
        x = x + noise * math.sqrt(ps / (pn * 10 ** (snr / 10)))
    return x


def make_batches(items, rng: random.Random, max_samples, max_utts, shuffle=True):
    order = sorted(range(len(items)), key=lambda i: items[i][1] + rng.uniform(0, 8000))
    batches, cur, cur_max = [], [], 0
    for i in order:
        n = items[i][1] + 6400
        if cur and (max(cur_max, n) * (len(cur) + 1) > max_samples or len(cur) >= max_utts):
            batches.append(cur)
            cur, cur_max = [], 0
        cur.append(i)
        cur_max = max(cur_max, n)
    if cur:
        batches.append(cur)
    if shuffle:
        rng.shuffle(batches)
    return batches


def collate(idx, audio, items, rng=None, bank=None, noise_p=0.65, snr_lo=0.0, phone_ids=None):
    xs, ys, ps = [], [], []
    for i in idx:
        o, n, t, ph = items[i]
        if phone_ids is not None:
            other = len(phone_ids) + 1
            ps.append([phone_ids.get(c, other) for c in ph])
        x = audio[o:o + n].astype(np.float32) / 32768.0
        if rng is not None:
            x = augment(x, rng, bank, audio, items, noise_p, snr_lo)
        xs.append(normalize(x).astype(np.float32))
        ys.append(encode(t))
    lens = torch.tensor([len(x) for x in xs], dtype=torch.long)
    X = torch.zeros(len(xs), int(lens.max()))
    for j, x in enumerate(xs):
        X[j, :len(x)] = torch.from_numpy(x)
    y_lens = torch.tensor([len(y) for y in ys], dtype=torch.long)
    Y = torch.tensor([c for y in ys for c in y], dtype=torch.long)
    if phone_ids is not None:
        p_lens = torch.tensor([len(p) for p in ps], dtype=torch.long)
        return X, lens, Y, y_lens, torch.tensor([c for p in ps for c in p], dtype=torch.long), p_lens
    return X, lens, Y, y_lens


def greedy(logits, frames):
    out = []
    ids = logits.argmax(-1)
    for b in range(ids.shape[0]):
        prev, s = -1, []
        for t in ids[b, :frames[b]].tolist():
            if t != prev and t != 0:
                s.append(VOCAB[t])
            prev = t
        out.append("".join(s).replace("|", " ").strip())
    return out


def edit_distance(a, b):
    d = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(b) + 1):
            cur = d[j]
            d[j] = min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
            prev = cur
    return d[len(b)]


def evaluate(model, audio, items, bs=32):
    model.eval()
    ce = cn = we = wn = 0
    order = sorted(range(len(items)), key=lambda i: items[i][1])
    with torch.no_grad():
        for s in range(0, len(order), bs):
            idx = order[s:s + bs]
            X, lens, _, _ = collate(idx, audio, items)
            logits = model(X, lens)
            hyps = greedy(logits, model.frames_for(lens).tolist())
            for i, h in zip(idx, hyps):
                ref = items[i][2]
                ce += edit_distance(ref, h)
                cn += len(ref)
                we += edit_distance(ref.split(), h.split())
                wn += len(ref.split())
    model.train()
    return ce / cn, we / wn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--steps", type=int, default=7000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=800)
    ap.add_argument("--batch-seconds", type=float, default=48.0, help="audio per batch and process")
    ap.add_argument("--max-utts", type=int, default=64)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--heads", type=int, default=2)
    ap.add_argument("--sortagrad", type=int, default=1)
    ap.add_argument("--n-dev", type=int, default=150)
    ap.add_argument("--dropout", type=float, default=0.05)
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--threads", type=int, default=1, help="1 is far more efficient when the CPU is oversubscribed")
    ap.add_argument("--pre", type=int, default=2, help="conv blocks at 20 ms before the time reduction")
    ap.add_argument("--mid", type=int, default=6, help="attention + conv blocks at 40 ms")
    ap.add_argument("--post", type=int, default=1, help="conv blocks at 20 ms after the upsampling")
    ap.add_argument("--kernel", type=int, default=15, help="depthwise conv kernel (frames)")
    ap.add_argument("--d", type=int, default=224)
    ap.add_argument("--ff", type=int, default=672)
    ap.add_argument("--phone-weight", type=float, default=0.4,
                    help="weight of the intermediate phoneme CTC loss (0: character CTC only)")
    ap.add_argument("--phone-weight-end", type=float, default=0.1,
                    help="phoneme CTC weight reached linearly at the last step (-1: constant)")
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--bench", type=int, default=0, help="only time this many steps")
    ap.add_argument("--init", default="", help="stage 2: start from this checkpoint's raw weights (and its "
                    "log-mel constants) instead of a random init")
    ap.add_argument("--schedule", default="cosine", choices=["invsqrt", "cosine"],
                    help="cosine: warmup then cosine decay to --min-lr at --steps (an annealed final model)")
    ap.add_argument("--min-lr", type=float, default=1e-5)
    ap.add_argument("--noise-p", type=float, default=0.5, help="share of utterances with additive noise")
    ap.add_argument("--snr-lo", type=float, default=5.0, help="lowest SNR (dB) of the additive noise")
    ap.add_argument("--ckpt-dir", default="ckpt")
    ap.add_argument("--train-data", default="data/train", help='training sets under --work, comma-separated '
                    '"dir/name[:first N utterances]" (a fine-tune mixes synth_flite.py\'s and synth.py\'s)')
    ap.add_argument("--dev-data", default="data/dev", help="dev sets, same syntax (the first --n-dev are used)")
    ap.add_argument("--ddp", type=int, default=2, help="data-parallel processes, one thread each (on 2 cores: "
                    "2 processes x 1 thread ran ~3x the utterances/s of 1 process x 2 threads)")
    ap.add_argument("--ddp-port", type=int, default=29533)
    a = ap.parse_args()
    if a.ddp > 1:
        # Data parallel over processes (one thread each): gloo all-reduces the gradients, every rank takes every
        # ddp-th batch of the same shuffled list, rank 0 evaluates, logs and saves.
        torch.multiprocessing.spawn(run, args=(a,), nprocs=a.ddp, join=True)
    else:
        run(0, a)


def run(rank, a):
    world = a.ddp
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{a.ddp_port}", rank=rank, world_size=world)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng_np = np.random.default_rng(a.seed + 1000 * rank)
    rng_py = random.Random(a.seed)  # same on every rank: the same batch list, split by rank
    audio, items = load_sets(a.work, a.train_data)
    dev_audio, dev_items = load_sets(a.work, a.dev_data)
    dev_items = dev_items[:a.n_dev]
    bank = NoiseBank(np.random.default_rng(a.seed + 1))
    phones = phone_vocab(items) if a.phone_weight > 0 and items[0][3] else []
    a.phones = phones  # saved with the checkpoint's args
    phone_ids = {c: i for i, c in enumerate(phones[1:-1], 1)} if phones else None

    def build():
        return CtcModel(d=a.d, ff=a.ff, heads=a.heads, pre=a.pre, mid=a.mid, post=a.post, k=a.kernel,
                        n_phones=len(phones), dropout=a.dropout)

    model = build()
    n_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("phone_"))
    print(f"params {n_params} ({n_params / 1e6:.2f}M, exported), phonemes {len(phones)}, train utts {len(items)}, "
          f"dev {len(dev_items)}", flush=True)

    # fixed log-mel normalization constants from 200 training utterances (stage 2 keeps stage 1's)
    if a.init:
        init = torch.load(a.init)["raw"]
        if not phones:  # a fine-tune without the phoneme target drops the stage-1 phoneme head
            init = {k: v for k, v in init.items() if not k.startswith("phone_")}
        model.load_state_dict(init)
        print(f"init from {a.init}", flush=True)
    else:
        with torch.no_grad():
            X, lens, _, _ = collate(list(range(0, len(items), max(1, len(items) // 200)))[:200], audio, items)
            f = model.front(X)
            tf = lens // 160 + 1
            vals = torch.cat([f[b, :tf[b]].reshape(-1) for b in range(f.shape[0])])
            model.front.mean.fill_(float(vals.mean()))
            model.front.std.fill_(float(vals.std()))
    print(f"logmel mean {float(model.front.mean):.3f} std {float(model.front.std):.3f}", flush=True)
    model.spec_aug = True

    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)

    def lr_at(step):
        # warmup then inverse-sqrt decay: independent of the total step count, so the checkpoint at step N is
        # the same whatever --steps is; an EMA of the weights (exported) stands in for a final annealing.
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        if a.schedule == "cosine":
            t = min(1.0, (step - a.warmup) / max(1, a.steps - a.warmup))
            return a.min_lr + (a.lr - a.min_lr) * 0.5 * (1 + math.cos(math.pi * t))
        return a.lr * math.sqrt(a.warmup / (step + 1))

    ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
    ema_model = build()
    torch.manual_seed(a.seed + 1000 * rank)  # SpecAugment masks differ per rank (initial weights did not)
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)  # broadcasts rank 0's weights

    ckdir = os.path.join(a.work, a.ckpt_dir)
    os.makedirs(ckdir, exist_ok=True)
    max_samples = int(a.batch_seconds * 16000)
    step, epoch, t0 = 0, 0, time.time()
    seen, loss_acc, n_acc, skipped, phone_acc = 0, 0.0, 0, 0, 0.0
    last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
    total = a.bench if a.bench else a.steps
    model.train()
    while step < total:
        # SortaGrad: the first epoch goes from short to long utterances (gets CTC off its blank plateau fast)
        batches = make_batches(items, rng_py, max_samples, a.max_utts, shuffle=epoch > 0 or not a.sortagrad)
        batches = batches[:len(batches) - len(batches) % world][rank::world]
        for idx in batches:
            if step >= total:
                break
            X, lens, Y, y_lens, *P = collate(idx, audio, items, rng_np, bank, a.noise_p, a.snr_lo, phone_ids)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            logits, phone_logits = net(X, lens, phones=True)
            frames = model.frames_for(lens)
            # CTC in float64: its alpha/beta recursions are the likeliest source of the non-finite gradients
            # seen in float32 runs (finite loss, infinite gradient norm); it costs little next to the model.
            logp = F.log_softmax(logits.double(), dim=-1).transpose(0, 1)
            loss = F.ctc_loss(logp, Y, frames, y_lens, blank=0, reduction="mean", zero_infinity=True)
            char_loss = float(loss)
            if phone_logits is not None:
                w = a.phone_weight if a.phone_weight_end < 0 else \
                    a.phone_weight + (a.phone_weight_end - a.phone_weight) * step / max(1, total)
                plogp = F.log_softmax(phone_logits.double(), dim=-1).transpose(0, 1)
                # Utterances without phonemes (flite's, which espeak-ng did not speak) are left out of this
                # loss rather than taught to emit blanks; with every row labelled this is reduction="mean".
                has = P[1] > 0
                per = F.ctc_loss(plogp, P[0], frames, P[1], blank=0, reduction="none", zero_infinity=True)
                ploss = (per / P[1].clamp(min=1))[has].mean() if bool(has.any()) else per.sum() * 0
                phone_acc += float(ploss)
                loss = loss + w * ploss
            opt.zero_grad()
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            step += 1
            # A non-finite loss or gradient skips the update (it would poison AdamW's moments for good);
            # weights that still go non-finite roll back to the last finite snapshot.
            # (the gradient norm is taken after the all-reduce, so every rank makes the same decision)
            if math.isfinite(float(gnorm)) and (world > 1 or math.isfinite(float(loss))):
                opt.step()
                if step % 50 == 0:
                    if all(bool(torch.isfinite(v).all()) for v in model.state_dict().values()
                           if v.dtype.is_floating_point):
                        last_good = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    else:
                        model.load_state_dict(last_good)
                        opt.state.clear()
                        print(f"step {step}: non-finite weights, rolled back", flush=True)
            else:
                skipped += 1
                if os.environ.get("PARLEY_DEBUG_NAN"):
                    print(f"skip step {step}: loss {float(loss)} gnorm {float(gnorm)} logits finite "
                          f"{bool(torch.isfinite(logits).all())} X finite {bool(torch.isfinite(X).all())} "
                          f"lens {lens.tolist()} ylens {y_lens.tolist()} frames {model.frames_for(lens).tolist()}",
                          flush=True)
                loss = torch.tensor(0.0)
            with torch.no_grad():
                dec = min(a.ema, (1 + step) / (10 + step))
                for k, v in model.state_dict().items():
                    if v.dtype.is_floating_point:
                        ema[k].mul_(dec).add_(v.detach(), alpha=1 - dec)
                    else:
                        ema[k].copy_(v)
            seen += len(idx) * world
            if math.isfinite(float(gnorm)) and math.isfinite(float(loss)):  # skipped steps don't count as 0
                loss_acc += char_loss
                n_acc += 1
            if rank != 0:
                continue
            if step % 25 == 0 or a.bench:
                el = time.time() - t0
                print(f"step {step} ep {epoch} loss {loss_acc / max(1, n_acc):.3f} phone "
                      f"{phone_acc / max(1, n_acc):.3f} lr {lr_at(step):.2e} "
                      f"utt/s {seen / el:.1f} skipped {skipped} elapsed {el / 60:.1f}m", flush=True)
                loss_acc, n_acc, phone_acc = 0.0, 0, 0.0
            if a.bench:
                continue
            if step % a.save_every == 0 or step == total:
                ck = {"model": ema, "raw": model.state_dict(), "step": step, "args": vars(a)}
                torch.save(ck, os.path.join(ckdir, f"step{step:05d}.pt"))
                torch.save(ck, os.path.join(ckdir, "last.pt.tmp"))
                os.replace(os.path.join(ckdir, "last.pt.tmp"), os.path.join(ckdir, "last.pt"))
            if step % a.eval_every == 0 or step == total:
                ema_model.load_state_dict(ema)
                cer, wer = evaluate(ema_model, dev_audio, dev_items)
                print(f"EVAL step {step} dev(held-out sentences+voices) greedy CER {cer:.4f} WER {wer:.4f} "
                      f"elapsed {(time.time() - t0) / 60:.1f}m", flush=True)
        epoch += 1
    if rank != 0:
        return
    print(f"done in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
