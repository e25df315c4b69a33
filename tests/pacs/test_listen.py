"""`liverseg listen` as a DICOM node beside a real Orthanc: Orthanc routes a CT series to it (C-STORE),
it segments the series once the series is quiet and sends the SEG back; killed mid-series and
restarted, it still does the series exactly once (journal); unknown calling AE titles are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

from liverseg_studio.pacs.listen import seg_uids
from pacs_orthanc import LISTEN_AET

QUIET_S = "3"


def orthanc_ids(orthanc, files) -> list[str]:
    ids = []
    for p in files:
        sop = str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        ids += [h["ID"] for h in orthanc.rest("POST", "/tools/lookup", data=sop) if h["Type"] == "Instance"]
    return ids


def route(orthanc, files) -> None:
    """Orthanc sends these instances to the listener (C-STORE, Orthanc's own SCU)."""
    orthanc.rest("POST", "/modalities/listen/store", json={"Resources": orthanc_ids(orthanc, files), "Synchronous": True})


def start_listen(filled, tmp_path: Path, work: Path, *extra: str) -> tuple[subprocess.Popen, Path]:
    cfg = filled.orthanc.config_toml(tmp_path / "pacs.toml")
    err = work.parent / f"{work.name}-{time.monotonic_ns()}.log"
    env = dict(os.environ, LIVERSEG_PACS_CONFIG=str(cfg))
    cmd = [sys.executable, "-c", "import sys; from liverseg_studio.cli import main; sys.exit(main(sys.argv[1:]))", "listen", "--work", str(work), "--port",
           str(filled.orthanc.listen_port), "--ae-title", LISTEN_AET, "--quiet", QUIET_S, "--backend", "threshold",
           *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(err, "w"), env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if '"event": "listening"' in err.read_text():
            return proc, err
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    pytest.fail(f"liverseg listen did not start: {err.read_text()}")


def events(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def journal(work: Path) -> list[dict]:
    return [json.loads(line) for line in (work / "journal.jsonl").read_text().splitlines()]


def seg_in_orthanc(orthanc, series_uid: str) -> list[dict]:
    return [h for h in orthanc.rest("POST", "/tools/lookup", data=seg_uids(series_uid)[1]) if h["Type"] == "Instance"]


def test_listen_once_segments_a_series_sent_to_it(filled, tmp_path):
    work = tmp_path / "work"
    proc, log = start_listen(filled, tmp_path, work, "--once", "--send-to", "orthanc", "--allow", "ORTHANC",
                             "--max-wait", "120")
    try:
        route(filled.orthanc, filled.ct_files)
        rc = proc.wait(180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, log.read_text()
    ev = [e["event"] for e in events(log)]
    assert ev.index("series-started") < ev.index("segmenting") < ev.index("sent") < ev.index("done")
    assert all({"ts", "level", "event"} <= set(e) for e in events(log))
    hits = seg_in_orthanc(filled.orthanc, filled.ct_series)
    assert len(hits) == 1
    seg = pydicom.dcmread(__import__("io").BytesIO(filled.orthanc.rest_bytes(f"/instances/{hits[0]['ID']}/file")))
    assert seg.Modality == "SEG" and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == filled.ct_series
    assert not (work / "spool" / ".partial" / filled.ct_series).exists()


def test_listen_killed_mid_series_does_it_exactly_once(filled, tmp_path):
    work = tmp_path / "work"
    spool = work / "spool" / ".partial" / filled.ct_series
    proc, log1 = start_listen(filled, tmp_path, work, "--allow", "ORTHANC")  # no destination yet, not --once
    try:
        route(filled.orthanc, filled.ct_files[:3])
        deadline = time.monotonic() + 30
        while len(list(spool.glob("*.dcm"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)  # mid-series, before the quiet period ends
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(list(spool.glob("*.dcm"))) == 3
    assert [e["event"] for e in journal(work)] == ["received"]

    proc, log2 = start_listen(filled, tmp_path, work, "--once", "--send-to", "orthanc", "--allow", "ORTHANC",
                              "--max-wait", "120")
    try:
        route(filled.orthanc, filled.ct_files)  # the sender sends the whole series again
        rc = proc.wait(180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, log2.read_text()
    assert "resume" in [e["event"] for e in events(log2)]
    done = [e for e in journal(work) if e["event"] == "done"]
    assert len(done) == 1 and done[0]["series"] == filled.ct_series
    started = [e for e in journal(work) if e["event"] == "started"]
    assert len(started) == 1 and started[0]["instances"] == 6

    # a third run that receives the same series again does not do it again
    proc, log3 = start_listen(filled, tmp_path, work, "--once", "--send-to", "orthanc", "--allow", "ORTHANC",
                              "--max-wait", "60")
    try:
        route(filled.orthanc, filled.ct_files)
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, log3.read_text()
    assert "ignored" in [e["event"] for e in events(log3)]
    assert "segmenting" not in [e["event"] for e in events(log3)]
    assert len([e for e in journal(work) if e["event"] == "done"]) == 1
    assert len(seg_in_orthanc(filled.orthanc, filled.ct_series)) == 1


def test_listen_refuses_calling_ae_not_on_the_allow_list(filled, tmp_path):
    work = tmp_path / "work"
    proc, log = start_listen(filled, tmp_path, work, "--once", "--allow", "SOMEONE", "--max-wait", "8")
    try:
        with pytest.raises(Exception):  # noqa: B017 - Orthanc's REST call fails: the association is rejected
            route(filled.orthanc, filled.ct_files[:1])
        rc = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 2
    ev = events(log)
    rejected = [e for e in ev if e["event"] == "association-rejected"]
    assert rejected and rejected[0]["calling"] == "ORTHANC"
    assert not (work / "spool" / ".partial").exists()
    assert "nothing-received" in [e["event"] for e in ev]


def test_listen_over_tls_segments_ct_and_skips_non_ct(filled, tmp_path):
    import shutil

    from pydicom.data import get_testdata_file

    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed (makes the test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    work = tmp_path / "work"
    proc, log = start_listen(filled, tmp_path, work, "--once", "--allow", "LIVERSEG", "--max-wait", "120",
                             "--tls-cert", str(cert), "--tls-key", str(key))
    node = tmp_path / "node.toml"
    node.write_text(f'[local]\nae_title = "LIVERSEG"\n\n[nodes.listener]\nae_title = "{LISTEN_AET}"\n'
                    f'host = "127.0.0.1"\nport = {filled.orthanc.listen_port}\ntls = true\ntls_ca = "{cert}"\n')
    plain = tmp_path / "plain.toml"
    plain.write_text(node.read_text().replace("tls = true", "tls = false"))
    try:
        from liverseg_studio.cli import main

        # without TLS the node cannot associate
        assert main(["pacs", "store", "listener", str(filled.ct_files[0]), "--pacs-config", str(plain)]) == 2
        files = [*map(str, filled.ct_files), get_testdata_file("MR_small.dcm")]
        assert main(["pacs", "store", "listener", *files, "--pacs-config", str(node)]) == 0
        rc = proc.wait(180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, log.read_text()
    ev = events(log)
    assert [e for e in ev if e["event"] == "listening"][0]["tls"] is True
    done = [e["series"] for e in journal(work) if e["event"] == "done"]
    skipped = [e for e in journal(work) if e["event"] == "skipped"]
    assert done == [filled.ct_series]
    assert len(skipped) == 1 and "not CT" in skipped[0]["reason"]
    assert pydicom.dcmread(next((work / "out" / filled.ct_series).glob("*_seg.dcm"))).Modality == "SEG"
