#!/usr/bin/env bash
# The frozen-backbone GPU benchmark on a bare, offline GPU node that has its own PyTorch.
#
#   bash tools/analysis_tools/gpu_benchmark.sh WHEEL_DIR [options of `tools/analysis_tools/benchmark.py backbone`]
#   bash tools/analysis_tools/gpu_benchmark.sh -         [options]     use this Python's packages as they are (install nothing)
#
# 1. Installs, from WHEEL_DIR only (pip --no-index --no-deps, into a temporary folder put first on PYTHONPATH),
#    the wheels of diffusers, mmengine and their dependencies that the node's Python lacks (torch, numpy and the
#    rest of the node's own stack are kept; tools/analysis_tools/gpu_benchmark_wheels.py chooses). Fill WHEEL_DIR on a machine
#    with a package registry, for the node's Python 3.X:
#        pip download --dest WHEEL_DIR --only-binary=:all: --python-version 3.X --platform manylinux_2_28_x86_64 \
#            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 diffusers==0.42.1 mmengine==0.11.0rc3 \
#            opencv-python-headless==5.0.0.93
#    (the manylinux_2_17 tags: some dependencies publish only those wheels; opencv: mmengine's runner imports cv2
#    without declaring it). The versions are those of requirements/pins.txt; about 120 MB for Python 3.11.
# 2. Checks that the backbone imports with torch, diffusers and mmengine alone (mmcv, mmdet, mmseg and
#    mmpretrain blocked).
# 3. Runs `tools/analysis_tools/benchmark.py backbone --compile --profile` (ADM-256, batch 32 at 256x256 on cuda by default;
#    every setting: fp32, bf16 autocast, bf16 weights, channels_last, torch.compile cold and warm, CUDA graphs,
#    1 and 3 timesteps), on a fresh inductor cache so the first compile is cold, under a time limit of
#    MMDIFF_BENCH_TIMEOUT seconds (default 480). Options given after WHEEL_DIR are appended, so they win (e.g.
#    --no-compile, --arch adm-tiny, --device cpu). It prints the table, the profiler's top kernels and, last, a
#    summary against the target, and writes work_dirs/benchmarks/backbone_<arch>_<device>.json (row by row, so a
#    run stopped by the limit keeps what it measured).
#
# Environment: PYTHON (default python3), MMDIFF_BENCH_TIMEOUT (seconds, default 480).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-python3}
TIMEOUT=${MMDIFF_BENCH_TIMEOUT:-480}

fail() { echo "[gpu_benchmark] $*" >&2; exit 1; }
log() { echo "[gpu_benchmark] $*"; }

[ $# -ge 1 ] || fail "usage: bash tools/analysis_tools/gpu_benchmark.sh WHEEL_DIR|- [tools/analysis_tools/benchmark.py backbone options]"
WHEEL_DIR=$1
shift
"$PYTHON" -c 'import torch' 2>/dev/null || fail "'$PYTHON' cannot import torch; set PYTHON to the node's Python"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mmdiff-gpu-benchmark.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
SITE="$WORK/site"
mkdir -p "$SITE"

# 1. the wheels the node lacks
if [ "$WHEEL_DIR" = "-" ]; then
    log "using $PYTHON's installed packages (no install)"
else
    [ -d "$WHEEL_DIR" ] || fail "WHEEL_DIR '$WHEEL_DIR' is not a folder; give a folder of wheels or '-'"
    WHEEL_LIST=$("$PYTHON" "$ROOT/tools/analysis_tools/gpu_benchmark_wheels.py" "$WHEEL_DIR") || fail "no wheels chosen (above)"
    mapfile -t WHEELS <<< "$WHEEL_LIST"
    if [ ${#WHEELS[@]} -gt 0 ] && [ -n "${WHEELS[0]}" ]; then
        "$PYTHON" -m pip --version >/dev/null 2>&1 || fail "'$PYTHON' has no pip to install the wheels with"
        "$PYTHON" -m pip install --quiet --no-index --no-deps --disable-pip-version-check --target "$SITE" \
            "${WHEELS[@]}"
        log "installed ${#WHEELS[@]} wheels into a temporary folder: $(for wheel in "${WHEELS[@]}"; do \
            basename "$wheel" | cut -d- -f1-2; done | tr '\n' ' ')"
    else
        log "nothing to install: $PYTHON already has every distribution of $WHEEL_DIR"
    fi
fi
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1
export TORCHINDUCTOR_CACHE_DIR="$WORK/inductor"  # fresh: the first compile of a setting is cold

# 2. the backbone needs torch, diffusers and mmengine only
"$PYTHON" - <<'EOF' || fail "the backbone does not import with torch, diffusers and mmengine alone (above)"
import sys


class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmcv', 'mmdet', 'mmseg', 'mmpretrain'):
            raise ImportError(f'{name} is blocked: the backbone benchmark must not need it')


sys.meta_path.insert(0, Block())
import diffusers, mmengine, torch  # noqa: E401,E402
import mmdiff.models.backbones  # noqa: F401,E402
print(f'[gpu_benchmark] torch {torch.__version__} (cuda {torch.version.cuda}, available: '
      f'{torch.cuda.is_available()}), diffusers {diffusers.__version__}, mmengine {mmengine.__version__}')
EOF

# 3. the benchmark, inside the time limit
cd "$ROOT"
status=0
timeout "$TIMEOUT" "$PYTHON" tools/analysis_tools/benchmark.py backbone --compile --profile "$@" || status=$?
if [ "$status" -eq 124 ]; then
    fail "stopped after ${TIMEOUT}s (MMDIFF_BENCH_TIMEOUT); the rows measured so far are in work_dirs/benchmarks/"
fi
exit "$status"
