#!/usr/bin/python3
"""Build models/tiny-vits: a tiny text-to-waveform model in the Transformers.js VITS layout.

Run from the repo root:  /usr/bin/python3 models/tiny/build_tiny_vits.py
Needs Debian's python3-torch (1.13) and python3-onnx; no network, no downloads.

This is not a neural TTS. onnx/model.onnx maps input_ids int64 [B, S] to waveform float32 [B, S * 512]
at 16 kHz: every token becomes 512 samples (32 ms) of a sine tone whose frequency and amplitude come from
a per-token table (blank "_" = 0.1 at 180 Hz, space = 0.05, letters/digits/punctuation = 0.3 at
180 + 20 * id Hz), shaped by a Hann window per token, with a continuous phase. The VitsTokenizer puts a
blank before every character and one at the end, so a text of n kept characters gives (2n + 1) * 512
samples: deterministic, non-silent, and longer for longer text.
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # models/
OUT = os.path.join(ROOT, "tiny-vits")
SR = 16000
HOP = 512

CHARS = [" ", "'", ",", "-", ".", "?", "!"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789")
VOCAB = {"_": 0, "<unk>": 1}
for ch in CHARS:
    VOCAB[ch] = len(VOCAB)
V = len(VOCAB)


class TinyVits(nn.Module):
    def __init__(self):
        super().__init__()
        freq = torch.tensor([180.0 + 20.0 * i for i in range(V)])
        freq[0] = 180.0
        amp = torch.full((V,), 0.3)
        amp[VOCAB["_"]] = 0.1
        amp[VOCAB[" "]] = 0.05
        amp[VOCAB["<unk>"]] = 0.1
        self.register_buffer("step", 2.0 * math.pi * freq / SR)  # phase increment per sample
        self.register_buffer("amp", amp)
        self.register_buffer("window", torch.hann_window(HOP, periodic=False))

    def forward(self, input_ids):
        b, s = input_ids.shape[0], input_ids.shape[1]
        step = self.step[input_ids][:, :, None].expand(b, s, HOP).reshape(b, s * HOP)
        amp = (self.amp[input_ids][:, :, None] * self.window[None, None, :]).reshape(b, s * HOP)
        phase = torch.remainder(torch.cumsum(step, dim=1), 2.0 * math.pi)
        return amp * torch.sin(phase)


def write_json(name, obj):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def main():
    torch.set_num_threads(1)
    os.makedirs(os.path.join(OUT, "onnx"), exist_ok=True)
    model = TinyVits().eval()
    ids = torch.tensor([[0, 10, 0, 11, 0]])
    torch.onnx.export(
        model, (ids,), os.path.join(OUT, "onnx", "model.onnx"),
        input_names=["input_ids"], output_names=["waveform"],
        dynamic_axes={"input_ids": {0: "batch_size", 1: "sequence_length"},
                      "waveform": {0: "batch_size", 1: "num_waveform_samples"}},
        opset_version=14, do_constant_folding=True,
    )
    write_json("config.json", {
        "_name_or_path": "parley/tiny-vits",
        "architectures": ["VitsModel"],
        "model_type": "vits",
        "sampling_rate": SR,
        "vocab_size": V,
        "num_speakers": 1,
        "speaking_rate": 1.0,
        "pad_token_id": 0,
    })
    kept = "a-z0-9 ',.?!-"  # the same set as CHARS; "-" last so it is literal
    assert sorted(CHARS) == sorted(set("abcdefghijklmnopqrstuvwxyz0123456789 ',.?!-"))
    write_json("tokenizer.json", {
        "version": "1.0", "truncation": None, "padding": None,
        # "_" (pad/blank) is deliberately not an added token: added tokens are split out of the raw text
        # before normalization, so a "_" typed in the text would survive as a blank
        "added_tokens": [
            {"id": 1, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": True},
        ],
        # lowercase, drop characters outside the vocabulary, trim, then a blank "_" before every character
        # and one at the end (VITS add_blank)
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Lowercase"},
            {"type": "Replace", "pattern": {"Regex": f"[^{kept}]"}, "content": ""},
            {"type": "Strip", "strip_left": True, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": "(?=.)|$"}, "content": "_"},
        ]},
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": ""}, "behavior": "Isolated", "invert": False},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": VOCAB, "unk_token": "<unk>"},
    })
    write_json("vocab.json", VOCAB)
    write_json("tokenizer_config.json", {
        "tokenizer_class": "VitsTokenizer", "add_blank": True, "normalize": True, "phonemize": False,
        "is_uroman": False, "language": "eng", "pad_token": "_", "unk_token": "<unk>",
        "model_max_length": 4096, "clean_up_tokenization_spaces": True,
    })
    write_json("special_tokens_map.json", {"pad_token": "_", "unk_token": "<unk>"})
    with torch.no_grad():
        w = model(ids)
        assert w.shape == (1, 5 * HOP) and float(w.abs().max()) > 0.1
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _d, fs in os.walk(OUT) for f in fs)
    print(f"wrote {OUT} ({total / 1e3:.1f} kB); vocab {V}; {HOP} samples per token at {SR} Hz")
    sys.exit(0 if total < 2e6 else 1)


if __name__ == "__main__":
    main()
