"""Fixtures of the cohort tests (helpers in ``cohort_helpers``): one LocalCluster of 2 worker processes."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cluster():
    """A LocalCluster with 2 worker processes, shared by the cohort tests (one start-up)."""
    pytest.importorskip("distributed", reason="the 'cluster' extra (dask, distributed) is not installed")
    from cohort_helpers import local_cluster

    with local_cluster(2) as c:
        yield c


@pytest.fixture(scope="session")
def client(cluster):
    from distributed import Client

    with Client(cluster) as c:
        yield c
