#!/usr/bin/env bash
# Label the organic training set with GFN2-xTB: 400 frames per molecule at 300 and 600 K,
# paracetamol (held out of training, for transfer) 100 frames. Outputs in build/datasets/.
# Run from the repository root; resumable (re-run it after an interruption).
set -euo pipefail
export OMP_NUM_THREADS=1
OUT=build/datasets
MOLS=mlff_distiller/data/molecules
mkdir -p "$OUT"
for name in aspirin ethanol malonaldehyde uracil toluene naphthalene salicylic-acid benzene caffeine; do
  if [ -f "$OUT/$name.h5" ]; then flag=--resume; else flag=; fi
  mlffd sample "$MOLS/$name.xyz" -o "$OUT/$name.h5" --frames 400 --temperatures 300 600 --seed 1 --quiet $flag
done
if [ -f "$OUT/paracetamol.h5" ]; then flag=--resume; else flag=; fi
mlffd sample "$MOLS/paracetamol.xyz" -o "$OUT/paracetamol.h5" --frames 100 --temperatures 300 600 --seed 2 --quiet $flag
