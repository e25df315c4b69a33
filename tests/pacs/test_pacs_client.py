"""`liverseg pacs find/get/store` and `liverseg segment pacs://...` against a real Orthanc (DIMSE and
DICOMweb), and the refusals: a refusing node, an unknown calling AE, a dropped association, a series
missing instances, unknown node / unreachable host / unknown study / non-CT series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from fake_scp import FakePacs
from helpers.dciodvfy import requires_dciodvfy, run_dciodvfy
from liverseg_studio.cli import main
from pacs_orthanc import free_port


def cache_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture
def cfg(filled, tmp_path: Path) -> Path:
    return filled.orthanc.config_toml(tmp_path / "pacs.toml")


@pytest.mark.parametrize("via", ["dimse", "dicomweb"])
def test_find_lists_studies_and_series(filled, cfg, capsys, via):
    rc, out, _ = run_cli(capsys, "pacs", "find", "orthanc", "--modality", "CT", "--via", via, "--pacs-config", str(cfg))
    assert rc == 0
    assert filled.ct_study in out and filled.ct_series in out
    assert "PORTAL VENOUS" in out and "(6 inst.)" in out
    assert filled.mr_study not in out  # filtered by modality
    rc, out, _ = run_cli(capsys, "pacs", "find", "orthanc", "--patient-name", "liver_01*", "--no-series",
                         "--via", via, "--pacs-config", str(cfg))
    assert rc == 0 and filled.ct_study in out and "1 study" in out


@pytest.mark.parametrize(("via", "method"), [("dimse", "get"), ("dimse", "move"), ("dicomweb", "wado")])
def test_get_retrieves_the_series_whole_and_resumes(filled, tmp_path, capsys, via, method):
    cfg = filled.orthanc.config_toml(tmp_path / "pacs.toml", retrieve=method)
    cache = tmp_path / "cache"
    # a previous retrieval stopped after 2 instances: they are in .partial, whole
    sources = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in filled.ct_files}
    first = sorted(sources)[:2]
    partial = cache / ".partial" / filled.ct_series
    partial.mkdir(parents=True)
    for uid in first:
        (partial / f"{uid}.dcm").write_bytes(sources[uid].read_bytes())
    inodes = {uid: (partial / f"{uid}.dcm").stat().st_ino for uid in first}
    rc, out, err = run_cli(capsys, "pacs", "get", "orthanc", filled.ct_study, "--via", via,
                           "--pacs-config", str(cfg), "--cache", str(cache))
    assert rc == 0, err
    folder = cache / filled.ct_study / filled.ct_series
    assert f"6 instance(s) in {folder}" in out
    assert "6/6 instances" in err
    assert not (cache / ".partial").exists()
    got = {p.stem: p for p in folder.glob("*.dcm")}
    assert set(got) == set(sources)
    for uid in first:  # resumed: the two instances already there were not fetched again
        assert got[uid].stat().st_ino == inodes[uid]
    for uid, p in got.items():
        a, b = pydicom.dcmread(p), pydicom.dcmread(sources[uid])
        assert np.array_equal(a.pixel_array, b.pixel_array)
        assert a.SeriesInstanceUID == filled.ct_series


@pytest.mark.parametrize("via", ["dimse", "dicomweb"])
def test_segment_from_pacs_and_store_back(filled, cfg, tmp_path, capsys, via):
    import highdicom as hd

    orthanc = filled.orthanc
    before = {s["ID"] for s in orthanc.series_of_study(filled.ct_study)}
    out_dir = tmp_path / "out"
    rc, out, err = run_cli(capsys, "segment", f"pacs://orthanc/{filled.ct_study}", "--out", str(out_dir),
                           "--backend", "threshold", "--export", "seg", "--store-to", "orthanc", "--pacs-via", via,
                           "--pacs-config", str(cfg), "--cache", str(tmp_path / "cache"), "--overwrite")
    assert rc == 0, err
    assert "sent 1 DICOM SEG(s) to orthanc" in out
    local = out_dir / f"{filled.ct_series}_seg.dcm"
    written = pydicom.dcmread(local)
    new = [s for s in orthanc.series_of_study(filled.ct_study) if s["ID"] not in before]
    segs = [s for s in new if s["MainDicomTags"].get("Modality") == "SEG"]
    assert len(segs) == 1, new
    instance = orthanc.rest("GET", f"/series/{segs[0]['ID']}/instances")[0]
    raw = orthanc.rest_bytes(f"/instances/{instance['ID']}/file")
    stored_path = tmp_path / "stored_seg.dcm"
    stored_path.write_bytes(raw)
    stored = hd.seg.segread(stored_path)
    assert stored.SOPInstanceUID == written.SOPInstanceUID
    assert stored.StudyInstanceUID == filled.ct_study
    assert stored.ReferencedSeriesSequence[0].SeriesInstanceUID == filled.ct_series
    refs = {str(i.ReferencedSOPInstanceUID) for i in stored.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert refs == {str(pydicom.dcmread(p).SOPInstanceUID) for p in filled.ct_files}
    liver = stored.get_volume(segment_numbers=[1], combine_segments=False).array
    assert liver.any()
    assert np.array_equal(stored.pixel_array, written.pixel_array)


@requires_dciodvfy
def test_seg_stored_in_orthanc_passes_dciodvfy(filled, cfg, tmp_path, capsys):
    rc, _, err = run_cli(capsys, "segment", filled.ct_study, "--from-pacs", "orthanc", "--out", str(tmp_path / "o"),
                         "--backend", "threshold", "--export", "seg", "--store-to", "orthanc",
                         "--pacs-config", str(cfg), "--cache", str(tmp_path / "cache"))
    assert rc == 0, err
    sop = pydicom.dcmread(tmp_path / "o" / f"{filled.ct_series}_seg.dcm").SOPInstanceUID
    hit = [h for h in filled.orthanc.rest("POST", "/tools/lookup", data=str(sop)) if h["Type"] == "Instance"]
    assert hit
    path = tmp_path / "from_orthanc.dcm"
    path.write_bytes(filled.orthanc.rest_bytes(f"/instances/{hit[0]['ID']}/file"))
    n_errors, output = run_dciodvfy(path)
    assert n_errors == 0, output


def _bad(capsys, cache: Path, *argv: str) -> str:
    rc, out, err = run_cli(capsys, *argv, "--cache", str(cache))
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, (out, err)
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in err, err
    assert cache_files(cache) == []
    return lines[0]


def test_bad_inputs_one_line_exit_2_nothing_in_cache(filled, cfg, tmp_path, capsys):
    cache = tmp_path / "cache"
    dead = tmp_path / "dead.toml"
    port = free_port()
    dead.write_text(f'[nodes.gone]\nae_title = "X"\nhost = "127.0.0.1"\nport = {port}\n'
                    f'dicomweb_url = "http://127.0.0.1:{port}/dicom-web"\ntimeout_s = 5\n')
    line = _bad(capsys, cache, "pacs", "get", "nosuch", filled.ct_study, "--pacs-config", str(cfg))
    assert "unknown PACS node 'nosuch'" in line and "orthanc" in line
    for via in ("dimse", "dicomweb"):
        line = _bad(capsys, cache, "pacs", "get", "gone", "1.2.3", "--via", via, "--pacs-config", str(dead))
        assert "cannot reach gone" in line
        line = _bad(capsys, cache, "pacs", "get", "orthanc", "1.2.3.999", "--via", via, "--pacs-config", str(cfg))
        assert "study 1.2.3.999 not found" in line
        line = _bad(capsys, cache, "segment", f"pacs://orthanc/{filled.mr_study}", "--out", str(tmp_path / "o"),
                    "--backend", "threshold", "--pacs-via", via, "--pacs-config", str(cfg))
        assert "no CT series to segment (found MR)" in line
    line = _bad(capsys, cache, "segment", "pacs://orthanc/1.2.3.999", "--out", str(tmp_path / "o"),
                "--backend", "threshold", "--pacs-config", str(cfg))
    assert "not found" in line
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_unknown_calling_ae_and_wrong_called_ae_are_refused(filled, tmp_path, capsys):
    cache = tmp_path / "cache"
    stranger = filled.orthanc.config_toml(tmp_path / "stranger.toml")
    stranger.write_text(stranger.read_text().replace('ae_title = "LIVERSEG"', 'ae_title = "STRANGER"'))
    rc, out, err = run_cli(capsys, "pacs", "get", "orthanc", filled.ct_study, "--via", "dimse",
                           "--pacs-config", str(stranger), "--cache", str(cache))
    assert rc == 2 and "refused" in err and "STRANGER" in err, err
    wrong = filled.orthanc.config_toml(tmp_path / "wrong.toml", ae_title="NOTORTHANC")
    rc, out, err = run_cli(capsys, "pacs", "find", "orthanc", "--via", "dimse", "--pacs-config", str(wrong))
    assert rc == 2 and "refused the association" in err and "NOTORTHANC" in err, err
    assert cache_files(cache) == []


def test_dropped_association_keeps_whole_instances_and_resumes(filled, tmp_path, capsys):
    cache = tmp_path / "cache"
    fake = FakePacs(list(filled.ct_files), drop_after=2).start()
    try:
        rc, out, err = run_cli(capsys, "pacs", "get", "fake", filled.ct_study,
                               "--pacs-config", str(fake.config_toml(tmp_path / "fake.toml")), "--cache", str(cache))
    finally:
        fake.stop()
    assert rc == 2 and "dropped" in err and "resume" in err, err
    assert not (cache / filled.ct_study).exists()  # no incomplete series in the cache
    partial = cache_files(cache)
    assert len(partial) == 2 and all(p.parent.parent.name == ".partial" for p in partial)
    for p in partial:  # whole files
        assert pydicom.dcmread(p).pixel_array.shape == (256, 256)
    # the same series from a node that behaves: only the 4 missing instances are fetched
    cfg = filled.orthanc.config_toml(tmp_path / "pacs.toml")
    rc, out, err = run_cli(capsys, "pacs", "get", "orthanc", filled.ct_study, "--pacs-config", str(cfg),
                           "--cache", str(cache))
    assert rc == 0, err
    assert len(list((cache / filled.ct_study / filled.ct_series).glob("*.dcm"))) == 6


def test_series_missing_instances_is_refused(filled, tmp_path, capsys):
    cache = tmp_path / "cache"
    fake = FakePacs(list(filled.ct_files), omit=1).start()
    try:
        rc, out, err = run_cli(capsys, "pacs", "get", "fake", filled.ct_study,
                               "--pacs-config", str(fake.config_toml(tmp_path / "fake.toml")), "--cache", str(cache))
    finally:
        fake.stop()
    assert rc == 2 and "incomplete, 5 of 6 instance(s)" in err, err
    assert not (cache / filled.ct_study).exists()
    assert all(p.parent.parent.name == ".partial" for p in cache_files(cache))


@pytest.mark.parametrize("via", ["dimse", "dicomweb"])
def test_cancel_leaves_whole_instances_and_the_next_retrieval_resumes(filled, cfg, tmp_path, via):
    from liverseg_studio.core.errors import CancelledError
    from liverseg_studio.pacs.cache import SeriesCache
    from liverseg_studio.pacs.client import open_client, retrieve_series
    from liverseg_studio.pacs.config import load_config

    client = open_client(load_config(cfg), "orthanc", via)
    series = [s for s in client.find_series(filled.ct_study) if s.series_uid == filled.ct_series][0]
    cache = SeriesCache(tmp_path / "cache")
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)

    with pytest.raises(CancelledError, match="resume"):
        retrieve_series(client, cache, series, progress=progress, is_cancelled=lambda: bool(seen) and seen[-1] >= 2)
    assert cache.complete(filled.ct_study, filled.ct_series) is None
    have = cache.have(filled.ct_series)
    assert 2 <= len(have) < 6
    for p in cache.partial_dir(filled.ct_series).iterdir():
        assert not p.name.startswith(".") and pydicom.dcmread(p).pixel_array.shape == (256, 256)
    seen.clear()
    folder = retrieve_series(client, cache, series, progress=progress)
    assert len(list(folder.glob("*.dcm"))) == 6 and seen[-1] == 6 and min(seen) >= len(have)
