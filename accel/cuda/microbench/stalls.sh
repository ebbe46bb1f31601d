#!/bin/bash
# Device call: why the warps of the kernels matching $1 wait (ncu stall reasons per issued
# instruction) and how busy each pipe is, in one 7B bf16 forward+backward.
. "$(dirname "$0")/../device_env.sh"
m=""
for r in barrier branch_resolving dispatch_stall drain imc_miss lg_throttle long_scoreboard math_pipe_throttle membar mio_throttle misc no_instruction not_selected selected short_scoreboard sleeping tex_throttle wait; do
  m="$m,smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio"
done
ncu --clock-control none -k "regex:${1:-_t1}" --metrics "${m#,}" --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables \
  "$C/bin/m2rnn" bench --backend cuda --preset ${2:-7b} --dtype bf16 --runs 1 --warmup 0 > "$OUT/stalls.txt" 2>&1
echo "ncu rc=$?"
grep -E "^  [a-z]|stalled|Pipe|Issue|Shared|Bank" "$OUT/stalls.txt" | grep -v " 0$\|0,00\| 0\.0[0-4]$" | cut -c1-150
