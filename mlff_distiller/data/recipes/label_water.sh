#!/usr/bin/env bash
# Label the 32-molecule water box with GFN2-xTB: 200 frames (MD at 300 and 400 K, every 3rd step of 0.5 fs,
# plus 20 % random displacements). Output build/datasets/water-32.h5. Resumable: re-run after an interruption.
set -euo pipefail
export OMP_NUM_THREADS=1
OUT=build/datasets
mkdir -p "$OUT"
if [ -f "$OUT/water-32.h5" ]; then flag=--resume; else flag=; fi
mlffd sample mlff_distiller/data/systems/water-32.xyz -o "$OUT/water-32.h5" --frames 200 --temperatures 300 400 \
  --stride 3 --equilibration 30 --random-fraction 0.2 --seed 1 --quiet $flag
