#!/bin/bash
# Device call: each kernel's duration (ncu, clocks left alone) in one bf16 forward+backward per preset.
. "$(dirname "$0")/../device_env.sh"
for p in ${PRESETS:-7b 410m}; do
  ncu --clock-control none --metrics gpu__time_duration.sum,smsp__inst_executed.sum --csv \
    "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype bf16 --runs 1 --warmup 0 > "$OUT/ncu_$p.csv" 2>"$OUT/ncu_$p.err"
  echo "== $p"
  python3 - "$OUT/ncu_$p.csv" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
hdr = rows[0]; k = hdr.index("Kernel Name"); m = hdr.index("Metric Name"); v = hdr.index("Metric Value"); u = hdr.index("Metric Unit"); idc = hdr.index("ID")
by = {}
for r in rows[1:]:
    d = by.setdefault(r[idc], {"name": r[k]})
    val = float(r[v].replace(",", ""))
    if r[m] == "gpu__time_duration.sum":
        d["ms"] = val / 1e6 if r[u] == "ns" else val / 1e3 if r[u] == "us" else val
    else:
        d["inst"] = val
for i, d in sorted(by.items(), key=lambda x: int(x[0])):
    print(f"{d.get('ms', 0):8.3f} ms {d.get('inst', 0)/1e6:9.1f} M inst  {d['name'][:90]}")
PY
done
