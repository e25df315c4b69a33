"""``liverseg bench`` report (issue 13): default-engine ratio, end_to_end_vs_torch_fp32, stages, CPU flags."""

from __future__ import annotations

import pytest

from liverseg_studio.bench import BenchResult, Row, cpu_flags, format_table, summary


def _result(with_openvino: bool) -> BenchResult:
    r = BenchResult(cpu="Test CPU", threads=2, weights="random")
    r.rows += [Row("torch eager fp32", 256, 0.4, 0.5, 5), Row("ONNX Runtime int8", 256, 0.1, 0.12, 5)]
    if with_openvino:
        r.rows.append(Row("OpenVINO int8", 256, 0.05, 0.06, 5))
    r.extra.update(
        {
            "volume_seconds": 20.0,
            "volume_slices": 200,
            "end_to_end_s_per_slice": 0.1,
            "end_to_end_engine": "openvino" if with_openvino else "onnx",
            "volume_timings": {"load": 1.0, "backend_preprocess": 2.0, "backend_inference": 12.0,
                               "backend_postprocess": 1.0, "postprocess": 2.0, "volumetry": 0.5},
        }
    )
    return r


@pytest.mark.parametrize("with_openvino", [True, False])
def test_summary_keeps_keys_and_adds_the_default_engine_and_end_to_end_ratio(with_openvino):
    r = _result(with_openvino)
    data = summary(r, 256)
    for key in ("cpu", "threads", "weights", "rows", "ratios_vs_torch_fp32", "int8_vs_torch_fp32", "volume_seconds"):
        assert key in data
    assert data["end_to_end_vs_torch_fp32"] == pytest.approx(0.4 / 0.1)
    assert data["int8_vs_torch_fp32_onnxruntime"] == pytest.approx(4.0)
    if with_openvino:
        assert data["default_engine"] == "openvino" and data["int8_vs_torch_fp32"] == pytest.approx(8.0)
    else:
        assert data["default_engine"] == "onnx" and data["int8_vs_torch_fp32"] == pytest.approx(4.0)
    assert set(data["cpu_flags"]) >= {"avx2", "avx512_vnni", "amx_int8"}
    table = format_table(r, data)
    assert "CPU flags: avx2=" in table and "avx512_vnni=" in table and "amx_int8=" in table
    assert "end to end vs torch eager fp32 per slice: 4.00 x" in table
    assert "inference (engine)" in table and "60.0 ms/slice" in table  # 12 s / 200 slices
    assert "3D post-processing" in table and "volumetry" in table


def test_cpu_flags_are_booleans():
    flags = cpu_flags()
    assert flags and all(isinstance(v, bool) for v in flags.values())
