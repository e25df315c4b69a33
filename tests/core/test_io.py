"""Atomic writes: temp + rename, no overwrite without permission, no partial files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from liverseg_studio.core.errors import LiversegError
from liverseg_studio.core.io import (
    TEMP_PREFIX,
    OutputExistsError,
    atomic_output,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    check_can_write,
    remove_stale_temps,
    temp_path_for,
)


def _names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_writes_and_keeps_suffixes(tmp_path):
    tmp = temp_path_for(tmp_path / "case_mask.nii.gz")
    assert tmp.parent == tmp_path and tmp.name.endswith("case_mask.nii.gz") and tmp.name.startswith(TEMP_PREFIX)
    seen = []

    def write(p: Path) -> None:
        seen.append(p)
        p.write_bytes(b"data")

    out = atomic_write(tmp_path / "case_mask.nii.gz", write)
    assert out.read_bytes() == b"data"
    assert seen[0] != out and not seen[0].exists()
    assert _names(tmp_path) == {"case_mask.nii.gz"}


def test_refuses_to_overwrite_and_keeps_the_original(tmp_path):
    dest = tmp_path / "report.json"
    dest.write_text("user data")
    with pytest.raises(OutputExistsError) as exc:
        atomic_write_text(dest, "new")
    assert isinstance(exc.value, LiversegError) and "--overwrite" in str(exc.value)
    assert dest.read_text() == "user data"
    assert _names(tmp_path) == {"report.json"}
    atomic_write_text(dest, "new", overwrite=True)
    assert dest.read_text() == "new"
    assert _names(tmp_path) == {"report.json"}


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt, SystemExit])
def test_interrupted_write_leaves_no_partial_file(tmp_path, exc_type):
    dest = tmp_path / "case_mask.nii.gz"
    with pytest.raises(exc_type):
        with atomic_output(dest) as tmp:
            tmp.write_bytes(b"half a file")
            raise exc_type()
    assert _names(tmp_path) == set()


def test_interrupt_keeps_existing_destination_intact(tmp_path):
    dest = tmp_path / "out.png"
    dest.write_bytes(b"old complete file")
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(dest, overwrite=True) as tmp:
            tmp.write_bytes(b"new but partial")
            raise KeyboardInterrupt
    assert dest.read_bytes() == b"old complete file"
    assert _names(tmp_path) == {"out.png"}


def test_destination_appearing_meanwhile_is_not_clobbered(tmp_path):
    dest = tmp_path / "x.json"
    with pytest.raises(OutputExistsError):
        with atomic_output(dest) as tmp:
            tmp.write_text("ours")
            dest.write_text("someone else's")  # appears while we write
    assert dest.read_text() == "someone else's"
    assert _names(tmp_path) == {"x.json"}


def test_writer_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(LiversegError):
        atomic_write(tmp_path / "a.bin", lambda p: None)
    assert _names(tmp_path) == set()


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(LiversegError, match="does not exist"):
        atomic_write_bytes(tmp_path / "nope" / "a.bin", b"x")


def test_check_can_write(tmp_path):
    (tmp_path / "b").write_text("x")
    check_can_write([tmp_path / "a"])
    with pytest.raises(OutputExistsError, match="b"):
        check_can_write([tmp_path / "a", tmp_path / "b"])
    check_can_write([tmp_path / "b"], overwrite=True)


def test_remove_stale_temps_only_touches_this_process(tmp_path):
    mine = temp_path_for(tmp_path / "a.png")
    mine.write_bytes(b"x")
    other = tmp_path / f"{TEMP_PREFIX}{os.getpid() + 1}-abcd-a.png"
    other.write_bytes(b"x")
    user = tmp_path / "a.png"
    user.write_bytes(b"user")
    assert remove_stale_temps(tmp_path) == [mine]
    assert _names(tmp_path) == {other.name, "a.png"}


def test_oserror_while_writing_becomes_output_write_error(tmp_path):
    import errno

    from liverseg_studio.core.io import OutputWriteError, atomic_write

    dest = tmp_path / "mask.nii.gz"

    def write(tmp):
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputWriteError, match="No space left on device"):
        atomic_write(dest, write)
    assert list(tmp_path.iterdir()) == []
