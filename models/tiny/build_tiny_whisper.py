#!/usr/bin/python3
"""Build models/tiny-whisper: a tiny, hand-wired Whisper in the exact Transformers.js layout.

Run from the repo root:  /usr/bin/python3 models/tiny/build_tiny_whisper.py
Needs Debian's python3-torch (1.13) and python3-onnx; no network, no downloads.

What it does (deterministic, documented in models/tiny/README.md):
  * encoder: two small convs (seeded random weights) on the log-mel input; channel 0 of every output
    frame is overwritten with a "sound present" gate s = sigmoid(20 * (max(input_features) + 0.5)).
    Whisper's features are (max(log10(mel), max - 8) + 4) / 4, so max(input_features) is -1.5 for
    digital silence and about 0..1.5 for ordinary audio; the threshold -0.5 is log10(mel) = -6 (a 440 Hz
    sine with peak 1e-4 is "sound", 3e-5 is "silence").
  * decoder: a real 2-layer decoder with self-attention over a KV cache and cross-attention over the
    encoder states (small seeded random weights), plus hand-set embedding/head rows that act as a
    bigram table:  prompt end (<|notimestamps|>, task, language, <|startoftranscript|> or <|0.00|>)
    -> " Hello" if s > 0.5 else " Silence";  " Hello" -> "," -> " world" -> ".";  " Silence" -> ".";
    "." -> <|endoftext|> if <|notimestamps|> is in the context, else <|1.00|> -> <|endoftext|>.
    Cross-attention head 0 of layer 0 has zero queries (uniform attention), so it averages channel 0 of
    the encoder states and writes 2s - 1 into the residual. Self-attention head 0 of layer 0 looks for
    <|notimestamps|> in the context; after the first step it only sees it through the KV cache.
So audible input transcribes to " Hello, world." and digital silence to " Silence."; with
return_timestamps the single chunk is [0, 1].
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # models/
OUT = os.path.join(ROOT, "tiny-whisper")

LANGS = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur hr bg lt "
    "la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si km sn yo so af oc "
    "ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha ba jw su"
).split()
assert len(LANGS) == 99

D_MODEL = 32
HEADS = 2
HEAD_DIM = D_MODEL // HEADS
DEC_LAYERS = 2
ENC_LAYERS = 1
MAX_TARGET = 448
N_MELS = 80


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [(b, chr(c)) for b, c in zip(bs, cs)]


# ---------------------------------------------------------------- vocabulary
vocab = {}
for i, (_b, ch) in enumerate(bytes_to_unicode()):
    vocab[ch] = i
assert vocab["Ġ"] == 220  # same id as in GPT-2 / Whisper

merges = []


def add_word(word):
    """Merges that make `word` one token, built left to right, then 'Ġ' + word."""
    cur = word[0]
    for ch in word[1:]:
        merges.append(f"{cur} {ch}")
        cur += ch
        if cur not in vocab:
            vocab[cur] = len(vocab)
    merges.append(f"Ġ {word}")
    vocab["Ġ" + word] = len(vocab)


for w in ("Hello", "world", "Silence"):
    add_word(w)

specials = ["<|endoftext|>", "<|startoftranscript|>"] + [f"<|{c}|>" for c in LANGS]
specials += ["<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
ids = {}
next_id = len(vocab)
for s in specials:
    ids[s] = next_id
    next_id += 1
TS_BEGIN = next_id
timestamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
for t in timestamps:
    ids[t] = next_id
    next_id += 1
VOCAB_SIZE = next_id

EOS = ids["<|endoftext|>"]
SOT = ids["<|startoftranscript|>"]
NO_TS = ids["<|notimestamps|>"]
TRANSLATE = ids["<|translate|>"]
TRANSCRIBE = ids["<|transcribe|>"]
HELLO, COMMA, WORLD, DOT, SILENCE = vocab["ĠHello"], vocab[","], vocab["Ġworld"], vocab["."], vocab["ĠSilence"]

# ---------------------------------------------------------------- weights
torch.manual_seed(1234)
NOISE = 0.02
# residual dims with a fixed meaning
D_START, D_HELLO, D_COMMA, D_WORLD, D_DOT, D_SIL, D_GATE, D_NOTS_FLAG, D_NOTS, D_TSEND = range(10)
STRUCT = 10
W = 12.0  # logit of the next token in the chain
TS_END = TS_BEGIN + 50  # <|1.00|>


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(N_MELS, D_MODEL, 3, padding=1)
        self.conv2 = nn.Conv1d(D_MODEL, D_MODEL, 3, stride=2, padding=1)
        for p in self.parameters():
            nn.init.normal_(p, std=NOISE)
        keep = torch.ones(1, D_MODEL, 1)
        keep[0, 0, 0] = 0.0
        self.register_buffer("keep", keep)
        self.register_buffer("gate_dir", 1.0 - keep)

    def forward(self, input_features):
        h = F.gelu(self.conv1(input_features))
        h = F.gelu(self.conv2(h))  # [B, D, T/2]
        s = torch.sigmoid(20.0 * (torch.amax(input_features, dim=(1, 2)) + 0.5))  # [B]
        h = h * self.keep + s[:, None, None] * self.gate_dir
        return h.transpose(1, 2)  # [B, T/2, D]


class Attn(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(D_MODEL, D_MODEL)
        self.k = nn.Linear(D_MODEL, D_MODEL, bias=False)
        self.v = nn.Linear(D_MODEL, D_MODEL)
        self.o = nn.Linear(D_MODEL, D_MODEL)
        for p in self.parameters():
            nn.init.normal_(p, std=NOISE)

    def split(self, x):  # [B, L, D] -> [B, H, L, Dh]
        b, l = x.shape[0], x.shape[1]
        return x.reshape(b, l, HEADS, HEAD_DIM).transpose(1, 2)

    def attend(self, q, k, v, mask=None):
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(HEAD_DIM)
        if mask is not None:
            scores = scores.masked_fill(mask, -1e9)
        out = torch.matmul(torch.softmax(scores, dim=-1), v)  # [B, H, S, Dh]
        b, s = out.shape[0], out.shape[2]
        return self.o(out.transpose(1, 2).reshape(b, s, D_MODEL))


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.self_attn = Attn()
        self.cross = Attn()
        self.fc1 = nn.Linear(D_MODEL, 4 * D_MODEL)
        self.fc2 = nn.Linear(4 * D_MODEL, D_MODEL)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, D_MODEL)
        self.pos = nn.Embedding(MAX_TARGET, D_MODEL)
        self.layers = nn.ModuleList([Layer() for _ in range(DEC_LAYERS)])
        self.head = nn.Linear(D_MODEL, VOCAB_SIZE)
        with torch.no_grad():
            for p in self.parameters():
                nn.init.normal_(p, std=NOISE)
            self.embed.weight[:, :STRUCT] = 0.0
            self.pos.weight[:, :STRUCT] = 0.0
            starts = [SOT, TRANSLATE, TRANSCRIBE, NO_TS, TS_BEGIN] + [ids[f"<|{c}|>"] for c in LANGS]
            self.embed.weight[starts, D_START] = 1.0
            self.embed.weight[NO_TS, D_NOTS_FLAG] = 1.0
            self.embed.weight[TS_END, D_TSEND] = 1.0
            self.embed.weight[HELLO, D_HELLO] = 1.0
            self.embed.weight[COMMA, D_COMMA] = 1.0
            self.embed.weight[WORLD, D_WORLD] = 1.0
            self.embed.weight[DOT, D_DOT] = 1.0
            self.embed.weight[SILENCE, D_SIL] = 1.0
            self.head.weight[:, :STRUCT] = 0.0
            for layer in self.layers:  # keep the structured residual dims free of random writes
                for lin in (layer.self_attn.o, layer.cross.o, layer.fc2):
                    lin.weight[:STRUCT] = 0.0
                    lin.bias[:STRUCT] = 0.0
            self.head.weight[HELLO, D_START] = W
            self.head.weight[SILENCE, D_START] = W
            self.head.weight[TS_BEGIN, D_START] = W / 2  # <|0.00|> when the timestamp processor forces one
            self.head.weight[HELLO, D_GATE] = W / 2
            self.head.weight[SILENCE, D_GATE] = -W / 2
            self.head.weight[COMMA, D_HELLO] = W
            self.head.weight[WORLD, D_COMMA] = W
            self.head.weight[DOT, D_WORLD] = W
            self.head.weight[DOT, D_SIL] = W
            # after ".": <|endoftext|> when <|notimestamps|> is in the context, else the closing <|1.00|>
            self.head.weight[EOS, D_DOT] = W
            self.head.weight[TS_END, D_DOT] = W + 2
            self.head.weight[TS_END, D_NOTS] = -2 * W
            self.head.weight[EOS, D_TSEND] = W
            # layer 0, self-attention head 0 looks for <|notimestamps|> anywhere in the context (so later
            # steps only see it through the KV cache) and writes ~1 into D_NOTS if it is there, else 0.
            sa = self.layers[0].self_attn
            for lin in (sa.q, sa.k, sa.v):
                lin.weight[:HEAD_DIM] = 0.0
                if lin.bias is not None:
                    lin.bias[:HEAD_DIM] = 0.0
            sa.q.bias[0] = 1.0
            sa.k.weight[0, D_NOTS_FLAG] = 40.0
            sa.v.weight[0, D_NOTS_FLAG] = 1.0
            sa.o.weight[D_NOTS] = 0.0
            sa.o.weight[D_NOTS, 0] = 1.0
            # layer 0, cross-attention head 0: uniform attention, value = encoder channel 0 (the gate s),
            # output 2s - 1 into residual dim D_GATE.
            cross = self.layers[0].cross
            cross.q.weight[:HEAD_DIM] = 0.0
            cross.q.bias[:HEAD_DIM] = 0.0
            cross.v.weight[:HEAD_DIM] = 0.0
            cross.v.bias[:HEAD_DIM] = 0.0
            cross.v.weight[0, 0] = 1.0
            cross.o.weight[D_GATE] = 0.0
            cross.o.weight[D_GATE, 0] = 2.0
            cross.o.bias[D_GATE] = -1.0

    def forward(self, input_ids, encoder_hidden_states, *rest):
        past = rest[: 4 * DEC_LAYERS]
        use_cache_branch = rest[4 * DEC_LAYERS]
        seq = input_ids.shape[1]
        past_len = past[0].shape[2]
        qpos = torch.arange(seq) + past_len
        x = self.embed(input_ids) + self.pos(qpos)[None]
        # Inputs kept for the optimum/Transformers.js merged-decoder layout. The cross-attention keys and
        # values are recomputed from encoder_hidden_states on every step (cheap at this size), so the
        # past encoder tensors and use_cache_branch only join the graph through a zero term.
        compat = use_cache_branch.to(torch.float32).sum() * 0.0
        presents = []
        for i, layer in enumerate(self.layers):
            pdk, pdv, pek, pev = past[4 * i: 4 * i + 4]
            compat = compat + (pek.sum() + pev.sum()) * 0.0
            a = layer.self_attn
            q = a.split(a.q(x))
            k = torch.cat([pdk, a.split(a.k(x))], dim=2)
            v = torch.cat([pdv, a.split(a.v(x))], dim=2)
            kpos = torch.arange(k.shape[2])
            mask = (kpos[None, :] > qpos[:, None])[None, None]
            x = x + a.attend(q, k, v, mask)
            c = layer.cross
            ek = c.split(c.k(encoder_hidden_states))
            ev = c.split(c.v(encoder_hidden_states))
            x = x + c.attend(c.split(c.q(x)), ek, ev)
            x = x + layer.fc2(F.gelu(layer.fc1(x)))
            presents += [k, v, ek, ev]
        logits = self.head(x) + compat
        return (logits, *presents)


def export():
    os.makedirs(os.path.join(OUT, "onnx"), exist_ok=True)
    enc, dec = Encoder().eval(), Decoder().eval()

    feats = torch.full((1, N_MELS, 3000), -1.5)
    torch.onnx.export(
        enc, (feats,), os.path.join(OUT, "onnx", "encoder_model.onnx"),
        input_names=["input_features"], output_names=["last_hidden_state"],
        dynamic_axes={"input_features": {0: "batch_size", 2: "feature_sequence_length"},
                      "last_hidden_state": {0: "batch_size", 1: "encoder_sequence_length"}},
        opset_version=14, do_constant_folding=True,
    )

    ehs = torch.zeros(1, 1500, D_MODEL)
    ids_in = torch.tensor([[SOT, ids["<|en|>"], TRANSCRIBE, NO_TS]])
    past, in_names, out_names = [], ["input_ids", "encoder_hidden_states"], ["logits"]
    dyn = {"input_ids": {0: "batch_size", 1: "decoder_sequence_length"},
           "encoder_hidden_states": {0: "batch_size", 1: "encoder_sequence_length"},
           "logits": {0: "batch_size", 1: "decoder_sequence_length"}}
    for i in range(DEC_LAYERS):
        for kind, plen in (("decoder", 2), ("encoder", 1500)):
            for kv in ("key", "value"):
                past.append(torch.zeros(1, HEADS, plen, HEAD_DIM))
                n = f"past_key_values.{i}.{kind}.{kv}"
                o = f"present.{i}.{kind}.{kv}"
                in_names.append(n)
                out_names.append(o)
                if kind == "decoder":
                    dyn[n] = {0: "batch_size", 2: "past_decoder_sequence_length"}
                    dyn[o] = {0: "batch_size", 2: "past_decoder_sequence_length + decoder_sequence_length"}
                else:
                    dyn[n] = {0: "batch_size", 2: "encoder_sequence_length_out"}
                    dyn[o] = {0: "batch_size", 2: "encoder_sequence_length_out"}
    in_names.append("use_cache_branch")
    torch.onnx.export(
        dec, (ids_in, ehs, *past, torch.tensor([True])), os.path.join(OUT, "onnx", "decoder_model_merged.onnx"),
        input_names=in_names, output_names=out_names, dynamic_axes=dyn,
        opset_version=14, do_constant_folding=True,
    )

    # sanity check in torch: the bigram chain
    with torch.no_grad():
        cases = ((-1.5, [NO_TS], [SILENCE, DOT, EOS]), (0.5, [NO_TS], [HELLO, COMMA, WORLD, DOT, EOS]),
                 (0.5, [TS_BEGIN], [HELLO, COMMA, WORLD, DOT, TS_END, EOS]))
        for fval, prompt_end, want in cases:
            f = torch.full((1, N_MELS, 3000), fval)
            e = enc(f)
            seq = [SOT, ids["<|en|>"], TRANSCRIBE] + prompt_end
            got = []
            for _ in range(8):
                empty = [torch.zeros(1, HEADS, 0, HEAD_DIM) for _ in range(4 * DEC_LAYERS)]
                out = dec(torch.tensor([seq]), e, *empty, torch.tensor([False]))
                nxt = int(out[0][0, -1].argmax())
                got.append(nxt)
                seq.append(nxt)
                if nxt == EOS:
                    break
            assert got == want, (fval, got, want)


def write_json(name, obj):
    with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


def write_configs():
    lang_to_id = {f"<|{c}|>": ids[f"<|{c}|>"] for c in LANGS}
    task_to_id = {"translate": TRANSLATE, "transcribe": TRANSCRIBE}
    common = {
        "bos_token_id": EOS, "eos_token_id": EOS, "pad_token_id": EOS,
        "decoder_start_token_id": SOT, "begin_suppress_tokens": [vocab["Ġ"], EOS],
    }
    write_json("config.json", {
        "_name_or_path": "parley/tiny-whisper",
        "architectures": ["WhisperForConditionalGeneration"],
        "model_type": "whisper",
        "is_encoder_decoder": True,
        "d_model": D_MODEL,
        "encoder_layers": ENC_LAYERS, "encoder_attention_heads": HEADS, "encoder_ffn_dim": 4 * D_MODEL,
        "decoder_layers": DEC_LAYERS, "decoder_attention_heads": HEADS, "decoder_ffn_dim": 4 * D_MODEL,
        "num_hidden_layers": ENC_LAYERS,
        "max_source_positions": 1500, "max_target_positions": MAX_TARGET, "max_length": MAX_TARGET,
        "num_mel_bins": N_MELS, "vocab_size": VOCAB_SIZE, "use_cache": True,
        "activation_function": "gelu", "scale_embedding": False,
        **common,
    })
    write_json("generation_config.json", {
        **common,
        "max_length": MAX_TARGET,
        "is_multilingual": True,
        "lang_to_id": lang_to_id,
        "task_to_id": task_to_id,
        "no_timestamps_token_id": NO_TS,
        "prev_sot_token_id": ids["<|startofprev|>"],
        "max_initial_timestamp_index": 50,
        "return_timestamps": False,
    })
    write_json("preprocessor_config.json", {
        "chunk_length": 30, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": N_MELS,
        "hop_length": 160, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000,
        "padding_side": "right", "padding_value": 0.0, "processor_class": "WhisperProcessor",
        "return_attention_mask": False, "sampling_rate": 16000,
    })
    added = [{"id": ids[s], "content": s, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s in specials]
    added += [{"id": ids[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
               "normalized": False, "special": False} for t in timestamps]
    tok = lambda s: {"SpecialToken": {"id": s, "type_id": 0}}
    write_json("tokenizer.json", {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tok("<|startoftranscript|>"), tok("<|notimestamps|>"), {"Sequence": {"id": "A", "type_id": 0}},
                       tok("<|endoftext|>")],
            "pair": [tok("<|startoftranscript|>"), tok("<|notimestamps|>"), {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}, tok("<|endoftext|>")],
            "special_tokens": {s: {"id": s, "ids": [ids[s]], "tokens": [s]}
                               for s in ("<|startoftranscript|>", "<|notimestamps|>", "<|endoftext|>")},
        },
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    })
    write_json("tokenizer_config.json", {
        "tokenizer_class": "WhisperTokenizer", "add_prefix_space": False, "errors": "replace",
        "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "model_max_length": 1024, "clean_up_tokenization_spaces": True,
        "additional_special_tokens": specials[1:],
    })
    write_json("special_tokens_map.json", {
        "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "additional_special_tokens": specials[1:],
    })


if __name__ == "__main__":
    torch.set_num_threads(1)
    export()
    write_configs()
    total = 0
    for dp, _dn, fn in os.walk(OUT):
        for f in fn:
            total += os.path.getsize(os.path.join(dp, f))
    print(f"wrote {OUT} ({total / 1e6:.2f} MB); vocab {VOCAB_SIZE}; eos {EOS} sot {SOT} notimestamps {NO_TS}")
    sys.exit(0 if total < 2e6 else 1)
