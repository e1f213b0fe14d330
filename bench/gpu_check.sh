#!/usr/bin/env bash
# The GPU checks of the Triton kernels, sized for short device leases; logs under $OUT (or
# ./gpu-logs). Run from the repository root with the GPU machine's python3 (torch, triton,
# rich), one command per lease call:
#   bash bench/gpu_check.sh        # 9.5 minutes at most (each step has its own limit):
#     1. the kernel tests, compiled: the TF32 / bf16 accuracy of both layouts at the benchmark
#        shape and the split layout's launch-per-step fallback (-m cuda), then every small
#        case against the reference (the split layout's with its barrier) and the layer test
#     2. bench/kernels.py --quick: correctness and speed at the headline shape, both layouts
#     3. bench/fit_gpu.py --profile: the seed model's epoch against a hand-written loop
#   bash bench/gpu_check.sh full   # bench/kernels.py at every shape, at most 9 minutes
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
if [ "${1:-}" = full ]; then
    step 530 kernels.log python3 bench/kernels.py --json "$OUT/kernels.json"
else
    step 180 tests_accuracy.log python3 -m pytest -q -p no:cacheprovider -m cuda \
        tests/kernels/test_triton_lstm.py
    step 180 tests_cases.log python3 -m pytest -q -p no:cacheprovider -m "not cuda" \
        tests/kernels/test_triton_lstm.py tests/layers/test_lstm_on_triton.py
    step 150 kernels_quick.log python3 bench/kernels.py --quick
    step 60 fit_gpu.log python3 bench/fit_gpu.py --epochs 2 --profile
fi
