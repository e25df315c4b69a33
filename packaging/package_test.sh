#!/usr/bin/env bash
# `make package-test`: check the frozen bundle built by `make package`.
#
#   packaging/package_test.sh [BUNDLE_DIR]      (default: dist/liverseg-studio-<version>)
#
# 1. `liverseg --self-test` and `liverseg-studio --self-test` with networking blocked (`unshare -n`, a fresh network
#    namespace with no interfaces, where permitted) and a socket guard that refuses and
#    logs every internet connect/DNS lookup (liverseg_studio.selftest.install_network_guard,
#    installed by the frozen entry scripts when $LIVERSEG_NETGUARD_LOG is set);
# 2. (the studio's self-test also opens its window: offscreen, and under Xvfb with the xcb
#    platform plugin when xvfb-run is installed);
# 3. `liverseg plugins`: every plugin loads; the fastai backend says it is unavailable;
# 4. the frozen CLI `segment` on a NIfTI volume generated here into build/package-test/,
#    with networking blocked; the outputs must exist;
# 5. the bundle size (du -sh), failing above 400 MB; 450 MB when the 3D view (trimesh) or the PACS
#    client (DICOMweb: certifi's CA bundle) is in it (issue 27; packaging/README.md says what grew).
#
# Backends: onnx with the bundled default model when the bundle has one; else onnx
# with a throw-away test model (packaging/make_test_model.py, --model), saying so;
# and the threshold plugin when bundled.  Without a default model the clear
# "no default model" failure of a plain `--self-test` is checked as well.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-.venv/bin/python}"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' src/liverseg_studio/__init__.py)"
BUNDLE="${1:-dist/liverseg-studio-$VERSION}"
WORK="build/package-test"
DEFAULT_MAX_MB=400
if [ -d "$BUNDLE/_internal/trimesh" ] || [ -d "$BUNDLE/_internal/certifi" ]; then
    DEFAULT_MAX_MB=450  # the 3D view / PACS features (issue 27: the limit becomes 450 MB)
fi
MAX_MB="${LIVERSEG_BUNDLE_MAX_MB:-$DEFAULT_MAX_MB}"

fail() { echo "package-test: FAIL: $*" >&2; exit 1; }
step() { echo; echo "== $*"; }

[ -x "$BUNDLE/liverseg" ] || fail "$BUNDLE/liverseg not found (run make package)"
[ -x "$BUNDLE/liverseg-studio" ] || fail "$BUNDLE/liverseg-studio not found (run make package)"
rm -rf "$WORK"
mkdir -p "$WORK"

# -- no network: unshare -n (a network namespace with no interfaces) where permitted, and
# always the socket guard (the frozen entry scripts read $LIVERSEG_NETGUARD_LOG: every
# internet connect/sendto/DNS lookup is refused and logged there), so an attempt is
# both blocked and detected.
export LIVERSEG_NETGUARD_LOG="$ROOT/$WORK/network-attempts.log"
if unshare -n true 2>/dev/null; then
    OFFLINE=(unshare -n)
    # prove the namespace really has no network: a connect must fail inside it
    if unshare -n "$PY" -c "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)" 2>/dev/null; then
        fail "unshare -n still has a network"
    fi
    echo "package-test: networking blocked with unshare -n and the socket guard"
else
    OFFLINE=()
    echo "package-test: unshare -n not permitted here: networking blocked with the socket guard only"
fi

check_network() {
    if [ -s "$LIVERSEG_NETGUARD_LOG" ]; then
        cat "$LIVERSEG_NETGUARD_LOG" >&2
        fail "the frozen app tried to use the network (see above)"
    fi
}

HAS_MODEL=0
[ -f "$BUNDLE/_internal/resources/models/default/model.json" ] && HAS_MODEL=1
# Backends to run end to end: "auto" is the engine the bundle ships (openvino when OpenVINO is
# bundled, else onnx).  With the default model bundled: that engine with it.  Without: it with
# a throw-away 1x1-convolution ONNX model (packaging/make_test_model.py; exercises ONNX Runtime in
# the bundle, not a real segmentation) passed with --model, and the threshold plugin.
RUNS=()
if [ "$HAS_MODEL" = 1 ]; then
    echo "package-test: the bundle has a default model: testing the default engine (--backend auto) with it"
    RUNS+=("--backend auto")
else
    echo "package-test: WARNING: the bundle has NO default model (resources/models/default): testing the onnx" \
         "backend with a throw-away test model (--model) and the threshold plugin instead"
    "$PY" packaging/make_test_model.py "$WORK/test-model" --int8 2>/dev/null || fail "cannot write the test model"
    RUNS+=("--backend auto --model $WORK/test-model")
fi
if grep -Eq "backend +threshold" <<< "$("$BUNDLE/liverseg" plugins 2>&1 || true)"; then
    RUNS+=("--backend threshold")
fi

for run in "${RUNS[@]}"; do
    read -r -a ARGS <<< "$run"
    step "liverseg --self-test $run"
    t0=$(date +%s.%N)
    "${OFFLINE[@]}" "$BUNDLE/liverseg" --self-test "${ARGS[@]}" || fail "liverseg --self-test $run"
    check_network
    echo "(wall time $("$PY" -c "print(round($(date +%s.%N) - $t0, 2))") s, process start included)"

    step "liverseg-studio --self-test $run (offscreen window)"
    QT_QPA_PLATFORM=offscreen "${OFFLINE[@]}" "$BUNDLE/liverseg-studio" --self-test "${ARGS[@]}" \
        || fail "liverseg-studio --self-test $run"
    check_network
done

# The real windowing platform (xcb) under Xvfb, where installed (`make screenshots` installs it).
if command -v xvfb-run >/dev/null 2>&1; then
    step "liverseg-studio --self-test --backend threshold under Xvfb (QT_QPA_PLATFORM=xcb)"
    if ! "${OFFLINE[@]}" xvfb-run -a -s "-screen 0 1280x1024x24" env QT_QPA_PLATFORM=xcb \
            "$BUNDLE/liverseg-studio" --self-test --backend threshold > "$WORK/xvfb.log" 2>&1; then
        tail -20 "$WORK/xvfb.log"
        fail "liverseg-studio --self-test under Xvfb (xcb)"
    fi
    tail -4 "$WORK/xvfb.log"
    check_network
else
    echo "package-test: note: xvfb-run not installed: the xcb platform plugin is not tested (offscreen only)"
fi

if [ "$HAS_MODEL" = 0 ]; then
    step "liverseg --self-test without a model must fail clearly"
    set +e
    out="$("${OFFLINE[@]}" "$BUNDLE/liverseg" --self-test 2>&1)"; rc=$?
    set -e
    check_network
    echo "$out" | tail -2
    [ "$rc" = 1 ] || fail "--self-test without a default model exited $rc, expected 1"
    grep -q "no default model is bundled" <<< "$out" || fail "--self-test without a model did not say why"
fi

step "liverseg plugins"
plugins="$("${OFFLINE[@]}" "$BUNDLE/liverseg" plugins)" || fail "liverseg plugins"
check_network
echo "$plugins"
grep -q "\[error\]" <<< "$plugins" && fail "a plugin failed to load in the bundle"
grep -Eq "backend +onnx" <<< "$plugins" || fail "onnx backend missing"
grep -Eq "backend +threshold" <<< "$plugins" || echo "package-test: note: threshold plugin not in this build"
grep -Eq "backend +fastai +unavailable: PyTorch not in this build" <<< "$plugins" \
    || fail "the fastai backend does not say that PyTorch is missing"

step "liverseg segment on a NIfTI volume"
"$PY" - "$WORK/ct.nii.gz" <<'EOF'
import sys
import nibabel as nib
import numpy as np
from liverseg_studio.selftest import phantom
volume, truth = phantom(n_slices=8, size=160)
nib.save(nib.Nifti1Image(volume.array.T.astype(np.int16), volume.affine), sys.argv[1])
print(f"wrote {sys.argv[1]}: {volume.shape} (z, y, x)")
EOF
i=0
for run in "${RUNS[@]}"; do
    i=$((i + 1))
    read -r -a ARGS <<< "$run"
    out_dir="$WORK/out$i"
    echo "-- liverseg segment ct.nii.gz --out $out_dir $run"
    "${OFFLINE[@]}" "$BUNDLE/liverseg" segment "$WORK/ct.nii.gz" --out "$out_dir" "${ARGS[@]}" \
        || fail "liverseg segment $run"
    check_network
    for f in ct_mask.nii.gz ct_montage.png ct_report.json; do
        [ -s "$out_dir/$f" ] || fail "segment $run did not write $out_dir/$f"
    done
    "$PY" - "$WORK/ct.nii.gz" "$out_dir/ct_mask.nii.gz" "$out_dir/ct_report.json" <<'EOF' || fail "segment $run: bad outputs"
import json, sys
import nibabel as nib
import numpy as np
ct, mask = nib.load(sys.argv[1]), nib.load(sys.argv[2])
assert mask.shape == ct.shape, (mask.shape, ct.shape)
assert np.allclose(mask.affine, ct.affine), "mask affine differs from the input's"
values = set(np.unique(np.asarray(mask.dataobj)).tolist())
assert values <= {0, 1, 2}, values
report = json.load(open(sys.argv[3]))
print(f"outputs ok: mask {mask.shape} labels {sorted(values)}, report with {len(report)} keys")
EOF
    ls -l "$out_dir"
done

# -- parity with the installed CLI (issue 27) ------------------------------------------------------
# Every loader on a real input (../shared/data, or $LIVERSEG_SHARED_DATA; the sample case for MRC) and
# every export format the installed package knows (segment.exporters.FORMATS: new ones are tested as
# they land), through the installed `liverseg` and the frozen one, network blocked for both; then
# packaging/compare_outputs.py: same files, masks voxel for voxel (NIfTI, PNG, DICOM SEG), same
# volumetry, every SEG read by highdicom and validated by dciodvfy (0 errors).
step "parity: the frozen CLI against the installed CLI, every loader, every export format"
INSTALLED_CLI="${INSTALLED_CLI:-$(dirname "$PY")/liverseg}"
[ -x "$INSTALLED_CLI" ] || fail "the installed CLI $INSTALLED_CLI is missing (make setup)"
DATA="${LIVERSEG_SHARED_DATA:-$ROOT/../shared/data}"
DCIODVFY="$(command -v dciodvfy || true)"
[ -n "$DCIODVFY" ] || fail "dciodvfy not installed (Debian package dicom3tools; make setup installs it)"
FORMATS="$("$PY" -c 'from liverseg_studio.segment.exporters import FORMATS; print(",".join(FORMATS))')"
echo "export formats: $FORMATS"
PARITY=()   # "kind|input path"
if [ -d "$DATA/volumes/ircad-1.01/ct" ]; then
    PARITY+=("dicom-series|$DATA/volumes/ircad-1.01/ct")
    PARITY+=("dicom|$(ls "$DATA/volumes/ircad-1.01/ct/image_70" 2>/dev/null || ls -d "$DATA"/volumes/ircad-1.01/ct/* | head -1)")
    [ -f "$DATA/volumes/ircad-1.07/ct.nii.gz" ] && PARITY+=("nifti|$DATA/volumes/ircad-1.07/ct.nii.gz")
    [ -f "$DATA/ircad/images/10001_60.png" ] && PARITY+=("png|$DATA/ircad/images/10001_60.png")
else
    echo "package-test: WARNING: no shared data at $DATA: the DICOM, NIfTI and PNG inputs are synthetic"
    "$PY" - "$WORK/synthetic" <<'EOF' || fail "cannot write the synthetic inputs"
import sys
from pathlib import Path
import nibabel as nib, numpy as np
from PIL import Image
from liverseg_studio.selftest import phantom, write_dicom_series
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
volume, _ = phantom(n_slices=24, size=256)
write_dicom_series(volume, out / "ct", rle=False)
nib.save(nib.Nifti1Image(volume.array.T.astype(np.int16), volume.affine), str(out / "ct.nii.gz"))
Image.fromarray(np.clip(volume.array[12] + 100, 0, 255).astype(np.uint8)).save(out / "slice.png")
EOF
    PARITY+=("dicom-series|$WORK/synthetic/ct" "dicom|$WORK/synthetic/ct/slice_012.dcm" "nifti|$WORK/synthetic/ct.nii.gz"
             "png|$WORK/synthetic/slice.png")
fi
# compressed DICOM (issue 28's decoders, stripped in the bundle): one slice in JPEG-LS and JPEG Lossless, made
# with dcmtk where it is installed (make setup installs it)
if command -v dcmcjpls >/dev/null && command -v dcmcjpeg >/dev/null; then
    one="${PARITY[1]#*|}"
    mkdir -p "$WORK/compressed"
    dcmcjpls +el "$one" "$WORK/compressed/jpeg-ls.dcm" && PARITY+=("dicom-jpeg-ls|$WORK/compressed/jpeg-ls.dcm")
    dcmcjpeg +e1 "$one" "$WORK/compressed/jpeg-lossless.dcm" && PARITY+=("dicom-jpeg-lossless|$WORK/compressed/jpeg-lossless.dcm")
else
    echo "package-test: note: dcmtk not installed: no compressed DICOM in the parity run"
fi
SAMPLE_MRC="$("$PY" -c 'from liverseg_studio.sample import sample_case as s; c = s(); print(c.image if c else "")')"
[ -n "$SAMPLE_MRC" ] || fail "no MRC input: the sample case is not installed (make setup)"
PARITY+=("mrc|$SAMPLE_MRC")
mkdir -p "$WORK/parity"
for item in "${PARITY[@]}"; do
    kind="${item%%|*}"; input="${item#*|}"
    echo
    echo "-- $kind: $input"
    for which in installed frozen; do
        if [ "$which" = installed ]; then exe="$INSTALLED_CLI"; else exe="$BUNDLE/liverseg"; fi
        out_dir="$WORK/parity/$kind/$which"
        log="$WORK/parity/$kind-$which.log"
        t0=$(date +%s.%N)
        "${OFFLINE[@]}" "$exe" segment "$input" --out "$out_dir" --export "$FORMATS" --threads 2 > "$log" 2>&1 \
            || { tail -5 "$log"; fail "$which liverseg segment ($kind)"; }
        if [ "$which" = frozen ]; then check_network; fi
        if grep -qi "failed" "$log"; then cat "$log"; fail "$which: an export failed ($kind)"; fi
        echo "$which: $(ls "$out_dir" | tr '\n' ' ')($("$PY" -c "print(round($(date +%s.%N) - $t0, 1))") s)"
    done
    expect=()
    case "$kind" in dicom*) expect=(--expect-seg) ;; esac
    "$PY" packaging/compare_outputs.py "$WORK/parity/$kind/installed" "$WORK/parity/$kind/frozen" \
        "${expect[@]}" --dciodvfy "$DCIODVFY" --label "$kind" || fail "parity ($kind): the frozen outputs differ"
done

step "parity: pydicom's pixel-data decoders (installed vs frozen)"
want="$("$PY" -c 'from liverseg_studio.selftest import pixel_decoders; print(pixel_decoders())')"
got="$("${OFFLINE[@]}" "$BUNDLE/liverseg" --self-test --backend auto 2>&1 | sed -n 's/^ *pixel-data decoders: //p')"
check_network
echo "installed: $want"
echo "frozen:    $got"
[ "$want" = "$got" ] || fail "the frozen build decodes other transfer syntaxes than the installed one"

if [ -d "$DATA/volumes/ircad-1.01/ct" ]; then
    step "the frozen studio (offscreen) opens ircad-1.01's series, runs, exports a DICOM SEG"
    rm -f "$WORK/studio_seg.dcm"
    QT_QPA_PLATFORM=offscreen "${OFFLINE[@]}" "$BUNDLE/liverseg-studio" --self-test --backend auto \
        --studio-input "$DATA/volumes/ircad-1.01/ct" --studio-seg "$WORK/studio_seg.dcm" > "$WORK/studio.log" 2>&1 \
        || { tail -20 "$WORK/studio.log"; fail "the frozen studio's DICOM SEG"; }
    check_network
    grep -E "studio|PASSED" "$WORK/studio.log"
    "$PY" - "$WORK/studio_seg.dcm" "$WORK/parity/dicom-series/installed/ct_seg.dcm" <<'EOF' || fail "studio SEG != CLI SEG"
import sys
sys.path.insert(0, "packaging")
import numpy as np
from compare_outputs import seg_labels
a, names = seg_labels(sys.argv[1])
b, _ = seg_labels(sys.argv[2])
assert set(a) == set(b), "the SEGs reference different source images"
n = sum(int(np.count_nonzero(a[u] != b[u])) for u in a)
assert n == 0, f"{n} pixels differ"
print(f"frozen studio SEG == installed CLI SEG over {len(a)} source images (segments {names})")
EOF
    n_err="$("$DCIODVFY" "$WORK/studio_seg.dcm" 2>&1 | grep -c '^ *Error' || true)"
    echo "frozen studio SEG: dciodvfy $n_err error(s)"
    [ "$n_err" = 0 ] || { "$DCIODVFY" "$WORK/studio_seg.dcm" 2>&1 | grep '^ *Error' | head; fail "the studio's SEG is not valid"; }
fi

step "left out of the bundle on purpose: one-line errors"
for cmd in cohort train export; do
    set +e
    msg="$("${OFFLINE[@]}" "$BUNDLE/liverseg" "$cmd" "$WORK" 2>&1)"; rc=$?
    set -e
    echo "liverseg $cmd -> exit $rc: $msg"
    [ "$rc" = 2 ] || fail "liverseg $cmd exited $rc, expected 2"
    [ "$(printf '%s\n' "$msg" | wc -l)" = 1 ] || fail "liverseg $cmd: not one line"
    grep -q "not in the offline bundle" <<< "$msg" || fail "liverseg $cmd does not say that the bundle leaves it out"
done

step "bundle size"
du -sh "$BUNDLE"
mb=$(du -sm "$BUNDLE" | cut -f1)
echo "package-test: bundle $BUNDLE is $mb MB unpacked (limit $MAX_MB MB)"
du -sm "$BUNDLE"/_internal/* "$BUNDLE"/liverseg* | sort -n | tail -12
[ "$mb" -le "$MAX_MB" ] || fail "bundle is $mb MB > $MAX_MB MB"
echo
echo "package-test: PASSED"
