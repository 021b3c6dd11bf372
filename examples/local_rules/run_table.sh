#!/usr/bin/env bash
# The README's local-rule table: each rule and its backprop reference from examples/configs, one run at a time,
# 1 thread, then `snn energy` on each run folder. Usage: examples/local_rules/run_table.sh OUT_DIR [NAME ...]
# NAME is a config stem (spoken_digits_softhebb, digits8x8_ff, ...) or STEM:control for the frozen-random control
# of an STDP config (A+ = A- = 0). Writes OUT_DIR/NAME/ (the run folder) and OUT_DIR/NAME.energy.txt.
set -euo pipefail
out=$1; shift
export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
for name in "$@"; do
  stem=${name%%:*}; extra=()
  [[ $name == *:control ]] && extra=(--set training.rule.a_plus=0 --set training.rule.a_minus=0)
  dir=$out/${name/:/_}
  start=$(date +%s)
  snn train "examples/configs/$stem.yaml" --out "$dir" --overwrite --no-progress "${extra[@]}" > "$dir.train.log" 2>&1
  echo "$name wall_s=$(( $(date +%s) - start )) $(python -c "import json,sys; m=json.load(open('$dir/test_metrics.json')); print('test_acc=%.4f best_epoch=%s' % (m['test_acc'], m['best_epoch']))")" | tee -a "$out/summary.txt"
  snn energy "$dir" > "$dir.energy.txt" 2>&1
done
