"""segment.bench_mesh: the 3D view's build-time benchmark row (issue 25); timings are printed, not asserted."""

from __future__ import annotations

import json

import numpy as np

from liverseg_studio.segment import bench_mesh


def test_row_from_a_small_mask(capsys):
    lab = np.zeros((20, 40, 40), np.uint8)
    lab[3:17, 5:35, 5:35] = 1
    lab[8:12, 10:14, 10:14] = 2
    row = bench_mesh.bench_mesh_build(lab, np.diag([0.8, 0.8, 2.0, 1.0]), repeat=1)
    assert row["surfaces"] == 2 and row["faces"] > 0 and row["shape_zyx"] == [20, 40, 40]
    assert row["wall_s"] > 0 and row["max_volume_error"] < 0.03


def test_synthetic_mask_is_512x512x200_with_lesions():
    lab, affine = bench_mesh.synthetic_mask()
    assert lab.shape == (200, 512, 512) and affine.shape == (4, 4)
    assert (lab == 1).sum() > 1_000_000 and (lab == 2).any()


def test_cli_prints_a_json_row(tmp_path, capsys, monkeypatch):
    small = np.zeros((12, 32, 32), np.uint8)
    small[2:10, 4:28, 4:28] = 1
    monkeypatch.setattr(bench_mesh, "synthetic_mask", lambda: (small, np.eye(4)))
    assert bench_mesh.main(["--repeat", "1", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith("mesh build 32x32x12 mask: 1 surfaces")
    assert json.loads(out[-1])["row"] == "mesh_build_512x512x200"
