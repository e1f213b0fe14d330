#!/usr/bin/env bash
# Every GPU check of the Triton kernels in one call, in order of importance, each with its own
# time limit (9 minutes at most), logs under $OUT (or ./gpu-logs):
#   1. the kernel tests, compiled: every case against the reference (the split layout's ones
#      with its barrier), accuracy (TF32, bf16) of both layouts at the benchmark shape, the
#      split layout's launch-per-step fallback
#   2. bench/kernels.py --quick: correctness and speed at the headline shape, both layouts
#   3. bench/fit_gpu.py --profile: the seed model's epoch against a hand-written loop
#   4. bench/kernels.py: every shape (numbers for bench/RESULTS.md), JSON beside the log
# Run from the repository root with the GPU machine's python3 (torch, triton, rich):
#   bash bench/gpu_check.sh
set -u
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
export PYTHONPATH=src PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/device.txt"
step() {  # step LIMIT_S LOG COMMAND...
    local limit=$1 log=$2
    shift 2
    echo "== $* (limit ${limit}s)"
    timeout "$limit" "$@" >"$OUT/$log" 2>&1
    echo "   exit $? ; last lines:"
    tail -n 25 "$OUT/$log"
}
step 180 tests.log python3 -m pytest -q -p no:cacheprovider tests/kernels/test_triton_lstm.py
step 90 kernels_quick.log python3 bench/kernels.py --quick
step 60 fit_gpu.log python3 bench/fit_gpu.py --epochs 2 --profile
step 210 kernels.log python3 bench/kernels.py --json "$OUT/kernels.json"
