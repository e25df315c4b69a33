"""The PACS node config: what it accepts and the one-line errors for what it does not (no network)."""

from __future__ import annotations

import pytest

from liverseg_studio.cli import main
from liverseg_studio.pacs.cache import SeriesCache
from liverseg_studio.pacs.client import parse_ref
from liverseg_studio.pacs.config import PacsError, load_config


def test_nodes_and_local_are_read(tmp_path):
    p = tmp_path / "pacs.toml"
    p.write_text('[local]\nae_title = "ME"\nport = 104\n\n[nodes.a]\nae_title = "A"\nhost = "h"\nport = "4242"\n'
                 '[nodes.web]\ndicomweb_url = "https://pacs/dicom-web"\nretrieve = "wado"\n')
    cfg = load_config(p)
    assert cfg.local.ae_title == "ME" and cfg.local.port == 104
    assert cfg.node("a").port == 4242 and cfg.node("a").has_dimse and not cfg.node("a").has_dicomweb
    assert cfg.node("web").has_dicomweb and not cfg.node("web").has_dimse
    with pytest.raises(PacsError, match="unknown PACS node 'b' \\(known: a, web"):
        cfg.node("b")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[nodes.a]\nhost = 'h'\n", "give ae_title \\+ host \\+ port, or dicomweb_url"),
        ("[nodes.a]\ndicomweb_url = 'u'\nretriev = 'get'\n", "unknown key\\(s\\) retriev"),
        ("[nodes.a]\ndicomweb_url = 'u'\nretrieve = 'ftp'\n", "retrieve must be one of get, move, wado"),
        ("[nodes.a]\nae_title = 'A'\nhost = 'h'\nport = 'x'\n", "\\[nodes.a\\]"),
        ("[nodes.a\n", "cannot read PACS config"),
    ],
)
def test_bad_configs_are_one_line_errors(tmp_path, capsys, text, message):
    p = tmp_path / "pacs.toml"
    p.write_text(text)
    with pytest.raises(PacsError, match=message):
        load_config(p)
    assert main(["pacs", "nodes", "--pacs-config", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error:" in err[0]


def test_missing_explicit_config_and_bad_refs(tmp_path):
    with pytest.raises(PacsError, match="not found"):
        load_config(tmp_path / "nope.toml")
    assert parse_ref("pacs://n/1.2/3.4").series_uid == "3.4"
    with pytest.raises(PacsError, match="pacs://NODE/STUDY_UID"):
        parse_ref("pacs://n")
    with pytest.raises(PacsError, match="not a DICOM UID"):
        SeriesCache(tmp_path).series_dir("../etc", "1.2")
