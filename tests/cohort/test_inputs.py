"""The studies of a cohort: folders and files as ``segment`` expands them, CSV lists with ids."""

from __future__ import annotations

import pytest
from cohort_helpers import write_studies

from liverseg_studio.cohort.inputs import collect_studies
from liverseg_studio.core.errors import LiversegError
from liverseg_studio.plugins.manager import get_plugin_manager


@pytest.fixture
def loaders():
    return get_plugin_manager().loaders


def test_folder_is_expanded_like_segment(tmp_path, loaders):
    paths = write_studies(tmp_path / "in", 2)
    out = tmp_path / "in" / "out"  # the output folder inside the batch is never an input
    out.mkdir()
    (tmp_path / "in" / "case0_mask.nii.gz").write_bytes(b"x")  # named like an output: skipped
    skipped = []
    studies = collect_studies([str(tmp_path / "in")], loaders, out, skipped)
    assert [s.id for s in studies] == ["case0", "case1", "corrupt"]
    assert [s.path for s in studies] == [str(p) for p in paths]
    assert [p.name for p in skipped] == ["case0_mask.nii.gz"]


def test_csv_with_ids_relative_paths_and_extra_id_columns(tmp_path, loaders):
    write_studies(tmp_path / "data", 2, corrupt=False)
    csv_path = tmp_path / "list.csv"
    csv_path.write_text(
        "path,id,patient_id,comment\n"
        "data/case0.nii.gz,S-1,P7,first\n"
        "\n"
        f"{tmp_path / 'data' / 'case1.nii.gz'},S/2,P8,second\n"
    )
    studies = collect_studies([str(csv_path)], loaders, tmp_path / "out")
    assert [s.id for s in studies] == ["S-1", "S/2"]
    assert [s.name for s in studies] == ["S-1", "S_2"]  # output names are safe file names
    assert studies[0].path == str(tmp_path / "data" / "case0.nii.gz")
    assert studies[0].extra == (("patient_id", "P7"),)  # 'comment' is not an id column


def test_csv_without_ids_uses_unique_output_names(tmp_path, loaders):
    for sub in ("a", "b"):
        write_studies(tmp_path / sub, 1, corrupt=False)
    csv_path = tmp_path / "list.csv"
    csv_path.write_text("path\na/case0.nii.gz\nb/case0.nii.gz\n")
    assert [s.id for s in collect_studies([str(csv_path)], loaders, tmp_path / "out")] == ["case0", "case0-2"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("file,id\nx.nii.gz,1\n", "needs a 'path' column"),
        ("path,id\n,1\n", "line 2: empty path"),
        ("path,id\nx.nii.gz,1\ny.nii.gz,1\n", "used by two studies"),
        ("path\nx.nii.gz\nx.nii.gz\n", "listed twice"),
    ],
)
def test_bad_csv_is_one_clear_error(tmp_path, loaders, text, message):
    csv_path = tmp_path / "list.csv"
    csv_path.write_text(text)
    with pytest.raises(LiversegError, match=message):
        collect_studies([str(csv_path)], loaders, tmp_path / "out")
