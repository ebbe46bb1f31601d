#!/usr/bin/env python3
"""Summarise a source-counter CSV from source_counters.sh (NOTES.md v8).

usage: source_summary.py FILE.csv WARPS [STEPS]
  WARPS: warps in the launch (7B: 528 blocks x 4 = 2112; 410M: 672 x 4 = 2688); STEPS: 4096.
Instructions are grouped by how often each warp executed them (the step loops run S or S/2 times,
per-chunk code once per chunk), and each group is shown with its instructions per warp-step, its
share of the stall samples, its shared-memory wavefronts and its main stall reasons. Then the
instructions whose shared-memory wavefronts exceed the ideal (bank conflicts)."""
import collections, csv, sys

rows = list(csv.reader(open(sys.argv[1])))
head = next(i for i, r in enumerate(rows) if r and r[0] == "Address")
hdr = rows[head]
col = {n: i for i, n in enumerate(hdr)}
warps, steps = int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 4096
stalls = [k for k in hdr if k.startswith("stall_") and "Not Issued" not in k]


def num(x):
    try:
        return float(x.replace(",", ""))
    except ValueError:
        return 0.0


groups = collections.defaultdict(lambda: {"inst": 0.0, "samples": 0.0, "wf": 0.0, "why": collections.Counter()})
conflicts = []
for r in rows[head + 1:]:
    if len(r) < len(hdr):
        continue
    n = num(r[col["Instructions Executed"]])
    if n == 0:
        continue
    g = groups[round(n / warps)]
    wf, ideal = num(r[col["L1 Wavefronts Shared"]]), num(r[col["L1 Wavefronts Shared Ideal"]])
    g["inst"] += n
    g["samples"] += num(r[col["Warp Stall Sampling (All Samples)"]])
    g["wf"] += wf
    for k in stalls:
        g["why"][k[6:]] += num(r[col[k]])
    if wf > ideal * 1.01:
        conflicts.append((wf - ideal, r[0][-5:], n / warps, wf / n, ideal / n, r[1].strip()[:60]))

total = sum(g["samples"] for g in groups.values())
norm = warps * steps
print(f"{sum(g['inst'] for g in groups.values()) / norm:.2f} instructions per warp-step, {total:.0f} samples")
for count, g in sorted(groups.items(), key=lambda x: -x[1]["samples"])[:8]:
    why = ", ".join(f"{k} {100 * v / max(g['samples'], 1):.0f}%" for k, v in g["why"].most_common(4))
    print(f"  executed {count:6d}x per warp: {g['inst'] / norm:7.2f} instr/step, {100 * g['samples'] / total:5.1f}% of samples, "
          f"{g['wf'] / norm:5.2f} wavefronts/step; {why}")
print("bank conflicts (excess wavefronts, per warp-step):")
for excess, addr, per_warp, wf, ideal, text in sorted(conflicts, reverse=True)[:12]:
    print(f"  {addr} {excess / norm:6.3f}  x{per_warp:6.0f}/warp  {wf:5.2f} vs ideal {ideal:5.2f}  {text}")
