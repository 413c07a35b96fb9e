#!/usr/bin/env bash
# The GPU checks (benchmarks/gpu_check.py): AMP training step vs MONAI, the memory estimate vs
# torch.cuda.max_memory_allocated, sliding-window prediction speed. Under 10 minutes on one GPU.
#   bash benchmarks/gpu_check.sh          # on a machine with CUDA (through the `device` tool)
#   bash benchmarks/gpu_check.sh --dry    # CPU rehearsal at toy sizes (what the tests run)
# Uses the installed package when there is one, else this checkout (a bare GPU machine with torch).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import mednext_fw" 2>/dev/null || export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
exec python3 benchmarks/gpu_check.py "$@"
