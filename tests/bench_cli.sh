#!/bin/sh
# `m2rnn bench` from the command line (TAP): --help, the table, --json as one valid JSON document
# whose unmeasured times are null (never nan), and a bad option's exit status.
# Needs M2RNN_BIN (the m2rnn program; set by make check); validates the JSON with $PYTHON_NUMPY's
# python3 when configure found one, else by pattern.
bin=${M2RNN_BIN:-./m2rnn}
out=$(mktemp)
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$out" | tail -20; }
tiny="--runs 1 --warmup 0 -B 1 -S 8 -N 2 -K 4 -V 3"

echo "1..6"

"$bin" bench --help >"$out" 2>&1 && grep -q -- '--op' "$out" && grep -q 'training pair' "$out" && ok "bench --help" || notok "bench --help"

# The reference has no training pair: forward, backward and forward+backward rows, no training step.
if "$bin" bench $tiny >"$out" 2>/dev/null && grep -q '^  forward ' "$out" && grep -q '^  backward ' "$out" \
   && grep -q '^  forward+backward ' "$out" && ! grep -q 'training step' "$out"; then ok "table"; else notok "table"; fi

# JSON: unmeasured times are null. $1: --op, $2: a Python assertion on d, $3: the same as a pattern.
json_case() {
    if ! "$bin" bench $tiny --json --op "$1" >"$out" 2>/dev/null; then notok "--json --op $1: exit status"; return; fi
    if grep -qi 'nan' "$out"; then notok "--json --op $1: nan in the output"; return; fi
    if [ -n "$PYTHON_NUMPY" ]; then
        if "$PYTHON_NUMPY" -c "import json, sys; d = json.load(open(sys.argv[1])); assert $2, d" "$out" >>"$out" 2>&1; then
            ok "--json --op $1 (parsed)"; else notok "--json --op $1 (parsed)"; fi
    elif grep -Eq "$3" "$out"; then ok "--json --op $1 (pattern)"; else notok "--json --op $1 (pattern)"; fi
}
json_case both "d['forward_s'] > 0 and d['backward_s'] > 0 and d['forward_backward_s'] > 0 and d['training_step_s'] is None and d['saved_bytes'] == 0" \
    '"forward_s":[0-9].*"backward_s":[0-9].*"training_step_s":null,"saved_bytes":0}'
json_case forward "d['forward_s'] > 0 and d['backward_s'] is None and d['forward_backward_s'] is None" \
    '"forward_s":[0-9][^,]*,"backward_s":null,"forward_backward_s":null'
json_case backward "d['forward_s'] is None and d['backward_s'] > 0" '"forward_s":null,"backward_s":[0-9]'

# A bad option: exit 2 and a message.
"$bin" bench --op sideways >"$out" 2>&1
if [ $? -eq 2 ] && grep -q -- '--op must be' "$out"; then ok "bad --op exits 2"; else notok "bad --op exits 2"; fi

rm -f "$out"
