#!/usr/bin/env bash
# Reproduce the bundled recognizer models/parley-asr-en end to end (Debian 12, 2 CPU cores, no network
# except apt). Deterministic given SEED. See models/README.md for the measured duration of each step.
#
#   bash models/train/run.sh
#
# Needs: apt-get install -y espeak-ng sox opus-tools fortune-mod fortunes wordnet-base wamerican wbritish python3-torch
#   python3-onnx
# and Deno (for the decoder tuning and the evaluation through Transformers.js).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$HERE/work"
SEED="${SEED:-1234}"
STEPS="${STEPS:-7000}"
PY=/usr/bin/python3
mkdir -p "$WORK"
cd "$HERE"

# OpenBLAS (pthread) for Debian's torch, which links the slow reference BLAS: unpack locally, no system change.
OB="$WORK/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread"
if [ ! -e "$OB/libblas.so.3" ]; then
  (cd "$WORK" && apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb openblas)
fi
export LD_LIBRARY_PATH="$OB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Two one-thread processes (train.py --ddp 2): on 2 cores ~3x the throughput of one process with 2 threads.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

t() { echo "== $1 ($(date +%T), $(( ($(date +%s) - start) / 60 )) min)"; }
start=$(date +%s)
t corpus
$PY build_corpus.py --seed "$SEED"
t "synth (espeak-ng + sox + opus round trips; rewrites the committed eval WAVs, byte-identical)"
rm -rf "$WORK/data"
$PY synth.py --seed "$SEED" --n-train 36000 --procs 3
t train
rm -rf "$WORK/ckpt"
$PY train.py --seed "$SEED" --steps "$STEPS" 2>&1 | tee "$WORK/train.log"
t export
$PY export.py --ckpt "$WORK/ckpt/last.pt"
$PY build_lm.py --min-count 1 --extra-words /usr/share/dict/american-english /usr/share/dict/british-english
cd "$HERE/../.."
t "decoder tuning (dev split)"
deno run -A models/train/tune_decoder.ts --beam 64
t "evaluation (held-out set)"
deno run -A bench/eval_asr.ts --write
t done
