#!/usr/bin/env bash
# Run one of mmdiff's tools on NPROC local processes with torchrun: bash tools/torchrun.sh TOOL NPROC [arguments],
# TOOL relative to tools/ (train.py, feature_tools/extract_features.py).
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node (torchrun's static rendezvous).
set -euo pipefail
TOOL=$1
NPROC=$2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHONPATH="$ROOT:${PYTHONPATH:-}" exec python -m torch.distributed.run \
    --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" --nproc_per_node="$NPROC" "$ROOT/tools/$TOOL" "${@:3}" --launcher pytorch
