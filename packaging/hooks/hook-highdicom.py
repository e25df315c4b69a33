"""PyInstaller hook for highdicom (DICOM SEG export and reading).

highdicom reads its copy of the DICOM standard at run time with
``pkgutil.get_data("highdicom", "_standard/*.json")`` (which IODs and modules a SOP class has,
and each module's attributes), and ``_icc_profiles/*.icc`` for colour images.  Import analysis
cannot see these, so they are collected here; without them a SEG fails with
"FileNotFoundError: .../highdicom/_standard/sop_class_iod_map.json" (issue 27).

``module_attribute_map.json`` is 22 MB of indented JSON: the copy in the bundle is the same
JSON without the indentation (``json.loads`` gives an equal object; 15.7 MB).
"""

import json
from pathlib import Path

from PyInstaller.config import CONF
from PyInstaller.utils.hooks import collect_data_files, copy_metadata

#: JSON files larger than this are bundled without their indentation.
MINIFY_ABOVE_BYTES = 1_000_000


def _minified(src: str, dest_dir: str) -> str:
    """A copy of the JSON file ``src`` without whitespace, under PyInstaller's work folder."""
    out = Path(CONF["workpath"]) / "liverseg-minified" / dest_dir / Path(src).name
    out.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(Path(src).read_bytes())
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if not out.is_file() or out.read_text(encoding="utf-8") != text:
        out.write_text(text, encoding="utf-8")
    return str(out)


datas = []
for src, dest in collect_data_files("highdicom", includes=["_standard/*.json", "_icc_profiles/*"]):
    if src.endswith(".json") and Path(src).stat().st_size > MINIFY_ABOVE_BYTES:
        src = _minified(src, dest)
    datas.append((src, dest))
if not any(Path(s).name == "sop_class_iod_map.json" for s, _ in datas):
    raise SystemExit("hook-highdicom: highdicom/_standard/sop_class_iod_map.json not found: "
                     "this highdicom cannot write a DICOM SEG")
datas += copy_metadata("highdicom")
