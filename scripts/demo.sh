#!/usr/bin/env bash
# `make demo`: run mrisr's main job on package-shipped real MRI and say where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=demo-output
mkdir -p "$OUT"
BIN=.venv/bin
MR=$($BIN/python -c "from pydicom.data import get_testdata_file; print(get_testdata_file('MR_small.dcm'))")
echo "== mrisr info on a real MR DICOM file shipped with pydicom"
$BIN/mrisr info "$MR"
echo "== mrisr convert DICOM -> NIfTI"
$BIN/mrisr convert "$MR" "$OUT/MR_small.nii.gz" --force
echo
echo "Results are in $(pwd)/$OUT"
