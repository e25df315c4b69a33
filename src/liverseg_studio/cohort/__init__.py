"""``liverseg cohort``: segment whole cohorts of CT studies on Dask distributed.

Qt-free.  The parts:

* :mod:`~liverseg_studio.cohort.inputs`: the studies of a run (folders, files or a CSV
  with a ``path`` column and optional id columns), each with a stable id and output name;
* :mod:`~liverseg_studio.cohort.table`: ``cohort.csv``, one row per study, appended and
  flushed row by row (a crash leaves a valid table), plus the resume rules and the Parquet copy;
* :mod:`~liverseg_studio.cohort.task`: the worker side, a Dask ``WorkerPlugin`` that loads the
  model once per worker and the per-study task (load -> ``segment_volume`` -> ``export_outputs``,
  the functions ``liverseg segment`` uses);
* :mod:`~liverseg_studio.cohort.runner`: the client side (LocalCluster or an existing
  scheduler, ``client.map`` with retries, ``as_completed``, progress, Ctrl-C).

Only ``task`` and ``runner`` import dask/distributed (the optional ``cluster`` extra).
"""
