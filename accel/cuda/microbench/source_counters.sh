#!/bin/bash
# Device call: ncu's per-instruction source counters (executed instructions, stall samples, shared
# wavefronts against the ideal) of one forward and one backward kernel per preset, as CSV files for
# microbench/source_summary.py (NOTES.md v8). Usage: source_counters.sh [preset ...] (default 7b 410m)
. "$(dirname "$0")/../device_env.sh"
for p in ${*:-7b 410m}; do
  for k in fwd_t1ILb1ELb0 bwd_t1; do
    ncu --clock-control none --kernel-name-base mangled -k "regex:$k" --launch-count 1 --section SourceCounters \
      --page source --print-source sass --csv "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype bf16 --runs 1 --warmup 0 \
      > "$OUT/src_${p}_${k:0:6}.csv" 2> "$OUT/src_${p}_${k:0:6}.err"
    echo "$p $k rc=$?"
  done
done
xz -1 "$OUT"/src_*.csv
