#!/bin/bash
# Device call: two builds of the plug-in measured side by side (NOTES.md v7): check_cuda and the
# vectors for each, the bf16 benchmarks alternating A, B, A, B, v5 and f32 with A, compute-sanitizer
# and ncu durations for each. The plug-ins travel compressed (the carried tree must stay under
# 64 MiB): here, `mkdir -p .carry/libA .carry/libB`, copy each build's libm2rnn-cuda.so into one,
# `tar -C .carry -cJf .carry/ab.tar.xz libA libB`, and leave .carry/lib without a plug-in.
# QUICK=1: checks and benchmarks of A and B and ncu durations only (no v5, f32 or sanitizers).
# VARIANTS="A B C ...": more plug-ins (libC, ...) in the same tarball, benchmarked in turn;
# TIMING_ONLY=1: no checks, only the benchmarks and the durations (for diagnostic builds);
# PRESETS="7b": fewer presets (default 7b 410m), for the benchmarks and the durations.
(cd .carry && tar -xJf ab.tar.xz)
. accel/cuda/device_env.sh
VARIANTS=${VARIANTS:-A B}
[ -n "${TIMING_ONLY:-}" ] || for v in $VARIANTS; do
  export M2RNN_PLUGIN_PATH=$C/lib$v
  "$C/bin/check_cuda" > "$OUT/check_$v.log" 2>&1; echo "$v check_cuda rc=$? ok=$(grep -c '^ok' "$OUT/check_$v.log")"
  "$C/bin/m2rnn" check --backend cuda --vectors vectors > "$OUT/vectors_$v.log" 2>&1; echo "$v vectors rc=$? $(tail -1 "$OUT/vectors_$v.log")"
done
for rep in 1 2; do for v in $VARIANTS; do for p in ${PRESETS:-7b 410m}; do
  export M2RNN_PLUGIN_PATH=$C/lib$v
  echo "== $v $p rep $rep"; "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype bf16 --runs 10 --warmup 3 2>&1 | tee -a "$OUT/bench_$v.log" | grep -E "^  (forward|backward|training)"
done; done; done
if [ -n "${QUICK:-}" ]; then
  for v in $VARIANTS; do echo "== durations $v"; M2RNN_PLUGIN_PATH=$C/lib$v bash accel/cuda/microbench/durations.sh 2>&1 | grep -E "t1|reduce_groups" | head -12; done
  exit 0
fi
export M2RNN_PLUGIN_PATH=$C/libA
echo "== v5 (FWD=8 BWD=3) and f32, plug-in A"
for p in 7b 410m; do M2RNN_CUDA_FWD=8 M2RNN_CUDA_BWD=3 "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype bf16 --runs 10 --warmup 3 2>&1 | tee -a "$OUT/bench_v5.log" | grep -E "^  (forward|training|forward\+)"; done
for p in 7b 410m; do "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype f32 --runs 10 --warmup 3 2>&1 | tee -a "$OUT/bench_f32.log" | grep -E "^  (forward|forward\+)"; done
for v in A B; do
  export M2RNN_PLUGIN_PATH=$C/lib$v M2RNN_CUDA_TEST_SMALL=1 CK_FORK=no
  compute-sanitizer --tool memcheck "$C/bin/check_cuda" > "$OUT/memcheck_$v.log" 2>&1; echo "$v memcheck rc=$? $(grep 'ERROR SUMMARY' "$OUT/memcheck_$v.log")"
  compute-sanitizer --tool racecheck "$C/bin/check_cuda" > "$OUT/racecheck_$v.log" 2>&1; echo "$v racecheck rc=$? $(grep 'RACECHECK SUMMARY' "$OUT/racecheck_$v.log")"
  unset M2RNN_CUDA_TEST_SMALL CK_FORK
  M2RNN_PLUGIN_PATH=$C/lib$v PRESETS=7b bash accel/cuda/microbench/durations.sh 2>&1 | grep -E "t1" | head -3
done
