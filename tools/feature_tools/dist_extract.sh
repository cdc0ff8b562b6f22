#!/usr/bin/env bash
# Distributed feature extraction into one cache: bash tools/feature_tools/dist_extract.sh CONFIG GPUS --split S
# --out DIR [...]. Every process writes its own shards (see tools/feature_tools/extract_features.py); multi-node: see
# tools/torchrun.sh.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/../torchrun.sh" feature_tools/extract_features.py "$2" "$1" "${@:3}"
