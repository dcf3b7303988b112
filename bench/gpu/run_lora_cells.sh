#!/usr/bin/env bash
# Issue 20, item 5: the LoRA cells of the per-job default (bench.detection) and of the targeted
# benchmark (bench.targeted) on one GPU in under 10 minutes; figures under bench/results/gpu/.
#
#   bench/gpu/run_lora_cells.sh prepare   # on the CPU machine: fp16 MiniLM, data, wheels
#   bench/gpu/run_lora_cells.sh run       # on the GPU machine (carry bench/gpu/minilm-fp16,
#                                         #   bench/gpu/data and bench/gpu/wheels)
#   bench/gpu/run_lora_cells.sh run --dry-run   # the same pipeline, tiny and on the CPU (a test)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
if [ "${1:-}" = run ] && ! "$PY" -c "import pydantic" 2>/dev/null; then
  # The GPU image has torch/transformers/peft/scipy but not pydantic: install the carried wheels.
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/prefaudit-site bench/gpu/wheels/*.whl
  export PYTHONPATH="/tmp/prefaudit-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
exec "$PY" -m bench.gpu.lora_cells "$@"
