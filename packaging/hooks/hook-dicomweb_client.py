"""PyInstaller hook for dicomweb-client (DICOMweb QIDO/WADO/STOW with a PACS).

It talks HTTP through ``requests``: the spec keeps requests, urllib3, idna, charset_normalizer
and certifi (its CA bundle comes with PyInstaller's hook-certifi) in the bundle only when the
application imports dicomweb_client (``liverseg_studio.spec``: ``LIFTED_BY``).
"""

from PyInstaller.utils.hooks import collect_submodules, copy_metadata

hiddenimports = collect_submodules("dicomweb_client", filter=lambda name: ".cli" not in name)
hiddenimports += ["requests", "urllib3", "certifi", "idna", "charset_normalizer"]
datas = copy_metadata("dicomweb-client")
