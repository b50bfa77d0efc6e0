#!/usr/bin/env bash
# `make demo`: run mrisr's main job on package-shipped real MRI with the shipped default model, and
# say where the results are. Everything is re-created on each run (--force), nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=demo-output
BIN=.venv/bin
MODEL=fast-kspace-x2
mkdir -p "$OUT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

echo "== 1. Real MRI from PyPI: nilearn's MNI152 T1 template, cut into 6 anatomically disjoint slabs"
echo "      (slab3 is the held-out test slab of the shipped model $MODEL: it never saw it in training)"
$BIN/python scripts/shipped/mni_slabs.py "$OUT/mni_slabs" --force > /dev/null
TEST="$OUT/mni_slabs/slab3/mni_slab3.nii.gz"
$BIN/mrisr info "$TEST" | grep -E "^(shape|spacing_mm|orientation) "
echo
echo "== 2. The honest yardstick: simulate a shorter scan (central 1/2 of k-space in-plane), upscale with"
echo "      the baselines and the shipped model, score against the original (foreground mask), write a report"
$BIN/mrisr evaluate "$TEST" --degradation kspace --scale 2 --methods bicubic,lanczos,zerofill,$MODEL \
    --mask auto --out "$OUT/evaluation" --report --force --quiet
echo
echo "== 3. Whole-scan inference keeps geometry: degrade -> upscale (NIfTI), same field of view"
$BIN/mrisr degrade "$TEST" "$OUT/slab3_lowres_kspace_x2.nii.gz" --method kspace --scale 2 --seed 0 --force
$BIN/mrisr upscale "$OUT/slab3_lowres_kspace_x2.nii.gz" "$OUT/slab3_sr_x2.nii.gz" --model $MODEL --force
$BIN/mrisr info "$OUT/slab3_lowres_kspace_x2.nii.gz" | grep -E "^(shape|spacing_mm) "
$BIN/mrisr info "$OUT/slab3_sr_x2.nii.gz" | grep -E "^(shape|spacing_mm) "
echo
echo "== 4. DICOM in, DICOM out: a real MR file shipped with pydicom -> derived super-resolved DICOM series"
MR=$($BIN/python -c "import pathlib, pydicom; print(pathlib.Path(pydicom.__file__).parent / 'data/test_files/MR_small.dcm')")
$BIN/mrisr upscale "$MR" "$OUT/MR_small_sr_x2/" --model $MODEL --force
$BIN/mrisr info "$OUT/MR_small_sr_x2" | grep -E "^(shape|spacing_mm|series_description) "
$BIN/mrisr convert "$MR" "$OUT/MR_small.nii.gz" --force > /dev/null
echo
echo "Results are in $(pwd)/$OUT:"
echo "  evaluation/report.html        the report: table (baselines first), comparison figures, error maps"
echo "  evaluation/per_case.csv       per-case metrics; evaluation/summary.json: mean, std, 95% CI"
echo "  slab3_lowres_kspace_x2.nii.gz simulated shorter scan;  slab3_sr_x2.nii.gz: $MODEL output"
echo "  MR_small_sr_x2/               derived DICOM series (new UIDs, DERIVED, geometry recomputed)"
echo "  MR_small.nii.gz               the DICOM file as NIfTI (LPS -> RAS affine)"
