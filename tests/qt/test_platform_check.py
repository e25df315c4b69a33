"""Qt's xcb plugin and ``make run`` on a fresh machine (issue 14, item 1).

The window test runs ``make run`` under Xvfb (where Xvfb, xwininfo and an
up-to-date ``make setup`` are here) and looks for a top-level window titled
LiverSeg; the checks of the one-line message fake ``ldd``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from liverseg_studio.qt import platform_check as pc

ROOT = Path(__file__).resolve().parents[2]
#: The issue's bound: the window is shown within 2 s of ``make run`` (set-up already done).
WINDOW_WITHIN_S = float(os.environ.get("LIVERSEG_WINDOW_WITHIN_S", "2.0"))

LDD_MISSING = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /x/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f)
"""


def test_parse_ldd_lists_the_missing_libraries():
    assert pc.parse_ldd(LDD_MISSING) == ["libxcb-cursor.so.0", "libxcb-icccm.so.4"]
    assert pc.parse_ldd("\tlibxcb.so.1 => /lib/libxcb.so.1 (0x1)\n") == []


def test_uses_xcb():
    assert pc.uses_xcb({}, platform="linux")
    assert pc.uses_xcb({"QT_QPA_PLATFORM": "xcb"}, platform="linux")
    assert not pc.uses_xcb({"QT_QPA_PLATFORM": "offscreen"}, platform="linux")
    assert not pc.uses_xcb({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, platform="linux")
    assert not pc.uses_xcb({}, platform="darwin")


def test_one_line_names_the_missing_library_and_the_install_command(tmp_path, monkeypatch):
    fake_ldd = tmp_path / "ldd"
    fake_ldd.write_text("#!/bin/sh\ncat <<'END'\n" + LDD_MISSING + "END\n")
    fake_ldd.chmod(0o755)
    monkeypatch.setattr(pc.shutil, "which", lambda name: str(fake_ldd) if name == "ldd" else None)
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    msg = pc.missing_xcb_message({"QT_QPA_PLATFORM": "xcb"}, plugin=plugin) if sys.platform == "linux" else None
    if sys.platform != "linux":
        pytest.skip("the xcb plugin is Linux-only")
    assert msg is not None and "\n" not in msg
    assert "libxcb-cursor.so.0" in msg and "apt-get install -y libxcb-cursor0 libxcb-icccm4" in msg
    assert pc.missing_xcb_message({"QT_QPA_PLATFORM": "offscreen"}, plugin=plugin) is None


def test_studio_prints_the_line_and_exits_2_instead_of_aborting(monkeypatch, capsys):
    from liverseg_studio.qt import app

    line = "liverseg-studio: Qt's xcb platform plugin cannot start: libxcb-cursor.so.0 is missing; install ..."
    monkeypatch.setattr(pc, "missing_xcb_message", lambda *a, **k: line)
    assert app.main([]) == 2
    assert capsys.readouterr().err.strip() == line


_WINDOW = re.compile(r'^\s*(0x[0-9a-f]+) "(LiverSeg[^"]*)".*?\s(\d+)x(\d+)[+-]', re.MULTILINE)


def liverseg_window_shown(display: str) -> bool:
    """A viewable window titled LiverSeg of at least 200x200 (Qt's 1x1 client-leader window,
    which also carries the application's name, does not count)."""

    def xwininfo(*args: str) -> str:
        cmd = ["xwininfo", *args, "-display", display]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False).stdout

    for wid, _title, w, h in _WINDOW.findall(xwininfo("-root", "-tree")):
        if int(w) >= 200 and int(h) >= 200 and "IsViewable" in xwininfo("-id", wid):
            return True
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="Xvfb is Linux-only")
@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb not installed (apt-get install xvfb; make setup does)")
@pytest.mark.skipif(shutil.which("xwininfo") is None, reason="xwininfo not installed (apt-get install x11-utils)")
@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_make_run_shows_a_window_titled_liverseg_under_xvfb(tmp_path):
    if pc.missing_libraries():
        pytest.skip(f"Qt's xcb plugin lacks {pc.missing_libraries()} here: {pc.install_command(pc.missing_libraries())}")
    clean = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}  # under make test
    if subprocess.run(["make", "-q", "setup"], cwd=ROOT, env=clean, capture_output=True, check=False).returncode != 0:
        pytest.skip("make setup is not up to date here (make test runs it first)")
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    studio = None
    try:
        with os.fdopen(read_fd) as f:
            number = f.readline().strip()
        assert number, "Xvfb did not start"
        display = f":{number}"
        env = {k: v for k, v in clean.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
        env.update(DISPLAY=display, XDG_CONFIG_HOME=str(tmp_path / "config"), HOME=str(tmp_path))
        t0 = time.perf_counter()
        studio = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and the studio in one process group, ended together
        )
        shown = None
        while time.perf_counter() - t0 < max(30.0, 5 * WINDOW_WITHIN_S):
            if studio.poll() is not None:
                break
            if liverseg_window_shown(display):
                shown = time.perf_counter() - t0
                break
            time.sleep(0.05)
        if shown is None:
            out = ""
            if studio.poll() is not None and studio.stdout is not None:
                out = studio.stdout.read().decode(errors="replace")[-2000:]
            pytest.fail(f"no window titled LiverSeg appeared (make run exited {studio.returncode}): {out}")
        print(f"make run: window titled LiverSeg shown after {shown:.2f} s (bound {WINDOW_WITHIN_S:g} s)")
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
        if shown > WINDOW_WITHIN_S and load > cores:
            pytest.skip(
                f"window shown after {shown:.2f} s, but the machine is overloaded (load {load:.1f} on "
                f"{cores} cores): the {WINDOW_WITHIN_S:g} s bound is not checked here"
            )
        assert shown <= WINDOW_WITHIN_S, f"window shown after {shown:.2f} s (load {load:.1f} on {cores} cores)"
    finally:
        if studio is not None and studio.poll() is None:
            os.killpg(studio.pid, signal.SIGTERM)
            try:
                studio.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(studio.pid, signal.SIGKILL)
                studio.wait()
        xvfb.terminate()
        xvfb.wait(timeout=10)
