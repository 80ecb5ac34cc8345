"""An in-memory stand-in for the operator's ``Kube`` client, for unit tests of the operator.

Just enough apiserver: objects by path, create/replace with AlreadyExists and resourceVersion
conflicts, JSON merge patches (``merge_patch``) and a record of every write. Tests that need
more of the client (``request``) or their own objects subclass it.
"""

from __future__ import annotations

import copy
from typing import Any

from modelroute.operator.kube.client import ApiError


class FakeKube:
    """Objects by path; ``writes`` lists (verb, path) of every write in order."""

    def __init__(self, objects: dict[str, dict[str, Any]] | None = None) -> None:
        self.objects: dict[str, dict[str, Any]] = objects or {}
        self.writes: list[tuple[str, str]] = []
        self.rv = 0

    async def get(self, path: str) -> Any:
        return copy.deepcopy(self.objects.get(path))

    async def create(self, path: str, body: Any) -> Any:
        full = f"{path}/{body['metadata']['name']}"
        if full in self.objects:
            raise ApiError(409, "AlreadyExists", full)
        return self._store("POST", full, copy.deepcopy(body))

    async def replace(self, path: str, body: Any) -> Any:
        cur = self.objects.get(path)
        if cur is None:
            raise ApiError(404, "NotFound", path)
        if body["metadata"].get("resourceVersion") != cur["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", path)
        return self._store("PUT", path, copy.deepcopy(body))

    async def merge_patch(self, path: str, body: Any) -> Any:
        target = path.removesuffix("/status")
        cur = self.objects.get(target)
        if cur is None:
            raise ApiError(404, "NotFound", path)
        merge(cur, body)
        return self._store("PATCH", target, cur)

    def _store(self, verb: str, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
        self.objects[path] = obj
        self.writes.append((verb, path))
        return obj


def merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Apply a JSON merge patch (RFC 7386) to ``target`` in place."""
    for k, v in patch.items():
        if v is None:
            target.pop(k, None)
        elif isinstance(v, dict) and isinstance(target.get(k), dict):
            merge(target[k], v)
        else:
            target[k] = copy.deepcopy(v)
