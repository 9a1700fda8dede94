#!/usr/bin/env bash
# The GPU check, one prepared script of at most 10 minutes for a machine with a CUDA GPU and harlab installed
# (with a CUDA build of torch): the test suite's device and replica tests; ms per step of each tutorial model
# trained alone and as 10 replicas (the numbers behind replicas being automatic on a GPU); then the whole
# `harlab reproduce` protocol on the GPU in bf16 with each configuration's repeats as replicas (the GPU
# default), timed, with the per-experiment table (Keras seconds from the measured JSON beside it) and the wall
# time. Keras's seconds come from a CPU: the ratio says what a GPU buys over the tutorials' CPU code.
#
# Usage: bash benchmarks/gpu_check.sh [DATA_DIR] [PRECISION]      (defaults: ../shared/data, bf16)
#        PYTHON=/path/to/python bash benchmarks/gpu_check.sh ...
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
data_dir=${1:-../shared/data}
precision=${2:-bf16}
keras=benchmarks/results-keras-protocol-2026-11-24.json
start=$(date +%s)

"$python" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: torch {torch.__version__} sees no CUDA GPU on this machine")
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, bf16: {torch.cuda.is_bf16_supported()}")
EOF

echo "== device and replica tests"
"$python" -m pytest -q -p no:cacheprovider tests/test_devices.py tests/test_replicas.py

echo "== ms per step on cuda: alone, then as 10 replicas"
for replicas in 1 10; do
  timeout 60 "$python" benchmarks/step_speed.py --device cuda --replicas "$replicas" --windows 4096 | grep -v '^{' \
    || echo "step_speed --replicas $replicas: stopped after 60 s"
done

echo "== the whole protocol on cuda, $precision"
out=$(mktemp -d)/reproduce
timeout 360 "$python" benchmarks/protocol_speed.py --run --out "$out" --data-dir "$data_dir" --device cuda \
  --precision "$precision" --keras "$keras"
echo "gpu_check wall time: $(( $(date +%s) - start )) s"
