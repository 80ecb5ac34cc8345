"""Rendering kubeconfig files for the local control plane (pure, plus one writer).

Credentials are embedded (``*-data``), so a kubeconfig stays valid when copied elsewhere;
files are written with mode 0600 because they carry private keys or tokens.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def render_kubeconfig(
    *,
    cluster_name: str,
    server: str,
    ca_pem: bytes,
    user: str,
    client_cert_pem: bytes | None = None,
    client_key_pem: bytes | None = None,
    token: str | None = None,
    namespace: str | None = None,
) -> str:
    """A single-context kubeconfig authenticating with a client certificate or a token."""
    if (client_cert_pem is None) == (token is None):
        raise ValueError("pass exactly one of a client certificate or a token")
    credentials: dict[str, Any] = {}
    if token is not None:
        credentials["token"] = token
    else:
        assert client_key_pem is not None
        credentials["client-certificate-data"] = _b64(client_cert_pem or b"")
        credentials["client-key-data"] = _b64(client_key_pem)
    context: dict[str, Any] = {"cluster": cluster_name, "user": user}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": cluster_name, "context": context}],
        "current-context": cluster_name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path
