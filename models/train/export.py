#!/usr/bin/python3
"""Export a trained checkpoint to the Transformers.js Wav2Vec2ForCTC model folder models/parley-asr-en/.

onnx/model.onnx: input_values f32 [batch, samples] (zero-mean/unit-var normalized 16 kHz audio, as produced by
Wav2Vec2FeatureExtractor with do_normalize=true) -> logits f32 [batch, frames, vocab]; opset 14, dynamic axes.
"""
import argparse
import json
import os

import numpy as np
import torch

from model import HOP, STRIDE, VOCAB, CtcModel

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", default=os.path.join(HERE, "work", "ckpt", "last.pt"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "parley-asr-en"))
    ap.add_argument("--weights", choices=["ema", "raw"], default="ema", help="EMA (default) or raw weights")
    a = ap.parse_args()
    torch.set_num_threads(2)
    ck = torch.load(a.ckpt, map_location="cpu")
    args = ck["args"]
    stride = STRIDE
    # the training-only phoneme head is left out: the shipped graph has the character head only
    model = CtcModel(d=args["d"], ff=args["ff"], heads=args["heads"], pre=args["pre"], mid=args["mid"],
                     post=args["post"], k=args["kernel"], dropout=0.0)
    weights = ck["model"] if a.weights == "ema" else ck["raw"]
    model.load_state_dict({k: v for k, v in weights.items() if not k.startswith("phone_")})
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    os.makedirs(os.path.join(a.out, "onnx"), exist_ok=True)
    dummy = torch.randn(1, 16000 * 2)
    path = os.path.join(a.out, "onnx", "model.onnx")
    torch.onnx.export(model, (dummy,), path, opset_version=14, input_names=["input_values"],
                      output_names=["logits"],
                      dynamic_axes={"input_values": {0: "batch_size", 1: "sequence_length"},
                                    "logits": {0: "batch_size", 1: "frames"}},
                      do_constant_folding=True)
    # sanity check against torch with onnx's checker (onnxruntime is not installed for python here)
    import onnx
    onnx.checker.check_model(onnx.load(path))

    vocab = {t: i for i, t in enumerate(VOCAB)}
    config = {
        "model_type": "wav2vec2",
        "architectures": ["Wav2Vec2ForCTC"],
        "vocab_size": len(VOCAB),
        "pad_token_id": 0,
        "bos_token_id": None,
        "eos_token_id": None,
        "ctc_loss_reduction": "mean",
        "inputs_to_logits_ratio": HOP * stride,
        "parley": {
            # A stage-2 run that mixes flite data in (finetune_flite.sh) says so.
            "description": "Parley bundled English CTC recognizer trained on espeak-ng speech"
                           + (" and flite voices" if "data-flite" in str(args.get("train_data", "")) else ""),
            "parameters": n_params,
            "train_step": ck["step"],
            # stage 2 starts from a stage-1 checkpoint (train.py --init): its step count adds to this one
            "init_step": (torch.load(args["init"], map_location="cpu")["step"]
                          if args.get("init") and os.path.exists(args["init"]) else 0),
            "weights": a.weights,
            "frame_seconds": HOP * stride / 16000,
            "train_args": args,
        },
    }
    pre = {
        "feature_extractor_type": "Wav2Vec2FeatureExtractor",
        "processor_class": "Wav2Vec2Processor",
        "feature_size": 1,
        "sampling_rate": 16000,
        "padding_value": 0.0,
        "padding_side": "right",
        "do_normalize": True,
        "return_attention_mask": False,
    }
    tok_cfg = {
        "tokenizer_class": "Wav2Vec2CTCTokenizer",
        "processor_class": "Wav2Vec2Processor",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "bos_token": None,
        "eos_token": None,
        "word_delimiter_token": "|",
        "do_lower_case": True,
        "replace_word_delimiter_char": " ",
        "clean_up_tokenization_spaces": True,
        "model_max_length": 1000000,
    }
    added = [
        # <pad> is the CTC blank: NOT special, or the pipeline drops blanks before merging repeats
        {"id": 0, "content": "<pad>", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": False},
        {"id": len(VOCAB) - 1, "content": "<unk>", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True},
    ]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Lowercase"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "|"},
        ]},
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": ""}, "behavior": "Isolated", "invert": False},
        "post_processor": None,
        "decoder": {"type": "CTC", "pad_token": "<pad>", "word_delimiter_token": "|", "cleanup": True},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
    }

    def dump(name, obj):
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")

    dump("config.json", config)
    dump("preprocessor_config.json", pre)
    dump("tokenizer_config.json", tok_cfg)
    dump("tokenizer.json", tokenizer)
    dump("vocab.json", vocab)
    dump("special_tokens_map.json", {"pad_token": "<pad>", "unk_token": "<unk>"})
    # reference logits for a fixed input, to check the ONNX/Transformers.js path in tests
    rng = np.random.default_rng(0)
    x = rng.standard_normal(16000).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)[None])[0]
    print(f"exported step {ck['step']} params {n_params} -> {path} ({os.path.getsize(path) / 1e6:.1f} MB); "
          f"logits for N(0,1) 1 s input: frames {ref.shape[0]}, sum {float(ref.sum()):.4f}")


if __name__ == "__main__":
    main()
