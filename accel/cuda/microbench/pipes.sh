#!/bin/bash
# Device call: how busy each pipe of the SM is in the first launch of fwd_t1 and of bwd_t1 in one
# bf16 forward+backward per preset (ncu: instructions per pipe as a share of its peak, issue
# activity, warps per scheduler). NOTES.md v15 reads the XU pipe (MUFU, F2FP, MOVM) from it.
# PRESETS="7b" for fewer presets (default 7b 410m).
. "$(dirname "$0")/../device_env.sh"
M="regex:sm__inst_executed_pipe_.*\.avg\.pct_of_peak_sustained_active,regex:sm__pipe_.*_cycles_active\.avg\.pct_of_peak_sustained_active"
M="$M,smsp__issue_active.avg.pct_of_peak_sustained_active,smsp__inst_executed.sum,gpu__time_duration.sum"
M="$M,smsp__warps_active.avg.per_cycle_active"
for p in ${PRESETS:-7b 410m}; do for k in fwd_t1 bwd_t1; do
  ncu --clock-control none -k regex:$k --launch-count 1 --metrics "$M" \
    "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype bf16 --runs 1 --warmup 0 > "$OUT/pipes_${p}_$k.txt" 2>&1
  echo "== $p $k: ncu rc=$?"
  grep -E "^\s+(sm__|smsp__|gpu__)" "$OUT/pipes_${p}_$k.txt" |
    awk '$NF + 0 > 0.5 || /duration|inst_executed.sum|warps_active|issue_active/' | sed 's/  */ /g'
done; done
