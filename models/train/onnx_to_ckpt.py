#!/usr/bin/python3
"""Rebuild a train.py-style checkpoint from the shipped ONNX graph (models/parley-asr-en/onnx/model.onnx), for
fine-tuning when the original training checkpoint is not at hand (models/train/work is not committed).

Named initializers (convolutions, LayerNorms, biases, the log-mel constants) map one to one onto model.py's
state dict. torch's exporter stores every Linear weight transposed under an anonymous name (onnx::MatMul_N): it is
found through the graph, MatMul(x, W) -> Add(·, <module>.bias) names W as <module>.weight (transposed back); the
bias-less mel projection is the [bins, mels] MatMul constant. Every parameter and buffer of the model must be
assigned exactly once, or this fails.
"""
import argparse
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from model import CtcModel

HERE = os.path.dirname(os.path.abspath(__file__))


def state_from_onnx(path):
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    consumers = {}
    for n in m.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    state = {k: v for k, v in inits.items() if not k.startswith("onnx::")}
    for n in m.graph.node:
        if n.op_type != "MatMul" or n.input[1] not in inits or not n.input[1].startswith("onnx::"):
            continue
        w = inits[n.input[1]]
        adds = [c for c in consumers.get(n.output[0], []) if c.op_type == "Add"]
        bias = [i for c in adds for i in c.input if i.endswith(".bias") and i in inits]
        if len(bias) == 1:
            name = bias[0][:-len(".bias")] + ".weight"
        elif w.shape == (201, 80):
            name = "front.mel"
        else:
            raise SystemExit(f"unmapped MatMul constant {n.input[1]} {w.shape}")
        if name in state:
            raise SystemExit(f"{name} assigned twice")
        state[name] = w.T.copy()
    return {k: torch.from_numpy(np.array(v)) for k, v in state.items()}


def check(model, path, tol=1e-3):
    import json
    import wave
    torch.backends.mkldnn.enabled = False
    model.eval()
    root = os.path.join(HERE, "..", "..")
    for wav, ref in json.load(open(path)).items():
        with wave.open(os.path.join(root, wav)) as w:
            x = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
        x = ((x - x.mean()) / np.sqrt(x.var() + 1e-7)).astype(np.float32)
        with torch.no_grad():
            got = model(torch.from_numpy(x)[None])[0].numpy()
        want = np.array(ref["data"], np.float32).reshape(ref["dims"])[0]
        diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
        agree = float((got.argmax(-1) == want.argmax(-1)).mean()) if got.shape == want.shape else 0.0
        print(f"check {wav}: frames {got.shape[0]}, max |torch - onnxruntime| {diff:.2e}, argmax agreement {agree:.3f}")
        if diff > tol:
            raise SystemExit(f"{wav}: logits differ from the ONNX graph's by {diff}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", default=os.path.join(HERE, "..", "parley-asr-en", "onnx", "model.onnx"))
    ap.add_argument("--out", default=os.path.join(HERE, "work", "base", "from_onnx.pt"))
    ap.add_argument("--step", type=int, default=7000, help="training step of the exported model")
    ap.add_argument("--check", default="", help="JSON from onnx_logits.ts: compare this model's logits with "
                    "onnxruntime's on the same WAVs (paths relative to the repo root) and fail on a mismatch")
    a = ap.parse_args()
    state = state_from_onnx(a.onnx)
    model = CtcModel(d=224, ff=672, heads=2, pre=2, mid=6, post=1, k=15, dropout=0.0)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise SystemExit(f"missing {missing} extra {extra}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise SystemExit(f"{k}: onnx {tuple(v.shape)} model {tuple(own[k].shape)}")
    model.load_state_dict(state)
    # the mel filterbank is recomputed by model.py: it must be the one in the graph
    print("mel max diff vs model.py filterbank:", float((state["front.mel"] - CtcModel().front.mel).abs().max()))
    if a.check:
        check(model, a.check)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    args = dict(d=224, ff=672, heads=2, pre=2, mid=6, post=1, kernel=15, init="")
    torch.save({"model": state, "raw": state, "step": a.step, "args": args}, a.out)
    print(f"wrote {a.out}: {len(state)} tensors, {sum(v.numel() for k, v in state.items() if k in dict(model.named_parameters()))} parameters")


if __name__ == "__main__":
    main()
