"""Mirroring the kubelet's ConfigMap, Secret, downward-API and projected volumes locally.

The kubelet writes these volumes with its "atomic writer": the files live in a timestamped
directory, ``..data`` is a symlink to it, and every key is a symlink ``key -> ..data/key``.
An update swaps ``..data`` in one rename, so a reader never sees a half-written set. We do
the same, so a process that watches its mounted files behaves here as it would in a pod.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def render_downward_labels(labels: Mapping[str, str]) -> str:
    """The downward-API ``metadata.labels`` file: ``key="value"`` lines, sorted."""
    return "".join(f"{k}={json.dumps(v)}\n" for k, v in sorted(labels.items()))


def configmap_files(
    configmap: Mapping[str, Any], items: list[dict[str, Any]] | None = None
) -> dict[str, bytes]:
    """The files a ConfigMap volume shows for ``configmap`` (``items`` as in the volume spec)."""
    data: dict[str, bytes] = {k: v.encode() for k, v in (configmap.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (configmap.get("binaryData") or {}).items()})
    return _select(data, items)


def secret_files(secret: Mapping[str, Any], items: list[dict[str, Any]] | None = None) -> dict[str, bytes]:
    """The files a Secret volume shows for ``secret``."""
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    return _select(data, items)


def _select(data: dict[str, bytes], items: list[dict[str, Any]] | None) -> dict[str, bytes]:
    if not items:
        return data
    return {item.get("path", item["key"]): data[item["key"]] for item in items if item["key"] in data}


def downward_files(items: list[dict[str, Any]], metadata: Mapping[str, Any]) -> dict[str, bytes]:
    """The files of a downward-API volume (``metadata.*`` field refs)."""
    files: dict[str, bytes] = {}
    for item in items:
        field_path = (item.get("fieldRef") or {}).get("fieldPath")
        if field_path == "metadata.labels":
            files[item["path"]] = render_downward_labels(metadata.get("labels") or {}).encode()
        elif field_path == "metadata.annotations":
            files[item["path"]] = render_downward_labels(metadata.get("annotations") or {}).encode()
        elif field_path in ("metadata.name", "metadata.namespace", "metadata.uid"):
            files[item["path"]] = str(metadata[field_path.split(".", 1)[1]]).encode()
    return files


Lookup = Callable[[str, str], Mapping[str, Any] | None]  # (kind "configmaps"|"secrets", name)


def volume_files(
    volume: Mapping[str, Any], metadata: Mapping[str, Any], lookup: Lookup
) -> dict[str, bytes] | None:
    """What the kubelet would show for ``volume`` of a pod with ``metadata``.

    Handles configMap, secret, downwardAPI and projected (their sources; service-account
    tokens are left out). None for other kinds, or when a referenced object is missing
    (a kubelet would not start the pod; an ``optional`` source gives an empty volume).
    """
    if "projected" in volume:
        merged: dict[str, bytes] = {}
        for source in volume["projected"].get("sources") or []:
            part = volume_files(source, metadata, lookup)
            if part is None and ("configMap" in source or "secret" in source):
                return None
            merged.update(part or {})
        return merged
    if "configMap" in volume:
        src = volume["configMap"]
        cm = lookup("configmaps", src["name"])
        if cm is None:
            return {} if src.get("optional") else None
        return configmap_files(cm, src.get("items"))
    if "secret" in volume:
        src = volume["secret"]
        secret = lookup("secrets", src.get("secretName") or src.get("name", ""))
        if secret is None:
            return {} if src.get("optional") else None
        return secret_files(secret, src.get("items"))
    if "downwardAPI" in volume:
        return downward_files(volume["downwardAPI"].get("items") or [], metadata)
    return None


def read_files(directory: Path) -> dict[str, bytes]:
    """What an atomic-writer directory currently shows (keys only, no ``..`` entries)."""
    data_dir = directory / "..data"
    if not data_dir.exists():
        return {}
    out: dict[str, bytes] = {}
    for path in data_dir.rglob("*"):
        if path.is_file():
            out[str(path.relative_to(data_dir))] = path.read_bytes()
    return out


def write_atomic(directory: Path, files: Mapping[str, bytes]) -> bool:
    """Make ``directory`` show exactly ``files``; return False when nothing changed."""
    if read_files(directory) == dict(files):
        return False
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.") + f"{time.time_ns() % 10**9:09d}"
    new_dir = directory / stamp
    new_dir.mkdir()
    for rel, content in files.items():
        target = new_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    data_link = directory / "..data"
    old_target = os.readlink(data_link) if data_link.is_symlink() else None
    tmp_link = directory / "..data_tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(stamp)
    os.replace(tmp_link, data_link)
    # top-level names point through ..data; remove names that disappeared
    top_level = {rel.split("/", 1)[0] for rel in files}
    for name in top_level:
        link = directory / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    for entry in directory.iterdir():
        if not entry.name.startswith("..") and entry.name not in top_level:
            entry.unlink()
    if old_target and old_target != stamp:
        shutil.rmtree(directory / old_target, ignore_errors=True)
    return True
