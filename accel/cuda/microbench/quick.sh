#!/bin/bash
# Device call: check_cuda, the golden vectors and the bf16 benchmarks (7B, 410M) of the default
# kernels, then each kernel's duration and instruction count (durations.sh). Binaries in .carry/.
. "$(dirname "$0")/../device_env.sh"
"$C/bin/check_cuda" > "$OUT/check.log" 2>&1; echo "check_cuda rc=$? ok=$(grep -c '^ok' "$OUT/check.log")"
grep -E "^not ok" "$OUT/check.log" | head -5
"$C/bin/m2rnn" check --backend cuda --vectors vectors > "$OUT/vectors.log" 2>&1; echo "vectors rc=$? $(tail -1 "$OUT/vectors.log")"
for p in 7b 410m; do
  "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype bf16 --runs ${RUNS:-20} --warmup 3 2>&1 | tee -a "$OUT/bench.log" | grep -E "^  (forward|backward|training)"
done
[ -n "${DUR:-}" ] && bash accel/cuda/microbench/durations.sh
exit 0
