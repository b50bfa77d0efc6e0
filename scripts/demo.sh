#!/usr/bin/env bash
# `make demo`: run mrisr's main job on package-shipped real MRI and say where the results are.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=demo-output
mkdir -p "$OUT"
BIN=.venv/bin
# Real MR files shipped inside the pydicom package (no download).
MR=$($BIN/python -c "import pathlib, pydicom; print(pathlib.Path(pydicom.__file__).parent / 'data/test_files/MR_small.dcm')")
MR_JP2=$(dirname "$MR")/MR_small_jp2klossless.dcm

echo "== mrisr info on a real MR DICOM file shipped with pydicom"
$BIN/mrisr info "$MR"
echo
echo "== mrisr convert DICOM -> NIfTI (geometry kept: LPS -> RAS affine)"
$BIN/mrisr convert "$MR" "$OUT/MR_small.nii.gz" --force
echo
echo "== mrisr convert DICOM -> derived DICOM series folder (new UIDs, DERIVED, patient/study kept)"
$BIN/mrisr convert "$MR" "$OUT/MR_small_series/" --force
$BIN/mrisr info "$OUT/MR_small_series" | grep -E "^(shape|spacing_mm|series_description) "
echo
echo "== mrisr convert a JPEG 2000-compressed MR file -> 16-bit PNG"
$BIN/mrisr convert "$MR_JP2" "$OUT/MR_small.png" --force
echo
echo "Results are in $(pwd)/$OUT:"
echo "  $(pwd)/$OUT/MR_small.nii.gz      NIfTI of the DICOM file"
echo "  $(pwd)/$OUT/MR_small_series/     derived DICOM series of the DICOM file"
echo "  $(pwd)/$OUT/MR_small.png         16-bit PNG of the compressed file"
