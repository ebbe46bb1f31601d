#!/bin/bash
# Device-machine steps: correctness (check_cuda), compute-sanitizer on small cases, and
# the benchmarks at the paper's layer sizes; `random` (not run by default) adds 400 of check_cuda's
# random shapes under the default and the settings the check step tries. Binaries come prebuilt in
# .carry/ (built on the dev machine: `configure --with-cuda`, `make`, then the copy step in NOTES.md,
# "Running on the device"); logs go to $OUT. `sanitize` alone takes about 7 minutes (racecheck):
# run it in a call of its own.
# Usage (from the repository root): bash accel/cuda/device_run.sh [check] [sanitize] [bench] [random]
# (default: check bench)
. "$(dirname "$0")/device_env.sh"
# "N of M": the output lines (errors, bit hash) of check_cuda log $2 that differ from log $1's
differing() { echo "$(diff <(grep rel_l2 "$1") <(grep rel_l2 "$2") | grep -c '^[<>]') of $(grep -c rel_l2 "$1")"; }
steps=${*:-check bench}
for s in $steps; do # every step known before any runs: a typo costs no device time
  case $s in check | sanitize | bench | random) ;; *) echo "device_run.sh: unknown step '$s' (check, sanitize, bench, random)" >&2; exit 2;; esac
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.used --format=csv 2>&1 | tee "$OUT/gpu.txt"
for s in $steps; do
  case $s in
  check)
    # the default kernels, then bwd_t1 forced to one and to two state heads per block (each case
    # takes one of the two by default; see t1_heads in backend.cu)
    for heads in "" 1 2; do
      echo "== check_cuda${heads:+ with M2RNN_CUDA_BWD_HEADS=$heads}"; start=$(date +%s)
      M2RNN_CUDA_BWD_HEADS=$heads "$C/bin/check_cuda" > "$OUT/check$heads.log" 2>&1; echo "check_cuda rc=$? in $(( $(date +%s) - start )) s"
      grep -E "not ok|FAIL" "$OUT/check$heads.log" | head -20
      grep -c "^ok" "$OUT/check$heads.log"
    done
    # settings that must give every output line (its errors and the hash of its bits) of the default
    # run: the forward's blocks converting k and q themselves (M2RNN_CUDA_T1_WORDS=0; by default
    # fwd_t1 copies the words t1_words_prep made), one lane per block of fwd_t1 and bwd_t1
    # (M2RNN_CUDA_T1_LANES=1; by default their lane groups, t1_group: the same arithmetic per lane),
    # and either register budget (M2RNN_CUDA_T1_MINB=4, =6; by default t1_minb's choice)
    for setting in M2RNN_CUDA_T1_WORDS=0 M2RNN_CUDA_T1_LANES=1 M2RNN_CUDA_T1_MINB=4 M2RNN_CUDA_T1_MINB=6; do
      log="$OUT/check_$(echo "${setting#M2RNN_CUDA_}" | tr '=' '_').log"
      echo "== check_cuda with $setting"
      env "$setting" "$C/bin/check_cuda" > "$log" 2>&1; echo "check_cuda rc=$?"
      grep -c "^ok" "$log"
      echo "output lines (errors, bit hash) differing from the default run: $(differing "$OUT/check.log" "$log")"
    done
    # the generic-K kernels where K from 34 to 62 runs padded by default (PAD=0), and the padded
    # K = 64 kernels where it runs the generic ones (PAD=2): other kernels, so other bits for those
    # cases; only that every case passes
    for pad in 0 2; do
      echo "== check_cuda with M2RNN_CUDA_PAD=$pad"
      M2RNN_CUDA_PAD=$pad "$C/bin/check_cuda" > "$OUT/check_PAD_$pad.log" 2>&1
      echo "check_cuda rc=$? ok $(grep -c "^ok" "$OUT/check_PAD_$pad.log") not ok $(grep -c "^not ok" "$OUT/check_PAD_$pad.log")"
    done;;
  sanitize)
    # the listed small cases and some random ones: racecheck takes minutes for the default 24
    export M2RNN_CUDA_TEST_SMALL=1 CK_FORK=no
    for heads in "" 1 2; do
      echo "== compute-sanitizer (memcheck, racecheck) on the small cases${heads:+, M2RNN_CUDA_BWD_HEADS=$heads}"
      for tool in memcheck racecheck; do
        [ $tool = memcheck ] && nrandom=24 || nrandom=4
        start=$(date +%s)
        M2RNN_CUDA_RANDOM_CASES=$nrandom M2RNN_CUDA_BWD_HEADS=$heads compute-sanitizer --tool $tool "$C/bin/check_cuda" \
          > "$OUT/sanitizer_$tool$heads.log" 2>&1
        echo "$tool ($nrandom random cases) rc=$? in $(( $(date +%s) - start )) s"; tail -3 "$OUT/sanitizer_$tool$heads.log"
      done
    done
    unset M2RNN_CUDA_TEST_SMALL CK_FORK;;
  random)
    # 400 random shapes (seeds 1000-1399) by default and under each setting. The check step's four
    # must repeat the default run's lines; the backward's head settings need only pass (with pairs of
    # heads dq and dk are summed in another order, so their last bits may differ), and so do the
    # padding settings (other kernels for an even K from 34 to 62)
    export M2RNN_CUDA_TEST_SMALL=1 CK_FORK=no M2RNN_CUDA_RANDOM_CASES=400 M2RNN_CUDA_RANDOM_SEED=1000
    default_log="$OUT/random_default.log"
    for setting in "" M2RNN_CUDA_BWD_HEADS=1 M2RNN_CUDA_BWD_HEADS=2 M2RNN_CUDA_T1_WORDS=0 M2RNN_CUDA_T1_LANES=1 \
                   M2RNN_CUDA_T1_MINB=4 M2RNN_CUDA_T1_MINB=6 M2RNN_CUDA_PAD=0 M2RNN_CUDA_PAD=2; do
      log="$OUT/random_$(echo "${setting#M2RNN_CUDA_}" | tr '=' '_').log"
      [ -z "$setting" ] && log=$default_log
      echo "== check_cuda, 400 random shapes${setting:+, $setting}"
      env $setting "$C/bin/check_cuda" > "$log" 2>&1; echo "check_cuda rc=$? ok $(grep -c "^ok" "$log") not ok $(grep -c "^not ok" "$log")"
      grep "^not ok" "$log" | head -5
      [ -n "$setting" ] && echo "output lines differing from the default run$(case $setting in *BWD_HEADS*|*PAD*) echo " (may differ)";; esac):" \
        "$(differing "$default_log" "$log")"
    done
    unset M2RNN_CUDA_TEST_SMALL CK_FORK M2RNN_CUDA_RANDOM_CASES M2RNN_CUDA_RANDOM_SEED;;
  bench)
    echo "== bench"
    for p in 7b 410m; do for dt in bf16 f32; do
      "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype $dt --runs 20 --warmup 3 2>/dev/null | tee -a "$OUT/bench.log"
    done; done;;
  esac
done
