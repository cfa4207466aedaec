#!/usr/bin/env bash
# Train the shipped students from the labelled datasets (label_organic.sh, label_water.sh) and ship them
# into mlff_distiller/data/students/ (ship_student.py). Paracetamol and caffeine are never trained on:
# they measure transfer. Run from the repository root.
#
# The organic students are made in two generations:
#   gen1-*  from scratch (the students shipped up to commit 42b7d89; 14-18 epochs in 30-50 minutes);
#   organic-* fine-tuned from gen1 (--init) on the same eight molecules, lower learning rate, batch 16.
# Both generations read build/datasets/<molecule>.h5; the shipped organic students record the content hashes
# of the files they saw (`mlffd info organic-tiny`: data_hash 3e0d0ac0f2f2aaee...). Labels are not
# bit-reproducible between labelling runs (teacher MD), so a rerun gives equivalent, not identical, students.
#
# organic-standard is then refined on aspirin with mlffd refine (see its case below); it ships with
# organic-fresh.h5 (fresh teacher-MD frames, label_organic_fresh.sh) as its test split.
#
# water-standard: a standard student on 300 labelled TIP3P configurations, refined with mlffd refine on its
# own MD of the water-32 box; it ships with the loop's held-out frames as its test split.
#
# Usage: train_students.sh gen1-standard|gen1-tiny|gen1-ultra-tiny|organic-standard|organic-tiny|organic-ultra-tiny|water-standard
set -euo pipefail
export OMP_NUM_THREADS=1
D=build/datasets
OUT=build/students
mkdir -p "$OUT"
ORGANIC="$D/aspirin.h5 $D/ethanol.h5 $D/malonaldehyde.h5 $D/uracil.h5 $D/toluene.h5 $D/naphthalene.h5 $D/salicylic-acid.h5 $D/benzene.h5"
SPLIT="--val-fraction 0.05 --test-fraction 0.1 --seed 0"
FT="--batch-size 16 $SPLIT --overwrite --quiet"
SHIP="python mlff_distiller/data/recipes/ship_student.py"
case "$1" in
  gen1-standard)   mlffd distill $ORGANIC --size standard   -o $OUT/gen1-standard.ckpt   --time-limit 50 --batch-size 8 $SPLIT --test-output $OUT/gen1-test.h5 --overwrite --quiet ;;
  gen1-tiny)       mlffd distill $ORGANIC --size tiny       -o $OUT/gen1-tiny.ckpt       --time-limit 40 --batch-size 8 $SPLIT --test-output $OUT/gen1-test.h5 --overwrite --quiet ;;
  gen1-ultra-tiny) mlffd distill $ORGANIC --size ultra-tiny -o $OUT/gen1-ultra-tiny.ckpt --time-limit 30 --batch-size 8 $SPLIT --test-output $OUT/gen1-test.h5 --overwrite --quiet ;;
  organic-standard)
    # two stages: 40 min at lr 3e-4, then 55 min at lr 1.5e-4 from the first stage's weights
    mlffd distill $ORGANIC --init $OUT/gen1-standard.ckpt -o $OUT/organic-standard-ft.ckpt --time-limit 40 --lr 3e-4 --threads 2 $FT --test-output $OUT/organic-test-ft.h5
    mlffd distill $ORGANIC --init $OUT/organic-standard-ft.ckpt -o $OUT/organic-standard-ft2.ckpt --time-limit 55 --lr 1.5e-4 --threads 2 $FT --test-output $OUT/organic-test-ft2.h5
    # then refined on aspirin's own MD (mlffd refine, teacher selection): ft2 pressed aspirin's carbonyl
    # oxygens to 2.15 Å in its own NVE. Two runs, the second from the first's student and dataset with a
    # wider trust window (the near-contact frames score above 0.5 eV/Å) and 600 K exploration.
    R=build/aspirin
    mlffd refine aspirin --model $OUT/organic-standard-ft2.ckpt --select teacher --committee-size 1 --data $ORGANIC \
      --rounds 2 --temperatures 300 450 --trajectories 2 --time 2 --frames-per-round 40 --heldout 6 --train-minutes 8 \
      --workers 1 --lr 1e-4 --seed 0 --time-limit 35 -o $R/refine-standard --quiet
    mlffd refine aspirin --model $R/refine-standard/student.ckpt --data $R/refine-standard/dataset.h5 --select teacher \
      --committee-size 1 --temperatures 300 450 600 --trajectories 2 --time 4 --trust 0.05 3.0 --temperature-limit 1500 \
      --per-trajectory 10 --spacing 3 --frames-per-round 60 --heldout 6 --rounds 3 --train-minutes 8 --lr 1e-4 \
      --workers 1 --seed 3 -o $R/refine-standard2 --quiet
    # the loop trains on all its data: its test split is the fresh frames of label_organic_fresh.sh
    $SHIP $R/refine-standard2/student.ckpt organic-standard organic-fresh.h5 \
      build/fresh/{aspirin,ethanol,malonaldehyde,uracil,toluene,naphthalene,salicylic-acid,benzene}.h5 ;;
  organic-tiny)
    mlffd distill $ORGANIC --init $OUT/gen1-tiny.ckpt -o $OUT/organic-tiny-ft.ckpt --time-limit 30 --lr 3e-4 --threads 1 $FT --test-output $OUT/organic-test-ft-tiny.h5
    $SHIP $OUT/organic-tiny-ft.ckpt organic-tiny organic-test.h5 $OUT/organic-test-ft-tiny.h5 ;;
  organic-ultra-tiny)
    mlffd distill $ORGANIC --init $OUT/gen1-ultra-tiny.ckpt -o $OUT/organic-ultra-tiny-ft.ckpt --time-limit 25 --lr 3e-4 --threads 2 $FT --test-output $OUT/organic-test-ft-ultra-tiny.h5
    $SHIP $OUT/organic-ultra-tiny-ft.ckpt organic-ultra-tiny organic-test.h5 $OUT/organic-test-ft-ultra-tiny.h5 ;;
  water-standard)
    # from scratch on the 300 TIP3P configurations (label_water.sh liquid), 20 minutes ...
    mlffd distill $D/water-liquid.h5 --size standard -o build/water/water-standard.ckpt --time-limit 20 --threads 1 \
      --batch-size 4 --val-fraction 0.1 --test-fraction 0.1 --seed 0 --overwrite --quiet
    # ... which explodes in its own NVE (TIP3P never brings oxygens closer than 2.4 Å); then three rounds of
    # mlffd refine on its own MD of water-32, every explored frame (one per 100 fs) scored by the teacher
    mlffd refine water-32 --model build/water/water-standard.ckpt --data $D/water-liquid.h5 --select teacher \
      --committee-size 1 --temperatures 300 350 --trajectories 2 --time 2 --frame-interval 200 --trust 0.05 5.0 \
      --temperature-limit 800 --per-trajectory 8 --spacing 1 --frames-per-round 30 --heldout 4 --rounds 3 \
      --train-minutes 6 --lr 3e-4 --batch-size 4 --workers 1 --seed 1 -o build/water/refine --quiet
    # the loop trains on all its data: its test split is the explored frames it held out
    $SHIP build/water/refine/student.ckpt water-standard water-standard.test.h5 build/water/refine/heldout.h5 ;;
  *) echo "unknown student '$1'" >&2; exit 2 ;;
esac
# Fresh 300 K teacher-MD frames (label_organic_fresh.sh), the figures docs/students.md quotes:
#   mlffd evaluate organic-tiny build/fresh/{aspirin,ethanol,malonaldehyde,uracil,toluene,naphthalene,salicylic-acid,benzene}.h5
# Transfer to the held-out molecules: mlffd evaluate organic-tiny build/fresh/caffeine.h5 build/datasets/paracetamol.h5
