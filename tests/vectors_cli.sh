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

echo "1..9"

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

rm -f "$out"
[ "$fails" -eq 0 ]
