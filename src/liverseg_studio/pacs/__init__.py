"""Working with a hospital PACS: query (C-FIND / QIDO-RS), retrieve (C-GET, C-MOVE / WADO-RS) into a
local cache, store results back (C-STORE / STOW-RS), and a DICOM node that segments what it receives.

Network code is pynetdicom's (DIMSE) and dicomweb-client's (DICOMweb); this package only wires them
to LiverSeg Studio's cache, errors and pipeline.  Modules: ``config`` (named nodes), ``dimse``,
``dicomweb``, ``cache`` (complete series only; resumable), ``client`` (one interface over both),
``journal`` and ``listen`` (the node).
"""
