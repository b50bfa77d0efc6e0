#!/usr/bin/env bash
# Train and ship mrisr's model zoo on CPU:  scripts/shipped/train_zoo.sh [NAME ...]
# (default: all six). Each model: configs/zoo/NAME.yaml -> runs/zoo/NAME -> src/mrisr/pretrained/NAME.*
# Data: scripts/data/build_training_set.py (real offline MRI + synthetic contrasts; held-out scans excluded).
# JOBS=2 trains two models at a time with one thread each (a 2-core machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=.venv/bin
DATA=${DATA:-data/training}
JOBS=${JOBS:-2}
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(kspace-x2 fast-kspace-x2 kspace-x3 kspace-x4 bicubic-x2 block-x3)
[ -f "$DATA/prepared/manifest.json" ] || $BIN/python scripts/data/build_training_set.py "$DATA"

one() {
    local name=$1 start end
    start=$(date +%s)
    OMP_NUM_THREADS=1 $BIN/mrisr train "configs/zoo/$name.yaml" --out "runs/zoo/$name" > "runs/zoo/$name.log" 2>&1
    end=$(date +%s)
    $BIN/python scripts/shipped/package_zoo.py "$name" --run "runs/zoo/$name" --data "$DATA" --force \
        --budget "$(( (end - start + 59) / 60 )) min wall on 1 CPU thread (2-core machine, $JOBS jobs at once)" \
        > "runs/zoo/$name.card.log" 2>&1
    echo "$name: trained and packaged in $(( end - start )) s (runs/zoo/$name.log, runs/zoo/$name.card.log)"
}

mkdir -p runs/zoo
running=0
for name in "${NAMES[@]}"; do
    one "$name" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n; running=$((running - 1)); fi
done
wait
