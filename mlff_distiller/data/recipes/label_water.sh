#!/usr/bin/env bash
# Label water-32 (32 waters, 9.856 Å cube) with GFN2-xTB; teacher calls cost 5-40 s each on a shared
# 2-core machine. Run from the repository root with the venv's mlffd on PATH:
#   label_water.sh [old|liquid|all]   (default all; each part resumable: re-run after an interruption)
set -euo pipefail
export OMP_NUM_THREADS=1
OUT=build/datasets
PART=${1:-all}
mkdir -p "$OUT" build/water

# Part 1, the OLD data (build/datasets/water-32.h5, what the first water-standard was trained on):
# 64 correlated frames, 32 consecutive MD steps (0.5 fs, 16 fs in all) at 300 K and 32 random
# displacements (0.03 Å) of them. Too narrow to make a liquid-water model; kept to rebuild that student.
if [ "$PART" = old ] || [ "$PART" = all ]; then
  if [ -f "$OUT/water-32.h5" ]; then flag=--resume; else flag=; fi
  mlffd sample mlff_distiller/data/systems/water-32.xyz -o "$OUT/water-32.h5" --frames 64 --temperatures 300 \
    --stride 1 --equilibration 0 --random-fraction 0.5 --displacement 0.03 --seed 1 --quiet $flag
fi

# Part 2, the liquid (build/datasets/water-liquid.h5): 300 independent configurations from flexible
# TIP3P MD (OpenMM, 150 each at 300 and 350 K, 1 ps apart, a few minutes), then one teacher call each.
if [ "$PART" = liquid ] || [ "$PART" = all ]; then
  if [ ! -f build/water/configurations.xyz ]; then
    python mlff_distiller/data/recipes/water_configurations.py -o build/water/configurations.xyz
  fi
  if [ -f "$OUT/water-liquid.h5" ]; then flag=--resume; else flag=; fi
  mlffd sample --label build/water/configurations.xyz -o "$OUT/water-liquid.h5" --threads 1 --quiet $flag
fi
