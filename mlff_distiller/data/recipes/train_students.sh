#!/usr/bin/env bash
# Train the shipped students from the labelled datasets (label_organic.sh, label_water.sh), then copy them
# into mlff_distiller/data/students/. Paracetamol and caffeine are never trained on: they measure transfer.
# Usage: train_students.sh organic-standard|organic-tiny|organic-ultra-tiny|water-standard
set -euo pipefail
export OMP_NUM_THREADS=1
D=build/datasets
OUT=build/students
mkdir -p "$OUT"
ORGANIC="$D/aspirin.h5 $D/ethanol.h5 $D/malonaldehyde.h5 $D/uracil.h5 $D/toluene.h5 $D/naphthalene.h5 $D/salicylic-acid.h5 $D/benzene.h5"
case "$1" in
  organic-standard)   mlffd distill $ORGANIC --size standard   -o $OUT/organic-standard.ckpt   --time-limit 50 --batch-size 8 --val-fraction 0.05 --test-fraction 0.1 --seed 0 --test-output $OUT/organic-test.h5 --overwrite --quiet ;;
  organic-tiny)       mlffd distill $ORGANIC --size tiny       -o $OUT/organic-tiny.ckpt       --time-limit 40 --batch-size 8 --val-fraction 0.05 --test-fraction 0.1 --seed 0 --test-output $OUT/organic-test.h5 --overwrite --quiet ;;
  organic-ultra-tiny) mlffd distill $ORGANIC --size ultra-tiny -o $OUT/organic-ultra-tiny.ckpt --time-limit 30 --batch-size 8 --val-fraction 0.05 --test-fraction 0.1 --seed 0 --test-output $OUT/organic-test.h5 --overwrite --quiet ;;
  water-standard)     mlffd distill $D/water-32.h5 --size standard -o $OUT/water-standard.ckpt --time-limit 18 --batch-size 4 --val-fraction 0.1 --test-fraction 0.15 --seed 0 --overwrite --quiet ;;
  *) echo "unknown student '$1'" >&2; exit 2 ;;
esac
# Transfer to the held-out molecules (organic students): mlffd evaluate $OUT/organic-standard.ckpt $D/paracetamol.h5 $D/caffeine.h5
