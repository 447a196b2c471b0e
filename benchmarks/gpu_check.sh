#!/usr/bin/env bash
# One prepared device check (issue 15), finishing within 8 minutes on an H200:
#   benchmarks/gpu_check.sh                 # (1.28M, 2048, 1000) float32 SVM on the GPU + ResNet-18 images/s
#   benchmarks/gpu_check.sh small           # CPU smoke run at a small size (tested in tests/solvers)
#   benchmarks/gpu_check.sh N D K [extra args for benchmarks/gpu_check.py]
# Output: one "SVM {...}" and one "RESNET {...}" JSON line; results also in ${OUT:-.}/gpu_check.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
OUTDIR="${OUT:-.}"
if [[ "${1:-}" == "small" ]]; then
  shift
  exec "$PY" benchmarks/gpu_check.py --n 4000 --d 32 --k 10 --noise 0.5 --svm-seconds 60 --resnet-n 128 --batch 64 \
    --resnet-epochs 1 --resnet-seconds 10 --out "$OUTDIR/gpu_check.json" "$@"
fi
if [[ $# -ge 3 ]]; then
  N=$1 D=$2 K=$3
  shift 3
  exec "$PY" benchmarks/gpu_check.py --n "$N" --d "$D" --k "$K" --out "$OUTDIR/gpu_check.json" "$@"
fi
# full size: data generation ~1 min, SVM capped at 330 s (+10%), ResNet-18 60 s: under 8 minutes
exec timeout 470 "$PY" benchmarks/gpu_check.py --out "$OUTDIR/gpu_check.json" "$@"
