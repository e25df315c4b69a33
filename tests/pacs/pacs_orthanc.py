"""A real Orthanc (Debian packages ``orthanc`` + ``orthanc-dicomweb``; ``make setup`` installs them) for
the PACS tests: 127.0.0.1 only, free ports, a temporary folder, its REST API for filling and checking.

Tests skip with the reason where Orthanc is not installed or does not start.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ORTHANC = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC_AET = "ORTHANC"
#: AE titles Orthanc knows (its DicomModalities); any other calling AE is refused
CLIENT_AET = "LIVERSEG"
LISTEN_AET = "LSLISTEN"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Orthanc:
    folder: Path
    http_port: int
    dicom_port: int
    move_port: int  # where C-MOVE sends images (our client's storage SCP)
    listen_port: int  # a `liverseg listen` Orthanc may send to
    proc: subprocess.Popen | None = None
    log: Path = field(default=Path())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        import requests

        r = requests.request(method, self.url + path, timeout=60, **kwargs)
        r.raise_for_status()
        return r.json() if r.content else None

    def rest_bytes(self, path: str) -> bytes:
        import requests

        r = requests.get(self.url + path, timeout=60)
        r.raise_for_status()
        return r.content

    def upload(self, paths: list[Path]) -> list[dict]:
        return [self.rest("POST", "/instances", data=Path(p).read_bytes()) for p in paths]

    def series_of_study(self, study_uid: str) -> list[dict]:
        ids = self.rest("POST", "/tools/lookup", data=study_uid)
        out = []
        for hit in ids:
            if hit["Type"] == "Study":
                out = self.rest("GET", f"/studies/{hit['ID']}/series")
        return out

    def config_toml(self, path: Path, *, local_port: int | None = None, **node: Any) -> Path:
        """A liverseg PACS config naming this Orthanc as node ``orthanc`` (extra keys override)."""
        entries = {
            "ae_title": ORTHANC_AET, "host": "127.0.0.1", "port": self.dicom_port,
            "dicomweb_url": self.dicomweb_url, "retrieve": "get", "timeout_s": 20,
        }
        entries.update(node)
        lines = ["[local]", f'ae_title = "{CLIENT_AET}"', f"port = {local_port or self.move_port}",
                 'host = "127.0.0.1"', "", "[nodes.orthanc]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in entries.items()]
        path.write_text("\n".join(lines) + "\n")
        return path

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_orthanc(folder: Path) -> Orthanc:
    if ORTHANC is None:
        pytest.skip("Orthanc not installed (Debian: apt-get install orthanc orthanc-dicomweb; make setup does it)")
    if not DICOMWEB_PLUGIN.exists():
        pytest.skip(f"Orthanc's DICOMweb plugin missing ({DICOMWEB_PLUGIN}; apt-get install orthanc-dicomweb)")
    folder.mkdir(parents=True, exist_ok=True)
    o = Orthanc(folder, free_port(), free_port(), free_port(), free_port())
    cfg = {
        "Name": "liverseg-test", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
        "HttpPort": o.http_port, "DicomPort": o.dicom_port, "DicomAet": ORTHANC_AET,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "HttpServerEnabled": True,
        "Plugins": [str(DICOMWEB_PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "DicomCheckCalledAet": True, "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False,
        "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False, "DicomAlwaysAllowMove": False,
        "DicomModalities": {
            "liverseg": [CLIENT_AET, "127.0.0.1", o.move_port],
            "listen": [LISTEN_AET, "127.0.0.1", o.listen_port],
        },
        "DicomScpTimeout": 10, "StableAge": 1, "SaveJobs": False, "ConcurrentJobs": 1,
        "HttpThreadsCount": 8, "OverwriteInstances": True,
    }
    cfg_path = folder / "orthanc.json"
    cfg_path.write_text(json.dumps(cfg, indent=1))
    o.log = folder / "orthanc.log"
    with open(o.log, "w") as log:
        o.proc = subprocess.Popen([ORTHANC, str(cfg_path)], stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    deadline = time.monotonic() + 40
    import requests

    while time.monotonic() < deadline:
        if o.proc.poll() is not None:
            break
        try:
            if requests.get(o.url + "/system", timeout=2).ok and requests.get(o.dicomweb_url + "/studies", timeout=5).ok:
                return o
        except requests.RequestException:
            pass
        time.sleep(0.3)
    o.stop()
    tail = " | ".join(o.log.read_text(errors="replace").splitlines()[-3:])
    pytest.skip(f"Orthanc did not start: {tail}")
