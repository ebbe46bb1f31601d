#!/bin/bash
# One device call that times the BF16 kernel variants of backend.cu (M2RNN_CUDA_FWD / M2RNN_CUDA_BWD)
# at the paper's layer sizes, then checks one chosen variant (check_cuda + the golden vectors).
# Binaries come prebuilt in .carry/ (see NOTES.md); logs go to $OUT.
# Usage (repository root): bash accel/cuda/device_variants.sh "FWD:BWD ..." "CHECK_FWD:CHECK_BWD ..." [runs]
. "$(dirname "$0")/device_env.sh"
pairs=${1:-"0:0"}
check=${2:-}
runs=${3:-20}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.used --format=csv,noheader 2>&1 | tee "$OUT/gpu.txt"
summ() { awk -v tag="$1" '/^  forward /{f=$2} /^  backward /{k=$2} /^  forward\+backward/{b=$2} /peak device/{p=$4} END{printf "%-28s fwd %8s  bwd %8s  fwd+bwd %8s  peak %s MiB\n", tag, f, k, b, p}'; }
for pr in $pairs; do
  fv=${pr%:*}; bv=${pr#*:}
  for p in 7b 410m; do
    M2RNN_CUDA_FWD=$fv M2RNN_CUDA_BWD=$bv "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype bf16 --runs $runs --warmup 3 2>&1 \
      | tee -a "$OUT/bench_variants.log" | summ "fwd=$fv bwd=$bv $p bf16"
  done
done | tee "$OUT/summary.txt"
if [ -n "$check" ]; then
  first=1
  for ck in $check; do
    export M2RNN_CUDA_FWD=${ck%:*} M2RNN_CUDA_BWD=${ck#*:}
    if [ $first = 1 ]; then
      for p in 7b 410m; do
        "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype f32 --runs $runs --warmup 3 2>&1 | tee -a "$OUT/bench_variants.log" | summ "f32 $p" | tee -a "$OUT/summary.txt"
      done
      first=0
    fi
    start=$(date +%s)
    "$C/bin/check_cuda" > "$OUT/check_$M2RNN_CUDA_FWD-$M2RNN_CUDA_BWD.log" 2>&1; echo "check_cuda (fwd=$M2RNN_CUDA_FWD bwd=$M2RNN_CUDA_BWD) rc=$? in $(( $(date +%s) - start )) s"
    grep -cE "^ok" "$OUT/check_$M2RNN_CUDA_FWD-$M2RNN_CUDA_BWD.log"; grep -E "^not ok|FAIL" "$OUT/check_$M2RNN_CUDA_FWD-$M2RNN_CUDA_BWD.log" | head -10
    "$C/bin/m2rnn" check --backend cuda --vectors vectors > "$OUT/vectors_$M2RNN_CUDA_FWD-$M2RNN_CUDA_BWD.log" 2>&1; echo "m2rnn check (fwd=$M2RNN_CUDA_FWD bwd=$M2RNN_CUDA_BWD) rc=$?"
    tail -1 "$OUT/vectors_$M2RNN_CUDA_FWD-$M2RNN_CUDA_BWD.log"
  done
fi
