#!/usr/bin/env bash
# Label the 32-molecule water box with GFN2-xTB: 64 frames, 32 consecutive MD steps (0.5 fs) at 300 K and
# 32 random displacements (0.03 Å) of them: 64 teacher calls of 5-40 s each on a shared 2-core machine.
# Output build/datasets/water-32.h5. Resumable: re-run after an interruption.
set -euo pipefail
export OMP_NUM_THREADS=1
OUT=build/datasets
mkdir -p "$OUT"
if [ -f "$OUT/water-32.h5" ]; then flag=--resume; else flag=; fi
mlffd sample mlff_distiller/data/systems/water-32.xyz -o "$OUT/water-32.h5" --frames 64 --temperatures 300 \
  --stride 1 --equilibration 0 --random-fraction 0.5 --displacement 0.03 --seed 1 --quiet $flag
