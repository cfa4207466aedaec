#!/usr/bin/env bash
# Label the 32-molecule water box with GFN2-xTB: 120 frames (MD at 300 and 400 K, every step of 0.5 fs,
# plus 40 % random displacements of MD frames; about 140 teacher calls of 3-10 s each). Output build/datasets/water-32.h5. Resumable: re-run after an interruption.
set -euo pipefail
export OMP_NUM_THREADS=1
OUT=build/datasets
mkdir -p "$OUT"
if [ -f "$OUT/water-32.h5" ]; then flag=--resume; else flag=; fi
mlffd sample mlff_distiller/data/systems/water-32.xyz -o "$OUT/water-32.h5" --frames 120 --temperatures 300 400 \
  --stride 1 --equilibration 10 --random-fraction 0.4 --seed 1 --quiet $flag
