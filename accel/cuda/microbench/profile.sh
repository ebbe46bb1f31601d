#!/bin/bash
# Device call: the microbenchmarks, then each kernel's time in one 7B and one 410M bf16
# forward+backward (ncu, clocks left alone). Binaries prebuilt in .carry/ (NOTES.md).
. "$(dirname "$0")/../device_env.sh"
"$C/bin/ubench" 2>&1 | tee "$OUT/ubench.txt"
cuobjdump -sass "$C/bin/ubench" | grep -oE "MUFU\.[A-Z0-9.]+" | sort | uniq -c | tee "$OUT/ubench_mufu.txt"
for p in ${PRESETS:-7b 410m}; do
  ncu --clock-control none --metrics gpu__time_duration.sum --csv \
    "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype bf16 --runs 1 --warmup 0 > "$OUT/ncu_$p.csv" 2>"$OUT/ncu_$p.err"
  echo "== $p: kernel, ms"
  python3 - "$OUT/ncu_$p.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
hdr = rows[0]; k = hdr.index("Kernel Name"); v = hdr.index("Metric Value"); u = hdr.index("Metric Unit")
for r in rows[1:]:
    val = float(r[v].replace(",", "")); unit = r[u]
    ms = val / 1e6 if unit == "ns" else val / 1e3 if unit == "us" else val if unit == "ms" else val
    print(f"{ms:9.3f}  {r[k][:110]}")
PY
done
