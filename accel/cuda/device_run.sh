#!/bin/bash
# One call on the device machine: correctness (check_cuda), compute-sanitizer on small cases, and
# the benchmarks at the paper's layer sizes. Binaries come prebuilt in .carry/ (built on the dev
# machine: `make`, then the copy step in NOTES.md); logs go to $OUT.
# Usage (from the repository root): bash accel/cuda/device_run.sh [check] [sanitize] [bench]
. "$(dirname "$0")/device_env.sh"
steps=${*:-check sanitize bench}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.used --format=csv 2>&1 | tee "$OUT/gpu.txt"
for s in $steps; do
  case $s in
  check)
    echo "== check_cuda"; start=$(date +%s)
    "$C/bin/check_cuda" > "$OUT/check.log" 2>&1; echo "check_cuda rc=$? in $(( $(date +%s) - start )) s"
    grep -E "^(not ok|ok)|FAIL|rel_l2" "$OUT/check.log" | grep -E "not ok|FAIL" | head -20
    grep -c "^ok" "$OUT/check.log";;
  sanitize)
    echo "== compute-sanitizer (memcheck, racecheck) on the small cases"
    export M2RNN_CUDA_TEST_SMALL=1 CK_FORK=no
    compute-sanitizer --tool memcheck "$C/bin/check_cuda" > "$OUT/sanitizer_memcheck.log" 2>&1; echo "memcheck rc=$?"
    tail -3 "$OUT/sanitizer_memcheck.log"
    compute-sanitizer --tool racecheck "$C/bin/check_cuda" > "$OUT/sanitizer_racecheck.log" 2>&1; echo "racecheck rc=$?"
    tail -3 "$OUT/sanitizer_racecheck.log"
    unset M2RNN_CUDA_TEST_SMALL CK_FORK;;
  bench)
    echo "== bench"
    for p in 7b 410m; do for dt in bf16 f32; do
      "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype $dt --runs 20 --warmup 3 2>/dev/null | tee -a "$OUT/bench.log"
    done; done;;
  esac
done
