#!/usr/bin/env bash
# The GPU checks of the Triton kernels in one device call of at most 9.5 minutes (about 7 on an
# H200 with a cold Triton cache); logs under
# $OUT (or ./gpu-logs). Run from the repository root with the GPU machine's python3 (torch,
# triton, rich):
#   bash bench/gpu_check.sh [quick]
#     1. at once, in parallel processes (the GPU is shared, nothing is timed yet):
#        - the GPU tests (-m cuda): TF32 / bf16 errors of both layouts at the benchmark
#          shape and the split layout's launch-per-step fallback (a timeout here leaves the
#          split layout out of step 3: a barrier that never opened); in a process of their
#          own, fit's CUDA-graph steps and a Bidirectional layer's directions on two streams;
#        - every small test case, compiled (the split layout with its barrier), and the
#          layer test;
#        - bench/kernels.py --warm for each benchmark shape: compiles into Triton's disk cache
#     2. bench/fit_gpu.py --profile: the seed model's epoch against a hand-written loop
#     3. bench/kernels.py: correctness, then the speed table at every shape (compiled already);
#        with "quick" at the headline shape alone
#     4. bench/memory_count.py --cuda at H=256, fp32 and bf16: the layer's peak memory as torch
#        ops allocate it beside what the CUDA allocator saw
#     5. bench/gpu_time.py: the host's µs per torch op and per Triton launch (through the JIT
#        and the compiled launcher), then wall time against the host's issue time and kernel
#        time, kernels launched per call and the host's time per launch, for six cases
#   bash bench/gpu_check.sh sweep   # launch configurations at the headline shape instead
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
    tail -n 30 "$OUT/$log"
}
if [ "${1:-}" = sweep ]; then
    step 540 sweep.log python3 bench/kernels.py --quick --sweep
    exit
fi
start=$SECONDS
echo "== phase 1, in parallel"
timeout 260 python3 -m pytest -q -p no:cacheprovider -m cuda tests/kernels/test_triton_lstm.py \
    >"$OUT/tests_accuracy.log" 2>&1 &
accuracy=$!
timeout 260 python3 -m pytest -q -p no:cacheprovider -m cuda tests/training/test_cuda_graph.py \
    tests/layers/test_bidirectional_streams.py >"$OUT/tests_graphs_streams.log" 2>&1 &
timeout 280 python3 -m pytest -q -p no:cacheprovider -m "not cuda" \
    tests/kernels/test_triton_lstm.py tests/layers/test_lstm_on_triton.py \
    >"$OUT/tests_cases.log" 2>&1 &
shapes=(64,100,32,128 64,100,32,256 64,100,32,512 64,100,32,1024 256,100,32,128 256,100,32,256
    64,500,32,128)
quick=()
if [ "${1:-}" = quick ]; then
    shapes=(64,100,32,128)
    quick=(--quick)
fi
for shape in "${shapes[@]}"; do
    timeout 200 python3 bench/kernels.py --warm --shape "$shape" >>"$OUT/warm.log" 2>&1 &
done
wait "$accuracy"
accuracy_exit=$?
wait
echo "   phase 1 took $((SECONDS - start)) s; accuracy tests exit $accuracy_exit"
for log in tests_accuracy.log tests_graphs_streams.log tests_cases.log; do
    echo "-- $log"
    tail -n 30 "$OUT/$log"
done
step 70 fit_gpu.log python3 bench/fit_gpu.py --epochs 2 --profile
# a split-layout barrier that never opened would hang the benchmark too: leave that layout out
no_split=()
[ "$accuracy_exit" = 124 ] && no_split=(--no-split)
step 260 kernels.log python3 bench/kernels.py --json "$OUT/kernels.json" "${quick[@]}" \
    "${no_split[@]}"
for autocast in "" "--autocast bf16"; do
    step 40 "memory${autocast:+_bf16}.log" python3 bench/memory_count.py --cuda \
        --shape 64,100,32,256 $autocast
done
step 90 gpu_time.log python3 bench/gpu_time.py
