"""``liverseg_studio.core`` must not pull in Qt, torch or onnxruntime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("PySide6", "pyqtgraph", "torch", "torchvision", "fastai", "onnxruntime")


def test_import_core_is_light():
    code = (
        "import sys, importlib, pkgutil\n"
        "import liverseg_studio.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('liverseg_studio.core.' + m.name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"core imports heavy modules: {out.stdout.strip()}"


def test_loaders_and_plugin_manager_are_light():
    code = (
        "import sys\n"
        "from liverseg_studio.plugins.manager import get_plugin_manager\n"
        "pm = get_plugin_manager()\n"
        "import liverseg_studio.cli\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY + ('pydicom', 'nibabel', 'mrcfile', 'PIL')!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"plugin discovery imports heavy modules: {out.stdout.strip()}"


def test_import_linter_contract_passes():
    exe = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "broken" in out.stdout and "0 broken" in out.stdout
