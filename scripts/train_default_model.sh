#!/usr/bin/env bash
# How the default model is made, end to end (CPU or CUDA):
#   prepare (patient-disjoint split of ../shared/data) -> train -> export (ONNX fp32 + int8).
# Never uses LiTS case 117 (the held-out tumour test).
#
#   scripts/train_default_model.sh                       # defaults below
#   EPOCHS=60 DEVICE=cuda BS=32 scripts/train_default_model.sh
#   BUDGET_S=300 ...    # EPOCHS=auto: time one epoch, then fit the epochs into BUDGET_S
set -euo pipefail
cd "$(dirname "$0")/.."
LIVERSEG=${LIVERSEG:-".venv/bin/liverseg"}
SRC=${SRC:-../shared/data}
DATA=${DATA:-runs/prepared256}
MODEL=${MODEL:-runs/default-model}
SIZE=${SIZE:-256}
EPOCHS=${EPOCHS:-auto}
BUDGET_S=${BUDGET_S:-3600}
BS=${BS:-8}
DEVICE=${DEVICE:-auto}
WORKERS=${WORKERS:-auto}
TUMOURS=${TUMOURS:-0.5}

if [ ! -f "$DATA/manifest.json" ]; then
  $LIVERSEG prepare "$SRC" --out "$DATA" --size "$SIZE" --split 80,10,10 --seed 0
fi

if [ "$EPOCHS" = auto ]; then
  probe=$(mktemp -d)
  t0=$(date +%s.%N)
  $LIVERSEG train "$DATA" --out "$probe/m" --epochs 1 --size "$SIZE" --bs "$BS" --device "$DEVICE" \
    --workers "$WORKERS" --synthetic-tumours "$TUMOURS"
  t1=$(date +%s.%N)
  EPOCHS=$(python3 -c "import sys; e=float(sys.argv[2])-float(sys.argv[1]); print(max(1, int(float(sys.argv[3]) / max(e * 0.8, 1e-3))))" "$t0" "$t1" "$BUDGET_S")
  echo "one epoch (with start-up) took $(python3 -c "print(round($t1-$t0,1))") s -> EPOCHS=$EPOCHS for a ${BUDGET_S} s budget"
  rm -rf "$probe"
fi

$LIVERSEG train "$DATA" --out "$MODEL" --epochs "$EPOCHS" --size "$SIZE" --bs "$BS" --device "$DEVICE" \
  --workers "$WORKERS" --synthetic-tumours "$TUMOURS" --overwrite
$LIVERSEG export "$MODEL" --int8 --calib "$DATA" --overwrite
echo "model written to $MODEL"
