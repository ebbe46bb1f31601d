# Sourced by the device-call scripts (device_run.sh, device_variants.sh, microbench/*.sh), run from
# the repository root: prebuilt binaries and libraries in .carry/ (NOTES.md, "Running on the
# device"), logs to $OUT.
set -u
C=$PWD/.carry
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH=$C/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export M2RNN_PLUGIN_PATH=${M2RNN_PLUGIN_PATH:-$C/lib} # ab.sh points it at one of two plug-ins
export CK_TAP_LOG_FILE_NAME=- CK_DEFAULT_TIMEOUT=600
