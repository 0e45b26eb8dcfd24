#!/usr/bin/python3
"""Compares every parameter's gradient with oneDNN (mkldnn) convolutions on and off, on real training batches.

In Debian's torch 1.13 (oneDNN 2.6.3) on this machine's AVX-512 EPYC, oneDNN's backward of the model's first
convolution (stride 2; its input needs no gradient) gives wrong weight/bias gradients that differ from run to
run; train.py therefore turns oneDNN off. This script prints, per batch, the parameters whose gradients differ
(relative L2 > 1e-3) between oneDNN and the native kernels, and the same batch run twice with oneDNN.

  LD_LIBRARY_PATH=<openblas dir> /usr/bin/python3 models/train/check_grads.py [--batches 3]
"""
import argparse
import os
import random

import numpy as np
import torch
import torch.nn.functional as F

from train import CtcModel, NoiseBank, collate, load_set, make_batches, phone_vocab

HERE = os.path.dirname(os.path.abspath(__file__))


def grads(m, batch, rng_state, onednn):
    X, lens, Y, y_lens, P, p_lens = batch
    with torch.backends.mkldnn.flags(enabled=onednn):  # forward and backward both inside
        torch.set_rng_state(rng_state)  # the same SpecAugment masks
        m.zero_grad()
        logits, phone_logits = m(X, lens, phones=True)
        frames = m.frames_for(lens)
        loss = F.ctc_loss(F.log_softmax(logits.double(), -1).transpose(0, 1), Y, frames, y_lens, zero_infinity=True)
        loss = loss + 0.3 * F.ctc_loss(F.log_softmax(phone_logits.double(), -1).transpose(0, 1), P, frames, p_lens,
                                       zero_infinity=True)
        loss.backward()
    return {n: p.grad.clone() for n, p in m.named_parameters()}


def diff(a, b):
    return {n: float((a[n] - b[n]).norm() / (b[n].norm() + 1e-12)) for n in b}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    a = ap.parse_args()
    torch.manual_seed(0)
    audio, items = load_set(a.work, "train")
    phones = phone_vocab(items[:5000])
    phone_ids = {c: i for i, c in enumerate(phones[1:-1], 1)}
    m = CtcModel(n_phones=len(phones))
    m.train()
    m.spec_aug = True
    rng = np.random.default_rng(0)
    bank = NoiseBank(rng)
    for b, idx in enumerate(make_batches(items, random.Random(0), 32 * 16000, 64)[:a.batches]):
        batch = collate(idx, audio, items, rng, bank, 0.65, 0.0, phone_ids)
        state = torch.get_rng_state()
        native = grads(m, batch, state, onednn=False)
        native2 = grads(m, batch, state, onednn=False)
        one = grads(m, batch, state, onednn=True)
        one2 = grads(m, batch, state, onednn=True)
        for label, d in (("native vs native", diff(native2, native)), ("oneDNN vs native", diff(one, native)),
                         ("oneDNN vs oneDNN", diff(one2, one))):
            bad = {n: v for n, v in d.items() if v > 1e-3}
            print(f"batch {b} {label}: {len(bad)} of {len(d)} gradients differ" +
                  "".join(f"; {n} by {v:.3g}" for n, v in sorted(bad.items(), key=lambda kv: -kv[1])[:3]), flush=True)


if __name__ == "__main__":
    main()
