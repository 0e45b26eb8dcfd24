#!/usr/bin/env bash
# Reproduce the bundled recognizer models/parley-asr-en end to end (Debian 12, 2 CPU cores, no network
# except apt). Deterministic given SEED. See models/README.md for the measured duration.
#
#   bash models/train/run.sh
#
# Needs: apt-get install -y espeak-ng sox opus-tools fortune-mod fortunes wordnet-base python3-torch python3-onnx
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK="$HERE/work"
SEED="${SEED:-1234}"
STEPS="${STEPS:-3400}"    # stage 1 (inverse-sqrt LR, heavy noise); its step-3400 checkpoint is the stage-2 start
STEPS2="${STEPS2:-4500}"  # stage 2 (cosine-annealed LR, milder noise); see models/parley-asr-en/config.json
PY=/usr/bin/python3
mkdir -p "$WORK"
cd "$HERE"

# OpenBLAS (pthread) for Debian's torch, which links the slow reference BLAS: unpack locally, no system change.
OB="$WORK/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread"
if [ ! -e "$OB/libblas.so.3" ]; then
  (cd "$WORK" && apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb openblas)
fi
export LD_LIBRARY_PATH="$OB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# One thread: on a shared, oversubscribed 2-core machine two BLAS/OpenMP threads burned ~4x the CPU per step.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

start=$(date +%s)
echo "== corpus"
$PY build_corpus.py --seed "$SEED"
echo "== synth (espeak-ng + sox + opus round trips)"
rm -rf "$WORK/data"
$PY synth.py --seed "$SEED" --n-train 36000 --limit 24000 --procs 3
echo "== train, stage 1"
$PY train.py --seed "$SEED" --steps "$STEPS" 2>&1 | tee "$WORK/train.log"
echo "== train, stage 2"
$PY train.py --seed "$((SEED + 2))" --init "$WORK/ckpt/step$(printf %05d "$STEPS").pt" --sortagrad 0 \
  --schedule cosine --lr 1e-3 --warmup 200 --steps "$STEPS2" --noise-p 0.3 --snr-lo 10 --ckpt-dir ckpt2 \
  2>&1 | tee "$WORK/train2.log"
echo "== export"
$PY export.py --ckpt "$WORK/ckpt2/last.pt"
$PY build_lm.py --min-count 1
cd "$HERE/../.."
deno run -A models/train/tune_decoder.ts
deno run -A bench/eval_asr.ts --write
echo "total $(( ($(date +%s) - start) / 60 )) min"
