"""Write a throw-away ONNX model folder for testing the offline bundle WITHOUT torch.

    .venv/bin/python packaging/make_test_model.py OUT_DIR [--size 64] [--int8]

The "model" is one 1x1 convolution from the three windowed channels to three
class logits (``model.onnx``, input ``image`` float32 (N, 3, S, S), output
``logits`` (N, 3, S, S): the contract of DEVELOPERS.md), with a ``model.json``
card whose sha256 entries the onnx backend verifies.  Its weights turn the
phantom's liver-window brightness into "liver" and darker tissue into
"background"; it is NOT a segmentation model, only a way to run the real
onnx backend and ONNX Runtime in the frozen app (``make package-test``, and
``LIVERSEG_BUNDLE_MODEL_DIR`` to check that the spec bundles a model) before
the real default model exists.  ``--int8`` also writes ``model.int8.onnx``
(dynamic quantisation with onnxruntime, when available).  Needs the ``onnx``
package (extra ``train``); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def make_test_model(out_dir: Path | str, *, size: int = 64, int8: bool = False) -> Path:
    """Write ``model.onnx`` (and optionally ``model.int8.onnx``) and ``model.json`` into ``out_dir``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from liverseg_studio.core.modelcard import ModelCard, write_card

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # channels of windowed_rgb: 0 = W150/L30, 1 = W200/L60, 2 = equalised; all in [0, 1]
    weight = np.zeros((3, 3, 1, 1), dtype=np.float32)
    weight[1, 0, 0, 0] = 20.0  # liver: bright in the W150/L30 window (60 HU -> 0.7)
    weight[2, 0, 0, 0] = 10.0  # tumour: a weaker response, rarely the argmax
    bias = np.array([10.0, -2.0, 0.0], dtype=np.float32)  # background wins below ~0.6
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "W", "B"], ["logits"], kernel_shape=[1, 1])],
        "liverseg-packaging-test-model",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, size, size])],
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_test_model")
    model.ir_version = min(model.ir_version, 8)
    onnx.checker.check_model(model)
    onnx.save(model, str(out / "model.onnx"))
    card = ModelCard(
        name="packaging-test-model",
        version="0.0.0",
        input_size=size,
        training={"data": "none: a fixed 1x1 convolution (packaging/make_test_model.py)",
                  "imagenet_pretrained": False},
        licence="MIT (test artefact, not a segmentation model)",
    )
    card.record_file("onnx", out)
    if int8:
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(out / "model.onnx"), str(out / "model.int8.onnx"), weight_type=QuantType.QUInt8)
            card.record_file("onnx_int8", out)
        except Exception as exc:  # noqa: BLE001 - the fp32 file is enough for the bundle test
            print(f"make_test_model: no int8 file ({type(exc).__name__}: {exc})", file=sys.stderr)
    write_card(out, card)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--int8", action="store_true")
    args = p.parse_args(argv)
    out = make_test_model(args.out_dir, size=args.size, int8=args.int8)
    print(f"wrote test model to {out}: {', '.join(sorted(f.name for f in out.iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
