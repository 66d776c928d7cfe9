#!/usr/bin/env bash
# The GPU part of the paper-scale benchmark, in one short command (under 5 minutes) on a machine
# with a CUDA GPU and this repository's venv:
#   1. samples/s of AN-full at the paper's shape (batch 2048, 47,375 species, width 256, depth 4)
#      on 1 GPU and, where the machine has several, on all of them under torchrun (nccl), with the
#      extrapolated epoch time (python -m training.benchmarks.scale --device cuda --skip-read);
#   2. a small training with --device cuda through the CLI, whose bundle is then loaded and run on
#      the CPU (the bundle is the same whatever the device).
# Record the printed figures in training/benchmarks/README.md.
#
#   scripts/gpu_check.sh             # run it (needs a CUDA GPU)
#   scripts/gpu_check.sh --dry-run   # check the commands and print them; needs no GPU
set -euo pipefail
cd "$(dirname "$0")/.."

DRY_RUN=0
case "${1:-}" in
  "") ;;
  --dry-run) DRY_RUN=1 ;;
  *) echo "usage: scripts/gpu_check.sh [--dry-run]" >&2; exit 2 ;;
esac

PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
STEPS="${STEPS:-100}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [ "$DRY_RUN" = 1 ]; then
  GPUS=2  # show the torchrun line too
else
  GPUS=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")
  if [ "$GPUS" -lt 1 ]; then
    echo "error: no CUDA GPU is visible to torch (torch.cuda.device_count() is 0); run this on a GPU machine," \
         "or scripts/gpu_check.sh --dry-run to check the commands only." >&2
    exit 1
  fi
fi
PROCESSES="1"
[ "$GPUS" -gt 1 ] && PROCESSES="1 $GPUS"

# 2,000 records of 20 species in a small square: enough for one epoch of a real training
DATA="$WORK/occurrences.csv"
BENCH=("$PYTHON" -m training.benchmarks.scale --device cuda --skip-read --steps "$STEPS" --warmup 5
       --processes $PROCESSES)
TRAIN=("$PYTHON" -m training train --data "$DATA" --out "$WORK/gpu.sinr" --device cuda --epochs 2
       --batch-size 512 --no-progress)
LOAD=("$PYTHON" -c "import sys, numpy as np
from sinr_qgis.core.bundle import ModelBundle
from sinr_qgis.core.runtime import Predictor
b = ModelBundle.load(sys.argv[1])
p = Predictor(b).predict_points(np.array([[-75.0, 40.0]]))
assert p.shape == (1, b.n_species) and np.isfinite(p).all(), p.shape
print(f'{sys.argv[1]}: {b.n_species} species, loaded and run on the CPU')" "$WORK/gpu.sinr")

if [ "$DRY_RUN" = 1 ]; then
  # the commands parse with this tree's options: a renamed option fails here, not on the GPU machine
  grep -q -- "--device {cpu,cuda,mps}" <<<"$("$PYTHON" -m training.benchmarks.scale --help)"
  grep -q -- "--device {auto,cpu,cuda,mps}" <<<"$("$PYTHON" -m training train --help)"
  "$PYTHON" -c "import ast, sys; ast.parse(sys.argv[1])
from sinr_qgis.core.runtime import Predictor
assert hasattr(Predictor, 'predict_points')" "${LOAD[2]}"
  echo "dry run: would run, with $PYTHON:"
  printf '  %q' "${BENCH[@]}"; echo
  printf '  %q' "${TRAIN[@]}"; echo
  echo "  (then load $WORK/gpu.sinr on the CPU and predict one point)"
  exit 0
fi

"$PYTHON" - "$DATA" <<'EOF'
import sys
import numpy as np
rng = np.random.default_rng(0)
with open(sys.argv[1], "w") as f:
    f.write("species,latitude,longitude\n")
    for i in range(2000):
        f.write(f"Species {i % 20},{40 + rng.normal(0, 3):.5f},{-75 + (i % 20) + rng.normal(0, 3):.5f}\n")
EOF
echo "== benchmark: the paper's shape on $GPUS GPU(s), $STEPS steps"
timeout 240 "${BENCH[@]}"
echo "== a training with --device cuda, its bundle loaded on the CPU"
timeout 120 "${TRAIN[@]}"
timeout 60 "${LOAD[@]}"
