#!/bin/bash
# Device call: the BF16 training step (forward_save + backward_saved) and the plain backward at
# several checkpoint intervals C (M2RNN_CUDA_CKPT_C caps C; the default is the largest that fits
# in shared memory), for the choice of C (NOTES.md v9). Usage: ckpt_sweep.sh ["7b:17 13 9 5" ...]
. "$(dirname "$0")/../device_env.sh"
for spec in "${@:-7b:17 13 9 5}" ; do
  p=${spec%%:*}
  for cc in ${spec#*:}; do
    echo "== $p C<=$cc"
    M2RNN_CUDA_CKPT_C=$cc "$C/bin/m2rnn" bench --backend cuda --preset $p --dtype bf16 --runs 10 --warmup 3 2>&1 \
      | tee -a "$OUT/ckpt_sweep_$p.log" | grep -E "^  (backward |backward_saved|training)|saved buffer|peak"
  done
done
