#!/usr/bin/python3
"""Build a Whisper model folder with RANDOM weights and the exact shape of a real English-only checkpoint,
in the Transformers.js layout, to measure what serving that size costs (it recognises nothing).

Usage (repo root):  /usr/bin/python3 models/tiny/build_random_whisper.py base.en|small.en|tiny.en OUT_DIR

Shapes are the published configs (d_model, layers, heads, FFN 4*d, 80 mels, 1500 encoder positions, 448
decoder positions, vocabulary 51864 with Whisper's English-only special-token ids). The architecture is
Whisper's: two input convolutions (the second with stride 2), sinusoid-free learned positions, pre-LayerNorm
transformer blocks (self-attention with a bias-free key projection, GELU MLP), final LayerNorms, output
projection tied to the token embedding.

Cost fidelity of the merged decoder (`decoder_model_merged.onnx`): Transformers.js passes empty past tensors on
the first step and, afterwards, keeps the first step's encoder keys/values. The graph computes the cross-attention
keys/values only for the encoder positions not already in the past (`encoder_hidden_states[:, past_len:]`), so the
first step projects all 1500 positions and later steps project none - what the real merged model's If-branch does,
without control flow in the graph.

The tokenizer is byte-level with placeholder entries for ids 256..50255 (any id decodes to some text). With
random weights generation never emits <|endoftext|>: benchmarks cap `max_new_tokens` at a realistic count.
Nothing here is committed: models are built on demand by bench/whisper_capacity.ts.
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_tiny_whisper import bytes_to_unicode as _byte_pairs  # noqa: E402  (GPT-2 byte ↔ unicode table)


def bytes_to_unicode():
    return [ch for _b, ch in _byte_pairs()]


SHAPES = {
    # d_model, encoder layers, decoder layers, heads (openai/whisper-*.en config.json)
    "tiny.en": (384, 4, 4, 6),
    "base.en": (512, 6, 6, 8),
    "small.en": (768, 12, 12, 12),
}
VOCAB = 51864
N_MELS = 80
ENC_POS = 1500
DEC_POS = 448
EOS, SOT = 50256, 50257
TRANSLATE, TRANSCRIBE, NO_TS = 50357, 50358, 50362
TS_BEGIN = 50363


class Attn(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.h, self.dh = heads, d // heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d)
        self.o = nn.Linear(d, d)

    def split(self, x):
        b, l = x.shape[0], x.shape[1]
        return x.reshape(b, l, self.h, self.dh).transpose(1, 2)

    def attend(self, q, k, v, mask=None):
        s = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.dh)
        if mask is not None:
            s = s.masked_fill(mask, -1e9)
        out = torch.matmul(torch.softmax(s, dim=-1), v)
        b, n = out.shape[0], out.shape[2]
        return self.o(out.transpose(1, 2).reshape(b, n, self.h * self.dh))


class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class EncLayer(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.attn, self.ln2, self.mlp = nn.LayerNorm(d), Attn(d, heads), nn.LayerNorm(d), Mlp(d)

    def forward(self, x):
        h = self.ln1(x)
        a = self.attn
        x = x + a.attend(a.split(a.q(h)), a.split(a.k(h)), a.split(a.v(h)))
        return x + self.mlp(self.ln2(x))


class Encoder(nn.Module):
    def __init__(self, d, layers, heads):
        super().__init__()
        self.conv1 = nn.Conv1d(N_MELS, d, 3, padding=1)
        self.conv2 = nn.Conv1d(d, d, 3, stride=2, padding=1)
        self.pos = nn.Parameter(torch.randn(ENC_POS, d) * 0.02)
        self.layers = nn.ModuleList([EncLayer(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)

    def forward(self, input_features):
        h = F.gelu(self.conv2(F.gelu(self.conv1(input_features)))).transpose(1, 2)
        x = h + self.pos[: h.shape[1]]
        for layer in self.layers:
            x = layer(x)
        return self.ln(x)


class DecLayer(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.self_attn = nn.LayerNorm(d), Attn(d, heads)
        self.ln2, self.cross = nn.LayerNorm(d), Attn(d, heads)
        self.ln3, self.mlp = nn.LayerNorm(d), Mlp(d)


class Decoder(nn.Module):
    def __init__(self, d, layers, heads):
        super().__init__()
        self.n = layers
        self.embed = nn.Embedding(VOCAB, d)
        self.pos = nn.Embedding(DEC_POS, d)
        self.layers = nn.ModuleList([DecLayer(d, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d)

    def forward(self, input_ids, encoder_hidden_states, *rest):
        past = rest[: 4 * self.n]
        use_cache_branch = rest[4 * self.n]
        seq = input_ids.shape[1]
        past_len = past[0].shape[2]
        qpos = torch.arange(seq) + past_len
        x = self.embed(input_ids) + self.pos(qpos)[None]
        compat = use_cache_branch.to(torch.float32).sum() * 0.0
        presents = []
        for i, layer in enumerate(self.layers):
            pdk, pdv, pek, pev = past[4 * i: 4 * i + 4]
            a = layer.self_attn
            h = layer.ln1(x)
            k = torch.cat([pdk, a.split(a.k(h))], dim=2)
            v = torch.cat([pdv, a.split(a.v(h))], dim=2)
            kpos = torch.arange(k.shape[2])
            mask = (kpos[None, :] > qpos[:, None])[None, None]
            x = x + a.attend(a.split(a.q(h)), k, v, mask)
            c = layer.cross
            new = encoder_hidden_states[:, pek.shape[2]:]  # all positions on step 1, none afterwards
            ek = torch.cat([pek, c.split(c.k(new))], dim=2)
            ev = torch.cat([pev, c.split(c.v(new))], dim=2)
            x = x + c.attend(c.split(c.q(layer.ln2(x))), ek, ev)
            x = x + layer.mlp(layer.ln3(x))
            presents += [k, v, ek, ev]
        logits = torch.matmul(self.ln(x), self.embed.weight.t()) + compat
        return (logits, *presents)


def export(out, d, enc_layers, dec_layers, heads):
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    enc, dec = Encoder(d, enc_layers, heads).eval(), Decoder(d, dec_layers, heads).eval()
    with torch.no_grad():
        torch.onnx.export(
            enc, (torch.zeros(1, N_MELS, 3000),), os.path.join(out, "onnx", "encoder_model.onnx"),
            input_names=["input_features"], output_names=["last_hidden_state"],
            dynamic_axes={"input_features": {0: "batch_size", 2: "feature_sequence_length"},
                          "last_hidden_state": {0: "batch_size", 1: "encoder_sequence_length"}},
            opset_version=14, do_constant_folding=True,
        )
        dh = d // heads
        past, in_names, out_names = [], ["input_ids", "encoder_hidden_states"], ["logits"]
        dyn = {"input_ids": {0: "batch_size", 1: "decoder_sequence_length"},
               "encoder_hidden_states": {0: "batch_size", 1: "encoder_sequence_length"},
               "logits": {0: "batch_size", 1: "decoder_sequence_length"}}
        for i in range(dec_layers):
            for kind, plen in (("decoder", 2), ("encoder", 0)):
                for kv in ("key", "value"):
                    past.append(torch.zeros(1, heads, plen, dh))
                    n, o = f"past_key_values.{i}.{kind}.{kv}", f"present.{i}.{kind}.{kv}"
                    in_names.append(n)
                    out_names.append(o)
                    if kind == "decoder":
                        dyn[n] = {0: "batch_size", 2: "past_decoder_sequence_length"}
                        dyn[o] = {0: "batch_size", 2: "past_decoder_sequence_length + 1"}
                    else:
                        dyn[n] = {0: "batch_size", 2: "encoder_sequence_length_out"}
                        dyn[o] = {0: "batch_size", 2: "encoder_sequence_length_out"}
        in_names.append("use_cache_branch")
        torch.onnx.export(
            dec, (torch.tensor([[SOT, NO_TS]]), torch.zeros(1, ENC_POS, d), *past, torch.tensor([False])),
            os.path.join(out, "onnx", "decoder_model_merged.onnx"),
            input_names=in_names, output_names=out_names, dynamic_axes=dyn,
            opset_version=14, do_constant_folding=True,
        )


def write_json(out, name, obj):
    with open(os.path.join(out, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False)


def write_configs(out, name, d, enc_layers, dec_layers, heads):
    chars = bytes_to_unicode()
    vocab = {ch: i for i, ch in enumerate(chars)}
    letters = [c for c in "abcdefghijklmnopqrstuvwxyz"]
    i = len(vocab)
    while i < EOS:  # placeholder subwords "Ġab", "Ġac", ... so every id decodes to text
        a, b, c = letters[(i // 676) % 26], letters[(i // 26) % 26], letters[i % 26]
        tok = "Ġ" + a + b + c + str(i // 17576)
        vocab[tok] = i
        i += 1
    specials = ["<|endoftext|>", "<|startoftranscript|>"] + [f"<|lang{k}|>" for k in range(99)]
    specials += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
                 "<|notimestamps|>"]
    ids = {s: EOS + k for k, s in enumerate(specials)}
    assert ids["<|notimestamps|>"] == NO_TS and ids["<|transcribe|>"] == TRANSCRIBE
    stamps = [f"<|{k * 0.02:.2f}|>" for k in range(1501)]
    assert TS_BEGIN + len(stamps) == VOCAB
    common = {"bos_token_id": EOS, "eos_token_id": EOS, "pad_token_id": EOS, "decoder_start_token_id": SOT,
              "begin_suppress_tokens": [220, EOS]}
    write_json(out, "config.json", {
        "_name_or_path": f"parley/random-whisper-{name}", "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper", "is_encoder_decoder": True, "d_model": d,
        "encoder_layers": enc_layers, "encoder_attention_heads": heads, "encoder_ffn_dim": 4 * d,
        "decoder_layers": dec_layers, "decoder_attention_heads": heads, "decoder_ffn_dim": 4 * d,
        "num_hidden_layers": enc_layers, "max_source_positions": ENC_POS, "max_target_positions": DEC_POS,
        "max_length": DEC_POS, "num_mel_bins": N_MELS, "vocab_size": VOCAB, "use_cache": True,
        "activation_function": "gelu", "scale_embedding": False, **common,
    })
    write_json(out, "generation_config.json", {
        **common, "max_length": DEC_POS, "is_multilingual": False, "no_timestamps_token_id": NO_TS,
        "prev_sot_token_id": ids["<|startofprev|>"], "max_initial_timestamp_index": 50, "return_timestamps": False,
        "suppress_tokens": [],
    })
    write_json(out, "preprocessor_config.json", {
        "chunk_length": 30, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": N_MELS,
        "hop_length": 160, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right",
        "padding_value": 0.0, "processor_class": "WhisperProcessor", "return_attention_mask": False,
        "sampling_rate": 16000,
    })
    added = [{"id": ids[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s in specials]
    added += [{"id": TS_BEGIN + k, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
               "normalized": False, "special": False} for k, t in enumerate(stamps)]
    write_json(out, "tokenizer.json", {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": []},
    })
    tok_cfg = {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "additional_special_tokens": specials[1:]}
    write_json(out, "tokenizer_config.json", {"tokenizer_class": "WhisperTokenizer", "model_max_length": 1024,
                                               "add_prefix_space": False, **tok_cfg})
    write_json(out, "special_tokens_map.json", tok_cfg)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in SHAPES:
        sys.exit(f"usage: build_random_whisper.py {'|'.join(SHAPES)} OUT_DIR")
    name, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(1234)
    torch.set_num_threads(1)
    d, el, dl, h = SHAPES[name]
    export(out, d, el, dl, h)
    write_configs(out, name, d, el, dl, h)
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _d, fs in os.walk(out) for f in fs)
    print(f"wrote {out} ({size / 1e6:.0f} MB): whisper {name} shape, d={d}, layers {el}+{dl}, heads {h}, vocab {VOCAB}")
