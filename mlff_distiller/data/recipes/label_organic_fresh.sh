#!/usr/bin/env bash
# Fresh 300 K teacher-MD frames of the eight training molecules and caffeine, for measuring the students
# independently of their training data: their own seed (101), MD only (no displacements, no normal modes),
# 500 steps of equilibration and 20 steps (10 fs) between frames, 60 frames per molecule.
# Outputs build/fresh/<name>.h5. Resumable: re-run after an interruption.
set -euo pipefail
export OMP_NUM_THREADS=1
OUT=build/fresh
MOLS=mlff_distiller/data/molecules
mkdir -p "$OUT"
for name in aspirin ethanol malonaldehyde uracil toluene naphthalene salicylic-acid benzene caffeine; do
  if [ -f "$OUT/$name.h5" ]; then flag=--resume; else flag=; fi
  mlffd sample "$MOLS/$name.xyz" -o "$OUT/$name.h5" --frames 60 --temperatures 300 --random-fraction 0 \
    --normal-mode-fraction 0 --stride 20 --equilibration 500 --seed 101 --quiet $flag
done
