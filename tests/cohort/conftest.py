"""Fixtures of the cohort tests: small synthetic NIfTI studies (one corrupt) and LocalClusters.

The threshold example backend (``plugins/liverseg-threshold-backend``, installed by
``make setup``) segments them in a fraction of a second, so the Dask tests stay
fast on 2 shared cores.  Clusters bind to 127.0.0.1 only and have no dashboard.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.phantom import make_phantom, write_nifti

pytest.importorskip("distributed", reason="the 'cluster' extra (dask, distributed) is not installed")

BACKEND = "threshold"
CORRUPT = "corrupt"


def write_studies(folder: Path, n_ok: int, *, shape=(12, 64, 64), corrupt: bool = True) -> list[Path]:
    """``n_ok`` phantoms (different noise, so different masks) and, with ``corrupt``, a broken .nii.gz."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_ok):
        ph = make_phantom(shape, noise=6.0, seed=i)
        paths.append(write_nifti(folder / f"case{i}.nii.gz", ph.hu, ph.affine, dtype="int16"))
    if corrupt:
        bad = folder / f"{CORRUPT}.nii.gz"
        bad.write_bytes(b"\x1f\x8b\x08\x00 this is not a NIfTI file" * 8)
        paths.append(bad)
    return paths


def local_cluster(n_workers: int = 2):
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=50,
    )


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster with 2 worker processes, shared by a test module."""
    with local_cluster(2) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    from distributed import Client

    with Client(cluster) as c:
        yield c
