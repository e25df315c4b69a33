"""PyInstaller hook for OpenVINO (the bundle's default engine, the ``openvino`` backend plugin).

OpenVINO loads its device plugins and model front ends at run time by file name from the
folder of ``libopenvino.so`` (``openvino/libs``), so import analysis does not see them.  The
bundle needs the CPU plugin and the ONNX front end only (``KEEP``); the GPU/NPU plugins,
AUTO/HETERO/batch and the TensorFlow/PyTorch/Paddle/JAX/TFLite/GGUF/IR front ends (~70 MB) stay
out, and so do the conversion tools and the framework bridges (``excludedimports``).  Their
own dependencies (libopenvino, TBB) come in through the binary dependency analysis.
"""

from pathlib import Path

from PyInstaller.utils.hooks import collect_dynamic_libs, copy_metadata

#: libraries of openvino/libs that the bundle needs (name prefixes)
KEEP = ("libopenvino_intel_cpu_plugin", "libopenvino_onnx_frontend")

#: versioned names too (libopenvino_onnx_frontend.so.2641): collect_dynamic_libs' default is lib*.so
PATTERNS = ["lib*.so", "lib*.so.*", "*.dll", "*.dylib"]

binaries = [(src, dest) for src, dest in collect_dynamic_libs("openvino", search_patterns=PATTERNS)
            if Path(src).name.startswith(KEEP) and Path(dest).as_posix().endswith("openvino/libs")]
found = {Path(src).name.split(".")[0] for src, _ in binaries}
missing = [k for k in KEEP if k not in found]
if missing:
    raise SystemExit(f"hook-openvino: this OpenVINO lacks {', '.join(missing)} in openvino/libs")
datas = copy_metadata("openvino")
excludedimports = ["openvino.tools", "openvino.torch", "openvino.frontend.pytorch", "openvino.frontend.tensorflow",
                   "openvino.frontend.jax", "openvino.frontend.paddle", "openvino_telemetry"]
