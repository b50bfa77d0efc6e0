#!/usr/bin/env bash
# Rebuild the shipped default model from scratch (CPU, about an hour on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
$BIN/python scripts/shipped/mni_slabs.py data/mni_slabs --force
$BIN/mrisr prepare data/mni_slabs data/prepared/mni_slabs --group-by folder --split test=1,val=1,train=rest --force --no-progress
$BIN/mrisr train configs/shipped_fast_x2.yaml --out runs/shipped_fast_x2 "$@"
echo "best model: runs/shipped_fast_x2/checkpoints/best/generator.safetensors"
