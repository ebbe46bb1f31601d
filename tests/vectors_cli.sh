#!/bin/sh
# `m2rnn check` and `m2rnn gen` from the command line, as a user runs them (TAP output).
# Needs M2RNN_BIN (the m2rnn program), M2RNN_VECTORS and M2RNN_EXAMPLE_PLUGIN (set by make check).
bin=${M2RNN_BIN:-./m2rnn}
plugin=${M2RNN_EXAMPLE_PLUGIN:-tests/.libs/libm2rnn-example.so}
out=$(mktemp)
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$out" | tail -20; }
summary_ok() { tail -1 "$out" | grep -Eq '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$'; }

echo "1..16"

"$bin" check --help >"$out" 2>&1 && grep -q -- '--backend' "$out" && ok "check --help" || notok "check --help"
"$bin" gen --help >"$out" 2>&1 && grep -q -- '--out' "$out" && ok "gen --help" || notok "gen --help"

# The reference passes; the last line is the summary; exit 0.
if "$bin" check --backend ref --filter k9v9 >"$out" 2>&1 && summary_ok && tail -1 "$out" | grep -q ' 0 failed' \
   && grep -q '^PASS ref f64 recurrence\..*k9v9 backward' "$out"; then ok "reference passes, summary line"; else notok "reference passes, summary line"; fi

# --class bf16 on an f32-storage case is a SKIP with the reason; on a bf16 case a PASS.
if "$bin" check --backend ref --class bf16 --filter k9v9 >"$out" 2>&1 && grep -q '^SKIP ref bf16 .*f32.*k9v9 forward.*bf16 storage' "$out" \
   && grep -q '^PASS ref bf16 .*bf16.*k9v9 forward' "$out"; then ok "--class bf16 skips f32 storage"; else notok "--class bf16 skips f32 storage"; fi

# The example plug-in, loaded by path: forward passes, backward (not implemented) is skipped.
if "$bin" check --backend "$plugin" --filter varlen >"$out" 2>&1 && grep -q '^PASS example f32 .*varlen forward' "$out" \
   && grep -q '^SKIP example f32 .*varlen backward .*no recurrence_backward' "$out" && ! grep -q '^FAIL' "$out"; then
    ok "example plug-in by path"; else notok "example plug-in by path"; fi

# With its bug switched on, it fails, and the exit status says so.
if M2RNN_EXAMPLE_BUG=1 "$bin" check --backend "$plugin" --filter heads >"$out" 2>&1; then notok "buggy plug-in must fail"
elif grep -q '^FAIL example f32 .* forward  y ' "$out" && summary_ok; then ok "buggy plug-in fails with exit 1"; else notok "buggy plug-in fails with exit 1"; fi

# JSON output is one document with the counts.
if "$bin" check --backend ref --filter B3xS1. --json >"$out" 2>/dev/null && grep -q '"passed":' "$out" && grep -Eq '"verdict":[[:space:]]*"PASS"' "$out"; then
    ok "--json"; else notok "--json"; fi

# A corrupted vector is a FAIL (sha256), not a crash.
tmp=$(mktemp -d)
cp "$M2RNN_VECTORS"/MANIFEST.json "$tmp"/
f=$(ls "$M2RNN_VECTORS" | grep '^k9v9\.f32\.' | head -1)
cp "$M2RNN_VECTORS/$f" "$tmp/$f" && chmod u+w "$tmp/$f" && printf 'XXXX' | dd of="$tmp/$f" bs=1 seek=100 conv=notrunc 2>/dev/null
if "$bin" check --backend ref --vectors "$tmp" --filter f32.generic.h0.dht.k9v9 >"$out" 2>&1; then notok "corrupted vector must fail"
elif grep -q 'sha256' "$out" && summary_ok; then ok "corrupted vector fails cleanly"; else notok "corrupted vector fails cleanly"; fi
rm -rf "$tmp"

# Default: every available backend (the reference and the plug-ins on M2RNN_PLUGIN_PATH).
if M2RNN_PLUGIN_PATH="$(dirname "$plugin")" "$bin" check --filter k80v16 >"$out" 2>&1 && grep -q '^PASS ref ' "$out" \
   && grep -q '^PASS example ' "$out" && summary_ok; then ok "default: every backend found"; else notok "default: every backend found"; fi

# A manifest of one's own, from a case list ($2, JSON) with the shipped schema, in directory $1.
manifest() {
    mkdir -p "$1"
    version=$(sed -n 's/^[[:space:]]*"version":[[:space:]]*\([0-9][0-9]*\)$/\1/p' "$M2RNN_VECTORS/MANIFEST.json" | head -1)
    printf '{"schema": {"name": "m2rnn-golden-vectors", "version": %s}, "cases": %s}\n' "$version" "$2" >"$1/MANIFEST.json"
}
tmp=$(mktemp -d)

# A case whose tolerances are not an object is a format error naming the case (it was a crash),
# for checking and for --list alike.
manifest "$tmp/bad" '[{"id": "decay_gate.mine", "op": "decay_gate", "file": "x.safetensors", "sha256": "00", "tolerances": [1]}]'
"$bin" check --vectors "$tmp/bad" >"$out" 2>&1; st1=$?
"$bin" check --vectors "$tmp/bad" --list >>"$out" 2>&1; st2=$?
if [ $st1 -eq 2 ] && [ $st2 -eq 2 ] && [ "$(grep -c 'case decay_gate.mine: tolerances is not an object' "$out")" -eq 2 ]; then
    ok "tolerances not an object: a clean error"; else notok "tolerances not an object: a clean error"; fi

# Nothing selected is not a pass: an unknown --op is a usage error (2); a --filter that matches
# nothing, or a manifest without cases, exits 1 and says so.
"$bin" check --backend ref --op nosuch >"$out" 2>&1; st1=$?
grep -q "unknown op 'nosuch'" "$out"; g1=$?
"$bin" check --backend ref --filter typo >"$out" 2>&1; st2=$?
if [ $st1 -eq 2 ] && [ $g1 -eq 0 ] && [ $st2 -eq 1 ] && grep -q "no case matched --filter 'typo'" "$out" && ! summary_ok; then
    ok "unknown --op exits 2, --filter matching nothing exits 1"; else notok "unknown --op exits 2, --filter matching nothing exits 1"; fi
manifest "$tmp/empty" '[]'
"$bin" check --backend ref --vectors "$tmp/empty" >"$out" 2>&1
if [ $? -eq 1 ] && grep -q 'lists no case' "$out"; then ok "a manifest without cases exits 1"; else notok "a manifest without cases exits 1"; fi

# gen with a filter that matches nothing writes nothing (not an empty manifest over the real one).
"$bin" gen --out "$tmp/gen-none" --filter nosuch >"$out" 2>&1
if [ $? -eq 1 ] && grep -q "no case matched --filter 'nosuch'" "$out" && [ ! -e "$tmp/gen-none" ]; then
    ok "gen --filter matching nothing writes nothing"; else notok "gen --filter matching nothing writes nothing"; fi

# A missing option argument, and a 33rd backend, are usage errors that say so.
st=0
"$bin" check --backend >"$out" 2>&1; [ $? -eq 2 ] && grep -q -- '--backend needs an argument' "$out" || st=1
"$bin" check --vectors >"$out" 2>&1; [ $? -eq 2 ] && grep -q -- '--vectors needs an argument' "$out" || st=1
"$bin" gen --out >"$out" 2>&1; [ $? -eq 2 ] && grep -q -- '--out needs an argument' "$out" || st=1
"$bin" check $(i=0; while [ $i -lt 33 ]; do printf -- '--backend ref '; i=$((i + 1)); done) >"$out" 2>&1
[ $? -eq 2 ] && grep -q 'at most 32 backends' "$out" || st=1
if [ $st -eq 0 ]; then ok "missing option arguments, too many backends"; else notok "missing option arguments, too many backends"; fi

# gen's progress lines count 1..N of one total N (the cases selected): a recurrence-and-layers filter.
if "$bin" gen --out "$tmp/gen-varlen" --filter varlen >"$out" 2>&1 \
   && sed -n 's/^\[\([0-9]*\)\/\([0-9]*\)\] .*/\1 \2/p' "$out" >"$tmp/progress" && [ -s "$tmp/progress" ] \
   && awk -v n="$(wc -l <"$tmp/progress")" '$1 != NR || $2 != n { bad = 1 } END { exit bad }' "$tmp/progress" \
   && grep -q '\] recurrence\.' "$out" && grep -q '\] conv1d\.' "$out"; then
    ok "gen progress: one total"; else notok "gen progress: one total"; fi

# Output that cannot be written is an error, not a silent exit 0.
if [ -w /dev/full ]; then
    st=0
    "$bin" check --backend ref --filter B3xS1. --json >/dev/full 2>"$out"; [ $? -eq 1 ] && grep -q 'm2rnn check: cannot write the output' "$out" || st=1
    "$bin" gen --list >/dev/full 2>>"$out"; [ $? -eq 1 ] && grep -q 'm2rnn gen: cannot write the output' "$out" || st=1
    if [ $st -eq 0 ]; then ok "a full stdout exits 1"; else notok "a full stdout exits 1"; fi
else
    n=$((n + 1)); echo "ok $n - a full stdout exits 1 # SKIP no writable /dev/full here"
fi

rm -rf "$tmp"
rm -f "$out"
[ "$fails" -eq 0 ]
