"""No network: ``liverseg info``/``plugins``, the loaders and the example backend
work with every socket connection blocked, in-process and in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

CT_SMALL = get_testdata_file("CT_small.dcm")
CASE117 = Path(__import__("sysconfig").get_paths()["purelib"]) / "liver_ct_segmentation_package" / "data" / "img_117.mrc"


class NetworkBlocked(OSError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    """Every connect / DNS lookup raises and is recorded."""
    attempts: list[str] = []

    def deny(what):
        def _deny(*args, **kwargs):
            attempts.append(f"{what}{args[1:] if what.startswith('socket.') else args}")
            raise NetworkBlocked(f"network blocked in tests: {what}")

        return _deny

    monkeypatch.setattr(socket.socket, "connect", deny("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", deny("socket.connect_ex"))
    monkeypatch.setattr(socket.socket, "sendto", deny("socket.sendto"))
    monkeypatch.setattr(socket, "create_connection", deny("create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", deny("getaddrinfo"))
    monkeypatch.setattr(socket, "gethostbyname", deny("gethostbyname"))
    return attempts


def test_block_is_effective(no_network):
    s = socket.socket()
    try:
        with pytest.raises(NetworkBlocked):
            s.connect(("127.0.0.1", 9))
    finally:
        s.close()
    assert no_network


def test_cli_and_loaders_in_process(no_network, capsys, tmp_path, nifti_phantom, dicom_series_phantom):
    from liverseg_studio.cli import main
    from liverseg_studio.plugins import manager

    manager._default = None  # rediscover plugins under the block
    try:
        assert main(["plugins"]) == 0
        assert main(["info", CT_SMALL]) == 0
        png = tmp_path / "slice.png"
        Image.fromarray(np.full((32, 32), 60, np.uint8)).save(png)
        paths = [png, nifti_phantom.path, dicom_series_phantom.path, CT_SMALL]
        if CASE117.exists():
            paths.append(CASE117)
        pm = manager.get_plugin_manager()
        for p in paths:
            assert main(["info", str(p)]) == 0
            assert pm.loaders.load(p).shape[0] >= 1
        backend = pm.backends.create("threshold")
        backend.load(None)
        backend.predict(pm.loaders.load(nifti_phantom.path))
    finally:
        manager._default = None
    capsys.readouterr()
    assert no_network == [], f"network access attempted: {no_network}"


SITECUSTOMIZE = '''
import os, socket

_LOG = os.environ["LIVERSEG_NET_LOG"]

def _deny(what):
    def deny(*args, **kwargs):
        with open(_LOG, "a") as fh:
            fh.write(f"{what} {args[1:]!r}\\n")
        raise OSError(f"network blocked by sitecustomize: {what}")
    return deny

socket.socket.connect = _deny("connect")
socket.socket.connect_ex = _deny("connect_ex")
socket.socket.sendto = _deny("sendto")
socket.create_connection = _deny("create_connection")
socket.getaddrinfo = _deny("getaddrinfo")
'''


@pytest.fixture
def blocked_env(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    log = tmp_path / "net.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["LIVERSEG_NET_LOG"] = str(log)
    return env, log


def _py(env, *args, timeout=180):
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_subprocess_block_is_effective(blocked_env):
    env, log = blocked_env
    out = _py(env, "-c", "import socket; socket.create_connection(('example.org', 80), timeout=1)")
    assert out.returncode != 0 and "network blocked by sitecustomize" in out.stderr
    assert "create_connection" in log.read_text()


def test_cli_in_subprocess_with_sockets_blocked(blocked_env, nifti_phantom, dicom_series_phantom):
    env, log = blocked_env
    out = _py(env, "-m", "liverseg_studio.cli", "plugins")
    assert out.returncode == 0, out.stderr
    assert "threshold" in out.stdout and "[error]" not in out.stdout
    for path in (CT_SMALL, str(nifti_phantom.path), str(dicom_series_phantom.path)):
        out = _py(env, "-m", "liverseg_studio.cli", "info", path)
        assert out.returncode == 0, out.stderr
        assert "HU range" in out.stdout
    script = textwrap.dedent(
        f"""
        from liverseg_studio.plugins.manager import get_plugin_manager
        pm = get_plugin_manager()
        v = pm.loaders.load({str(nifti_phantom.path)!r})
        b = pm.backends.create("threshold"); b.load(None)
        print(int(b.predict(v).labels.sum()))
        """
    )
    out = _py(env, "-c", script)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 0
    assert not log.exists() or log.read_text() == "", f"network access attempted:\n{log.read_text()}"
