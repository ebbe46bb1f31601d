#!/bin/sh
# `m2rnn gen` makes the same bytes whichever kernels OpenBLAS picks for the CPU (TAP; README,
# "Regenerating the vectors"): cases whose products are large enough to go to dgemm (the recurrence
# at K = 128, an M2RNN block, whose layers always call it) generated twice, with OpenBLAS forced to
# two of its x86-64 kernel sets (Nehalem: SSE; Sandybridge: AVX; they sum in different orders), must
# give identical files. Where OpenBLAS ignores OPENBLAS_CORETYPE (built without DYNAMIC_ARCH), both
# runs take the same kernels and the check proves nothing: it is then reported as skipped.
# Needs M2RNN_BIN (the m2rnn program; set by make check).
bin=${M2RNN_BIN:-./m2rnn}
case $(uname -m) in x86_64) ;; *) echo "1..0 # SKIP OpenBLAS's kernel sets are forced here for x86-64 only"; exit 0;; esac
if ! "$bin" info 2>/dev/null | grep -q 'DYNAMIC_ARCH'; then
    echo "1..0 # SKIP this OpenBLAS chooses no kernels at run time (no DYNAMIC_ARCH in m2rnn info)"; exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "1..2"
n=0
for filter in recurrence.B1xS33.K128 block.B2xS6.D8; do
    n=$((n + 1))
    ok=1
    for core in Nehalem Sandybridge; do
        mkdir -p "$tmp/$core" && OPENBLAS_CORETYPE=$core "$bin" gen --filter "$filter" --out "$tmp/$core" >"$tmp/$core.log" 2>&1 || ok=0
    done
    if [ $ok = 1 ] && diff -r "$tmp/Nehalem" "$tmp/Sandybridge" >"$tmp/diff" 2>&1; then
        echo "ok $n - $filter: the same bytes with OpenBLAS's Nehalem and Sandybridge kernels"
    else
        echo "not ok $n - $filter: the generated files differ between OpenBLAS's Nehalem and Sandybridge kernels"
        cat "$tmp"/*.log "$tmp/diff" | head -20 | sed 's/^/# /'
    fi
    rm -rf "$tmp/Nehalem" "$tmp/Sandybridge"
done
