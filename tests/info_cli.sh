#!/bin/sh
# `m2rnn info` from the command line (TAP): the backends it lists are the reference and every plug-in
# that `m2rnn check` runs by default (libm2rnn-NAME.so in $M2RNN_PLUGIN_PATH, then the install's
# plug-in directory), each with its description or why it cannot be used here.
# Needs M2RNN_BIN and M2RNN_EXAMPLE_PLUGIN (set by make check). The unavailable plug-in
# (plugin_unavailable.so, next to the example) is built with Check only; without it that test is skipped.
bin=${M2RNN_BIN:-./m2rnn}
plugin=${M2RNN_EXAMPLE_PLUGIN:-tests/.libs/libm2rnn-example.so}
plugdir=$(dirname "$plugin")
out=$(mktemp)
tmp=$(mktemp -d)
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; sed 's/^/# /' "$out" | tail -20; }

echo "1..5"

"$bin" info --help >"$out" 2>&1 && grep -q 'M2RNN_PLUGIN_PATH' "$out" && grep -q 'm2rnn check' "$out" && ok "info --help" || notok "info --help"

# A plug-in on M2RNN_PLUGIN_PATH is listed by name with its description (only "cuda" was tried before).
if M2RNN_PLUGIN_PATH="$plugdir" "$bin" info >"$out" 2>&1 && grep -q '^  ref  *reference' "$out" \
   && grep -q '^  example  *example plug-in: ' "$out"; then ok "a plug-in on the path is listed"; else notok "a plug-in on the path is listed"; fi

# One that cannot open here is listed with the reason, and info still exits 0; every directory of
# the colon-separated path is searched.
if [ -f "$plugdir/plugin_unavailable.so" ]; then
    cp "$plugdir/plugin_unavailable.so" "$tmp/libm2rnn-gone.so"
    if M2RNN_PLUGIN_PATH="$tmp:$plugdir" "$bin" info >"$out" 2>&1 && grep -q '^  gone  *unavailable: .*no test device present' "$out" \
       && grep -q '^  example  *example plug-in: ' "$out"; then
        ok "an unavailable plug-in is listed with why"; else notok "an unavailable plug-in is listed with why"; fi
    rm -f "$tmp/libm2rnn-gone.so"
else
    n=$((n + 1)); echo "ok $n - an unavailable plug-in is listed with why # SKIP no plugin_unavailable.so (built with Check)"
fi

# A name in two directories of the path is one backend (the first, as m2rnn_backend_open finds it).
cp "$plugin" "$tmp/libm2rnn-example.so"
if M2RNN_PLUGIN_PATH="$tmp:$plugdir" "$bin" info >"$out" 2>&1 && [ "$(grep -c '^  example ' "$out")" -eq 1 ]; then
    ok "a plug-in found twice is listed once"; else notok "a plug-in found twice is listed once"; fi

# An unknown option is a usage error.
"$bin" info --nosuch >"$out" 2>&1
if [ $? -eq 2 ] && grep -q "m2rnn info: unknown option '--nosuch'" "$out"; then ok "unknown option exits 2"; else notok "unknown option exits 2"; fi

rm -rf "$tmp"
rm -f "$out"
[ "$fails" -eq 0 ]
