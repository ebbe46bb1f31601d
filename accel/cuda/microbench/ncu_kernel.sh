#!/bin/bash
# Device call: ncu's scheduler/warp-state/source sections for the kernels whose names match $1
# (one launch each) in a 7B bf16 bench run, plus their SASS. Env M2RNN_CUDA_FWD/BWD pass through.
. "$(dirname "$0")/../device_env.sh"
re=${1:-fwd_t1}
preset=${2:-7b}
ncu --clock-control none -k "regex:$re" -c ${3:-2} --section SchedulerStats --section WarpStateStats \
  --section InstructionStats --section SourceCounters --section SpeedOfLight --section Occupancy --section LaunchStats \
  "$C/bin/m2rnn" bench --backend cuda --preset $preset --dtype bf16 --runs 1 --warmup 0 > "$OUT/ncu_$re.txt" 2>&1
echo "ncu rc=$?"
cuobjdump -sass "$C/lib/libm2rnn-cuda.so" > "$OUT/all.sass" 2>&1
echo "sass rc=$?"
