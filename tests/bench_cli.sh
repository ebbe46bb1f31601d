#!/bin/sh
# `m2rnn bench` from the command line (TAP): --help, the table, --json as one valid JSON document
# whose unmeasured times are null (never nan), and a bad option's exit status.
# Needs M2RNN_BIN (the m2rnn program) and M2RNN_EXAMPLE_PLUGIN (a plug-in with a forward and no
# backward; both set by make check); validates the JSON with $PYTHON_NUMPY's python3 when configure
# found one, else by pattern.
bin=${M2RNN_BIN:-./m2rnn}
plugin=${M2RNN_EXAMPLE_PLUGIN:-tests/.libs/libm2rnn-example.so}
out=$(mktemp)
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$out" | tail -20; }
tiny="--runs 1 --warmup 0 -B 1 -S 8 -N 2 -K 4 -V 3"

echo "1..14"

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
json_case both "d['forward_s'] > 0 and d['backward_s'] > 0 and d['forward_backward_s'] > 0 and d['training_step_s'] is None and d['saved_bytes'] == 0 and d['not_supported'] == []" \
    '"not_supported":\[\],"forward_s":[0-9].*"backward_s":[0-9].*"training_step_s":null,"saved_bytes":0}'
json_case forward "d['forward_s'] > 0 and d['backward_s'] is None and d['forward_backward_s'] is None" \
    '"forward_s":[0-9][^,]*,"backward_s":null,"forward_backward_s":null'
json_case backward "d['forward_s'] is None and d['backward_s'] > 0" '"forward_s":null,"backward_s":[0-9]'

# A backend with a forward and no backward (the example plug-in): --op both times the forward, shows
# the backward and forward+backward as not supported, and exits 0 (it was exit 1 and no timings).
if "$bin" bench $tiny --backend "$plugin" >"$out" 2>&1 && grep -Eq '^  forward +[0-9]' "$out" \
   && grep -Eq '^  backward +not supported$' "$out" && grep -Eq '^  forward\+backward +not supported$' "$out" \
   && grep -q 'm2rnn bench: backend example does not support recurrence_backward (it has none): not timed' "$out"; then
    ok "forward-only backend: table"; else notok "forward-only backend: table"; fi
# Its JSON: the backward's times null (as the training pair's are without one), not_supported names it.
if ! "$bin" bench $tiny --json --backend "$plugin" >"$out" 2>/dev/null; then notok "forward-only backend: --json exit status"
elif grep -qi 'nan' "$out"; then notok "forward-only backend: --json has nan"
elif [ -n "$PYTHON_NUMPY" ]; then
    if "$PYTHON_NUMPY" -c "import json, sys; d = json.load(open(sys.argv[1])); assert d['forward_s'] > 0 and d['backward_s'] is None and d['forward_backward_s'] is None and d['not_supported'] == ['backward'] and d['training_step_s'] is None, d" "$out" >>"$out" 2>&1; then
        ok "forward-only backend: --json (parsed)"; else notok "forward-only backend: --json (parsed)"; fi
elif grep -Eq '"not_supported":\["backward"\],"forward_s":[0-9][^,]*,"backward_s":null,"forward_backward_s":null' "$out"; then
    ok "forward-only backend: --json (pattern)"; else notok "forward-only backend: --json (pattern)"; fi
# Asked for alone, the missing backward is an error that says so.
"$bin" bench $tiny --backend "$plugin" --op backward >"$out" 2>&1
if [ $? -eq 1 ] && grep -q 'does not support recurrence_backward (it has none): nothing to time for --op backward' "$out" \
   && ! grep -q 'time (ms)' "$out"; then ok "forward-only backend: --op backward exits 1"; else notok "forward-only backend: --op backward exits 1"; fi

# A bad option: exit 2 and a message.
"$bin" bench --op sideways >"$out" 2>&1
if [ $? -eq 2 ] && grep -q -- '--op must be' "$out"; then ok "bad --op exits 2"; else notok "bad --op exits 2"; fi

# --runs and --warmup are whole integers in range (4294967297 was 1 through atoi), and the message
# names the option.
st=0
"$bin" bench $tiny --runs 1x >"$out" 2>&1; [ $? -eq 2 ] && grep -q -- "--runs must be an integer from 1 to 1000000, not '1x'" "$out" || st=1
"$bin" bench $tiny --warmup abc >"$out" 2>&1; [ $? -eq 2 ] && grep -q -- "--warmup must be an integer from 0 to 1000000, not 'abc'" "$out" || st=1
"$bin" bench $tiny --runs 4294967297 >"$out" 2>&1; [ $? -eq 2 ] && grep -q -- "--runs must be an integer" "$out" || st=1
if [ $st -eq 0 ]; then ok "bad --runs/--warmup exit 2"; else notok "bad --runs/--warmup exit 2"; fi

# A size past 64 bits is refused as the option's value, not clamped.
"$bin" bench $tiny -B 99999999999999999999 >"$out" 2>&1
if [ $? -eq 2 ] && grep -q -- "-B must be a non-negative integer below 2^63, not '99999999999999999999'" "$out"; then
    ok "-B out of range exits 2"; else notok "-B out of range exits 2"; fi

# A tensor whose byte count overflows size_t is an error naming it (it was a write past a 1-byte buffer).
"$bin" bench --runs 1 --warmup 0 --dtype f64 -B 1 -S 1 -N 1 -K 2305843009213693952 -V 1 >"$out" 2>&1
if [ $? -eq 1 ] && grep -q 'cannot allocate the tensors: q: its size overflows' "$out"; then
    ok "a tensor too large to address"; else notok "a tensor too large to address"; fi

# A tensor that cannot be allocated (409.6 GB, under a 4 GiB address-space limit) is named, with its size.
(ulimit -v 4194304 2>/dev/null || exit 3
 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 exec "$bin" bench --runs 1 --warmup 0 -B 1 -S 100000000 -N 16 -K 64 -V 16) >"$out" 2>&1
st=$?
if [ $st -eq 3 ]; then n=$((n + 1)); echo "ok $n - out of memory names the tensor # SKIP ulimit -v unsupported"
elif [ $st -eq 1 ] && grep -q 'cannot allocate the tensors: q: out of memory for 409600000000 bytes' "$out"; then
    ok "out of memory names the tensor"; else notok "out of memory names the tensor"; fi

# Output that cannot be written is an error, not a silent exit 0.
if [ -w /dev/full ]; then
    "$bin" bench $tiny --json >/dev/full 2>"$out"
    if [ $? -eq 1 ] && grep -q 'm2rnn bench: cannot write the output' "$out"; then ok "a full stdout exits 1"; else notok "a full stdout exits 1"; fi
else
    n=$((n + 1)); echo "ok $n - a full stdout exits 1 # SKIP no writable /dev/full here"
fi

rm -f "$out"
