"""Before Qt starts: are the system libraries of Qt's xcb platform plugin here? (issue 14, item 1)

Since Qt 6.5 the xcb plugin needs ``libxcb-cursor0`` and a few other X libraries
that a fresh Linux machine may lack; Qt then prints a long message and aborts.
``make setup`` / ``make run`` install them where they can (root or ``sudo -n``);
where they cannot, :func:`missing_xcb_message` gives the one line the studio
prints instead: which library is missing and the command that installs it.

No Qt import here (this runs before Qt starts, and stays cheap): the plugin file
is found through PySide6's folder and its dependencies listed with ``ldd``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Shared library -> the Debian/Ubuntu package that has it.
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb.so.1": "libxcb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libX11.so.6": "libx11-6",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}


def uses_xcb(environ: dict[str, str] | None = None, platform: str | None = None) -> bool:
    """Whether Qt will load its xcb plugin: Linux, and QT_QPA_PLATFORM unset or xcb."""
    env = os.environ if environ is None else environ
    if (platform or sys.platform) != "linux":
        return False
    requested = env.get("QT_QPA_PLATFORM", "").strip().lower()
    if requested:
        return requested.split(":", 1)[0].split(";", 1)[0] == "xcb"
    return not (env.get("WAYLAND_DISPLAY") and env.get("XDG_SESSION_TYPE", "").lower() == "wayland")


def xcb_plugin() -> Path | None:
    """PySide6's ``libqxcb.so`` (None when PySide6 or the plugin is not found)."""
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        for candidate in (Path(root) / "Qt" / "plugins" / "platforms" / "libqxcb.so",
                          Path(root) / "plugins" / "platforms" / "libqxcb.so"):
            if candidate.is_file():
                return candidate
    return None


def parse_ldd(output: str) -> list[str]:
    """The libraries ``ldd`` reports as ``not found``."""
    missing = []
    for line in output.splitlines():
        if "=>" in line and "not found" in line.split("=>", 1)[1]:
            name = line.split("=>", 1)[0].strip()
            if name not in missing:
                missing.append(name)
    return missing


def missing_libraries(plugin: Path | None = None) -> list[str]:
    """Shared libraries the xcb plugin (and Qt's xcb library it links) cannot find; [] if unknown."""
    plugin = plugin or xcb_plugin()
    ldd = shutil.which("ldd")
    if plugin is None or ldd is None:
        return []
    try:
        proc = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_ldd(proc.stdout + proc.stderr)


def install_command(libraries: list[str]) -> str:
    packages = []
    for lib in libraries:
        pkg = DEBIAN_PACKAGES.get(lib, lib)
        if pkg not in packages:
            packages.append(pkg)
    sudo = "" if hasattr(os, "geteuid") and os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install -y {' '.join(packages)}"


def missing_xcb_message(environ: dict[str, str] | None = None, plugin: Path | None = None) -> str | None:
    """One line naming the missing libraries and the install command, or None when all is well."""
    if not uses_xcb(environ):
        return None
    missing = missing_libraries(plugin)
    if not missing:
        return None
    return (
        f"liverseg-studio: Qt's xcb platform plugin cannot start: {', '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} missing; install with: {install_command(missing)} "
        "(or run make setup as root)"
    )
