"""Named PACS nodes, read from a small TOML file.

Where the file is: ``--pacs-config FILE``, else ``$LIVERSEG_PACS_CONFIG``, else
``~/.config/liverseg/pacs.toml``.  Example::

    [local]                      # this computer as a DICOM node
    ae_title = "LIVERSEG"
    port = 11112                 # C-MOVE destination and `liverseg listen`

    [nodes.orthanc]
    ae_title = "ORTHANC"
    host = "127.0.0.1"
    port = 4242
    dicomweb_url = "http://127.0.0.1:8042/dicom-web"
    retrieve = "get"             # get | move | wado (DICOMweb)
    tls = false                  # DIMSE over TLS: tls_ca, tls_cert, tls_key (PEM files)

A node needs ``host`` + ``port`` (DIMSE) or ``dicomweb_url`` (DICOMweb), or both.
"""

from __future__ import annotations

import os
import ssl
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from liverseg_studio.core.errors import LiversegError

DEFAULT_LOCAL_AE = "LIVERSEG"
DEFAULT_LOCAL_PORT = 11112
RETRIEVE_METHODS = ("get", "move", "wado")


class PacsError(LiversegError):
    """A PACS could not be reached, refused, or does not hold what was asked (CLI exit 2)."""


def default_config_path() -> Path:
    env = os.environ.get("LIVERSEG_PACS_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "liverseg" / "pacs.toml"


def default_cache_dir() -> Path:
    env = os.environ.get("LIVERSEG_PACS_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "liverseg" / "pacs"


@dataclass(frozen=True)
class Node:
    """One remote DICOM node."""

    name: str
    ae_title: str = ""
    host: str = ""
    port: int = 0
    dicomweb_url: str = ""
    retrieve: str = "get"
    tls: bool = False
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    timeout_s: float = 30.0

    @property
    def has_dimse(self) -> bool:
        return bool(self.host and self.port and self.ae_title)

    @property
    def has_dicomweb(self) -> bool:
        return bool(self.dicomweb_url)

    def describe(self) -> str:
        parts = []
        if self.has_dimse:
            parts.append(f"{self.ae_title}@{self.host}:{self.port}{' (TLS)' if self.tls else ''}")
        if self.has_dicomweb:
            parts.append(self.dicomweb_url)
        return f"{self.name} ({', '.join(parts) or 'no address'})"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The client-side TLS context for DIMSE, or None without ``tls``."""
        if not self.tls:
            return None
        return client_ssl_context(self.tls_ca, self.tls_cert, self.tls_key, self.host)


@dataclass(frozen=True)
class LocalNode:
    """This computer as a DICOM node (our AE title, the port we listen on)."""

    ae_title: str = DEFAULT_LOCAL_AE
    port: int = DEFAULT_LOCAL_PORT
    host: str = "0.0.0.0"


@dataclass(frozen=True)
class PacsConfig:
    path: Path | None
    local: LocalNode = field(default_factory=LocalNode)
    nodes: Mapping[str, Node] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            known = ", ".join(sorted(self.nodes)) or "none"
            where = self.path if self.path else "no config file"
            raise PacsError(f"unknown PACS node {name!r} (known: {known}; {where})") from None


def client_ssl_context(ca: str, cert: str, key: str, host: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca or None)
    if cert:
        ctx.load_cert_chain(cert, keyfile=key or None)
    ctx.check_hostname = bool(ca) and host not in ("", "127.0.0.1", "localhost")
    return ctx


def server_ssl_context(cert: str, key: str, ca: str = "") -> ssl.SSLContext:
    """TLS for `liverseg listen`: our certificate; with ``ca``, callers must present one it signed."""
    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca or None)
        ctx.load_cert_chain(cert, keyfile=key or None)
    except (OSError, ssl.SSLError) as exc:
        raise PacsError(f"TLS: cannot load certificate {cert}: {exc}") from None
    ctx.verify_mode = ssl.CERT_REQUIRED if ca else ssl.CERT_NONE
    return ctx


def _node(name: str, raw: Any, path: Path) -> Node:
    if not isinstance(raw, dict):
        raise PacsError(f"{path}: [nodes.{name}] must be a table")
    known = set(Node.__dataclass_fields__) - {"name"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PacsError(f"{path}: [nodes.{name}]: unknown key(s) {', '.join(unknown)}")
    try:
        node = Node(name=name, **{k: (int(v) if k == "port" else v) for k, v in raw.items()})
    except (TypeError, ValueError) as exc:
        raise PacsError(f"{path}: [nodes.{name}]: {exc}") from None
    if node.retrieve not in RETRIEVE_METHODS:
        raise PacsError(f"{path}: [nodes.{name}]: retrieve must be one of {', '.join(RETRIEVE_METHODS)}")
    if not node.has_dimse and not node.has_dicomweb:
        raise PacsError(f"{path}: [nodes.{name}]: give ae_title + host + port, or dicomweb_url")
    return node


def load_config(path: str | os.PathLike[str] | None = None) -> PacsConfig:
    """The nodes in ``path`` (default :func:`default_config_path`); a missing default file = no nodes."""
    explicit = path is not None
    p = Path(path) if explicit else default_config_path()
    if not p.exists():
        if explicit or os.environ.get("LIVERSEG_PACS_CONFIG"):
            raise PacsError(f"{p}: PACS config file not found")
        return PacsConfig(path=None)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PacsError(f"{p}: cannot read PACS config: {exc}") from None
    local_raw = data.get("local", {}) or {}
    try:
        local = LocalNode(
            ae_title=str(local_raw.get("ae_title", DEFAULT_LOCAL_AE)),
            port=int(local_raw.get("port", DEFAULT_LOCAL_PORT)),
            host=str(local_raw.get("host", "0.0.0.0")),
        )
    except (TypeError, ValueError) as exc:
        raise PacsError(f"{p}: [local]: {exc}") from None
    nodes = {name: _node(name, raw, p) for name, raw in (data.get("nodes", {}) or {}).items()}
    return PacsConfig(path=p, local=local, nodes=nodes)
