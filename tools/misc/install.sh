#!/usr/bin/env bash
# Build or refresh mmdiff's project virtual environment.
#
#   bash tools/misc/install.sh                 install (resumes: finished steps are skipped)
#   bash tools/misc/install.sh --which-mmcv    print where the mmcv wheel would come from, install nothing
#
# Steps: venv -> build tools + torch -> mmcv with compiled ops -> OpenMMLab stack + mmdiff -> check.
# Every version comes from requirements/pins.txt. A step that finished is stamped in the venv with the hash of
# the files it depends on, so a re-run skips it; change a pin and the affected steps run again.
#
# mmcv's wheel is taken from, in order:
#   1. $MMDIFF_WHEELHOUSE (a folder of prebuilt wheels, e.g. ../shared/wheels), when set and it holds one;
#   2. the user cache $MMDIFF_CACHE/wheels/torch-<torch version>/ (default ~/.cache/mmdiff), filled by step 3;
#   3. a build from mmcv's PyPI sdist with MMCV_WITH_OPS=1 and the C++ standard raised to C++20 (~11 min on
#      2 cores), whose wheel is then stored in the cache of 2.
#
# Environment: MMDIFF_VENV (default <repo>/.venv), PYTHON (default python3.11), MMDIFF_CACHE, MMDIFF_WHEELHOUSE.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PINS="$ROOT/requirements/pins.txt"
ENV_REQS="$ROOT/requirements/env.txt"
VENV=${MMDIFF_VENV:-$ROOT/.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac  # absolute: the mmcv build runs its python from another folder
PYTHON=${PYTHON:-python3.11}
CACHE=${MMDIFF_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmdiff}
WHEELHOUSE=${MMDIFF_WHEELHOUSE:-}
STAMPS="$VENV/.mmdiff-install"
CURRENT_STEP="start"

log() { echo "[install] $*"; }
fail() {
    echo "[install] FAILED at step '$CURRENT_STEP': $*" >&2
    echo "[install] Fix the cause and run the same command again: finished steps are skipped." >&2
    exit 1
}
trap 'fail "command \"$BASH_COMMAND\" exited with status $?"' ERR

pin() {  # pin NAME -> the exact version pinned for NAME
    local version
    version=$(sed -n "s/^$1==\([^ ]*\).*/\1/p" "$PINS")
    [ -n "$version" ] || fail "no exact pin 'NAME==VERSION' for '$1' in $PINS"
    echo "$version"
}

TORCH_VERSION=$(pin torch)
MMCV_VERSION=$(pin mmcv)
MMCV_CACHE="$CACHE/wheels/torch-$TORCH_VERSION"

python_tag() {  # cp311 for CPython 3.11
    "$PYTHON" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")' \
        || fail "cannot run '$PYTHON'; set PYTHON to a Python 3.11 interpreter"
}

find_mmcv_wheel() {  # find_mmcv_wheel DIR -> path of a matching mmcv wheel in DIR, or nothing
    local dir=$1 tag
    tag=$(python_tag)
    [ -d "$dir" ] || return 0
    find "$dir" -maxdepth 1 -name "mmcv-$MMCV_VERSION-$tag-$tag-linux_x86_64.whl" | sort | head -n 1
}

mmcv_source() {  # prints "wheelhouse PATH", "cache PATH" or "build"
    local wheel
    if [ -n "$WHEELHOUSE" ]; then
        wheel=$(find_mmcv_wheel "$WHEELHOUSE")
        if [ -n "$wheel" ]; then echo "wheelhouse $wheel"; return; fi
    fi
    wheel=$(find_mmcv_wheel "$MMCV_CACHE")
    if [ -n "$wheel" ]; then echo "cache $wheel"; return; fi
    echo "build"
}

if [ "${1:-}" = "--which-mmcv" ]; then
    mmcv_source
    exit 0
elif [ $# -gt 0 ]; then
    fail "unknown argument '$1'; valid: no argument (install) or --which-mmcv"
fi

stamp_key() {  # hash of the files a step depends on, plus its extra words
    cat "$PINS" "$ENV_REQS" "$ROOT/pyproject.toml" | { cat; echo "$*"; } | sha256sum | cut -c1-16
}
done_before() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$(stamp_key "$1")" ]; }
mark_done() { mkdir -p "$STAMPS"; stamp_key "$1" > "$STAMPS/$1"; }

PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -c "$PINS")

# 1. virtual environment ------------------------------------------------------------------------------------------
CURRENT_STEP="venv"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtual environment $VENV with $PYTHON"
    "$PYTHON" -m venv "$VENV" || fail "'$PYTHON -m venv' failed; install Python 3.11 with its venv module"
fi
"$VENV/bin/python" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
    || fail "$VENV holds $("$VENV/bin/python" --version); mmdiff needs Python 3.11: remove $VENV and rerun"

# 2. build tools and torch -----------------------------------------------------------------------------------------
CURRENT_STEP="torch"
if ! done_before torch; then
    log "installing torch $TORCH_VERSION, torchvision, mmengine and mmcv's build tools"
    "${PIP[@]}" setuptools wheel ninja packaging numpy pyyaml addict yapf opencv-python-headless \
        torch torchvision mmengine
    mark_done torch
fi

# 3. mmcv with compiled ops ----------------------------------------------------------------------------------------
CURRENT_STEP="mmcv"
build_mmcv() {
    local work
    work=$(mktemp -d)
    log "building mmcv $MMCV_VERSION with compiled ops from its sdist (about 11 minutes on 2 cores) in $work"
    "$VENV/bin/python" -m pip download --disable-pip-version-check --no-deps --no-binary :all: \
        --no-build-isolation "mmcv==$MMCV_VERSION" -d "$work/src"
    tar xzf "$work/src/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
    # torch 2.14's headers need C++20; mmcv's setup.py asks for C++14/17.
    sed -i 's/-std=c++14/-std=c++20/g; s/-std=c++17/-std=c++20/g' "$work/mmcv-$MMCV_VERSION/setup.py"
    (cd "$work/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS=$(nproc) \
        "$VENV/bin/python" -m pip wheel --disable-pip-version-check --no-build-isolation --no-deps -w "$work/dist" .)
    if command -v strip >/dev/null; then  # drop debug symbols: 82 MB -> 2 MB of compiled ops
        (cd "$work/dist" && "$VENV/bin/python" -m wheel unpack -d unpacked mmcv-*.whl \
            && strip --strip-debug unpacked/mmcv-*/mmcv/_ext*.so \
            && rm mmcv-*.whl && "$VENV/bin/python" -m wheel pack -d . unpacked/mmcv-*)
    fi
    mkdir -p "$MMCV_CACHE"
    cp "$work"/dist/mmcv-*.whl "$MMCV_CACHE/"
    rm -rf "$work"
    log "cached the mmcv wheel in $MMCV_CACHE"
}
if ! done_before mmcv; then
    read -r source wheel <<< "$(mmcv_source)"
    if [ "$source" = "build" ]; then
        build_mmcv
        read -r source wheel <<< "$(mmcv_source)"
    fi
    log "installing mmcv from the $source: $wheel"
    "${PIP[@]}" --no-deps --force-reinstall "$wheel"
    "$VENV/bin/python" -c 'import mmcv.ops' || fail "the mmcv wheel $wheel (from the $source) has no compiled ops \
that load into torch $TORCH_VERSION; remove that wheel (or unset MMDIFF_WHEELHOUSE) and rerun to build one"
    mark_done mmcv
fi

# 4. the OpenMMLab stack, diffusers and mmdiff ---------------------------------------------------------------------
CURRENT_STEP="stack"
if ! done_before stack; then
    log "installing mmengine, mmdet, mmsegmentation, mmpretrain, diffusers and the test tools"
    "${PIP[@]}" -r "$ENV_REQS" -e "$ROOT"
    mark_done stack
fi

# 5. check the stack imports together --------------------------------------------------------------------------------
CURRENT_STEP="check"
if ! done_before check; then
    "$VENV/bin/python" - <<'PY' || fail "the installed stack does not import; see the traceback above"
import torch, mmcv, mmcv.ops, mmengine, mmdet, mmseg, mmpretrain.models, diffusers, mmdiff
print(f'[install] torch {torch.__version__}, mmcv {mmcv.__version__} (ops), mmengine {mmengine.__version__}, '
      f'mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}, '
      f'diffusers {diffusers.__version__}, mmdiff {mmdiff.__version__}')
PY
    mark_done check
fi
log "environment ready: $VENV"
