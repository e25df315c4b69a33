#!/usr/bin/env bash
# Measure a model folder the way its card reports it (all with `liverseg evaluate`, onnx int8 backend):
#   - the validation and test people of the prepared set, slice by slice, pooled per person;
#   - whole volumes: 3D-IRCADb 1.01 (a real DICOM series, 7 tumours) and 1.07 (a tumour-free liver),
#     held out of training, and LiTS case 117 (the sample case; never trained, tuned or selected on).
# Then scripts/summarise_evaluation.py prints the table the card and README quote.
#
#   scripts/evaluate_default_model.sh [MODEL_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-resources/models/default}
OUT=${2:-runs/eval-$(basename "$MODEL")}
LIVERSEG=${LIVERSEG:-".venv/bin/liverseg"}
PY=${PY:-".venv/bin/python"}
DATA=${DATA:-runs/prep12}
VOLS=${VOLS:-../shared/data/volumes}
BACKEND=${BACKEND:-onnx}
mkdir -p "$OUT"
CASE117=$($PY -c "from liverseg_studio.sample import sample_case; c = sample_case(); print(c.image if c else '')")
LAB117=$($PY -c "from liverseg_studio.sample import sample_case; c = sample_case(); print(c.labels if c and c.labels else '')")
for split in valid test; do
  $LIVERSEG evaluate --backend "$BACKEND" --model "$MODEL" "$DATA" --split "$split" --out "$OUT/$split" --overwrite
done
$LIVERSEG evaluate --backend "$BACKEND" --model "$MODEL" "$VOLS/ircad-1.01/ct" "$VOLS/ircad-1.07/ct.nii.gz" ${CASE117:+"$CASE117"} \
  --labels "$VOLS/ircad-1.01/labels.nii.gz" "$VOLS/ircad-1.07/labels.nii.gz" ${LAB117:+"$LAB117"} \
  --out "$OUT/volumes" --overwrite
$PY scripts/summarise_evaluation.py "$OUT"
