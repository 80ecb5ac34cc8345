"""Start-up from the signed route bundle mounted from the cluster, selected with the pod's labels."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelroute.api.config import PodRef, RouteBundle
from modelroute.api.signing import sign
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.bundle import BundleError, BundleSource, parse_labels, read_bundle
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.sidecars import OperatorKey
from modelroute.testing.waiting import eventually

OPERATOR = OperatorKey()
KEY, PUB = OPERATOR.private, OPERATOR.public
POD = PodRef(namespace="team-a", name="app-1")


def routes(state: SidecarState) -> list[str]:
    rt = state.current()
    return list(rt.routes) if rt is not None else []


def write_bundle(directory: Path, docs: list[dict[str, Any]], issued: datetime, *, key: Any = KEY,
                 namespace: str = "team-a", registry: ModelRegistry | None = None) -> None:
    bundle = RouteBundle(namespace=namespace, issued_at=issued, routes=[ModelRoute.model_validate(d) for d in docs],
                         model_registry=registry)
    body = json.dumps(bundle.model_dump(mode="json", by_alias=True, exclude_none=True)).encode()
    directory.mkdir(exist_ok=True)
    (directory / "bundle.json").write_bytes(body)
    (directory / "bundle.sig").write_text(sign(key, body) + "\n")


def selected(make_doc: Any, name: str, route: str, app: str, created: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    d = make_doc(name, route, selector={"matchLabels": {"app": app}})
    d["metadata"].update(namespace="team-a", creationTimestamp=created)
    return dict(d)


def test_parse_labels_downward_api_format() -> None:
    text = 'app="web"\nmodelroute.dev/sidecar="true"\nquote="a \\"b\\""\n\n'
    assert parse_labels(text) == {"app": "web", "modelroute.dev/sidecar": "true", "quote": 'a "b"'}


def test_bad_signature_refused(tmp_path: Path, make_doc: Any) -> None:
    write_bundle(tmp_path / "b", [make_doc("a", "classify")], datetime.now(UTC), key=OperatorKey().private)
    with pytest.raises(BundleError, match="signature does not verify"):
        read_bundle(tmp_path / "b", PUB)
    with pytest.raises(BundleError, match="does not exist"):
        read_bundle(tmp_path / "missing", PUB)


async def test_bundle_selects_routes_by_labels_and_follows_changes(tmp_path: Path, builder: Any, keys: Any,
                                                                   make_doc: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modelroute.sidecar.server.bundle")
    labels = tmp_path / "labels"
    labels.write_text('app="web"\n')
    t0 = datetime.now(UTC) - timedelta(minutes=1)
    write_bundle(tmp_path / "b", [selected(make_doc, "for-web", "classify", "web"),
                                  selected(make_doc, "for-batch", "summarize", "batch")], t0)
    state = SidecarState(adapters=builder, keys=keys)
    source = BundleSource(tmp_path / "b", PUB, labels, "team-a")
    async with Sidecar(state, AuthSettings(operator_key=PUB, pod=POD), bundle=source, bundle_poll_seconds=0.05) as sc, \
            aiohttp.ClientSession() as http:
        await eventually(lambda: state.ready, "the bundle loaded")
        assert routes(state) == ["classify"]
        async with http.get(sc.admin_url + "/config") as r:
            assert (await r.json())["source"] == "bundle"
        # the pod is relabelled: the watcher re-selects
        labels.write_text('app="batch"\n')
        await eventually(lambda: routes(state) == ["summarize"], "the relabelled pod's route")

        # a newer operator push wins over an older bundle
        serving = state.current()
        assert serving is not None
        pushed = serving.config.model_copy(update={"routes": [ModelRoute.model_validate(make_doc("pushed", "pushed"))]})
        body, headers = OPERATOR.push(pushed, POD.namespace, POD.name)
        async with http.put(sc.admin_url + "/config", data=body, headers=headers) as r:
            assert r.status == 200
        write_bundle(tmp_path / "b", [selected(make_doc, "for-web", "classify", "web")], t0 + timedelta(seconds=1))
        await eventually(lambda: any("ignored: a newer push is serving" in r.getMessage() for r in caplog.records),
                         "the watcher to read the older bundle and say why it ignores it")
        assert routes(state) == ["pushed"]

        # a bundle newer than the push is loaded
        write_bundle(tmp_path / "b", [selected(make_doc, "for-batch", "batch", "batch")], datetime.now(UTC))
        await eventually(lambda: routes(state) == ["batch"], "the newer bundle's route")


async def test_the_bundles_registry_is_the_served_configs(tmp_path: Path, builder: Any, keys: Any, make_doc: Any) -> None:
    registry = ModelRegistry.model_validate({"windows": [
        {"provider": "openai", "model": "gpt-4o-mini", "contextWindow": 1000, "maxOutputTokens": 100}]})
    write_bundle(tmp_path / "b", [make_doc("a", "classify")], datetime.now(UTC), registry=registry)
    state = SidecarState(adapters=builder, keys=keys)
    await BundleSource(tmp_path / "b", PUB, None, "team-a").load_into(state)
    serving = state.current()
    assert serving is not None and serving.config.model_registry == registry


async def test_bundle_of_other_namespace_refused(tmp_path: Path, builder: Any, keys: Any, make_doc: Any) -> None:
    write_bundle(tmp_path / "b", [make_doc("a", "classify")], datetime.now(UTC), namespace="team-b")
    state = SidecarState(adapters=builder, keys=keys)
    with pytest.raises(BundleError, match="namespace"):
        await BundleSource(tmp_path / "b", PUB, None, "team-a").load_into(state)
    assert not state.ready


async def test_oldest_route_wins_conflict_in_bundle(tmp_path: Path, builder: Any, keys: Any, make_doc: Any) -> None:
    newer = selected(make_doc, "newer", "classify", "web", "2026-02-01T00:00:00Z")
    newer["spec"]["targets"] = [{"name": "other", "provider": "openai", "model": "x", "apiKey": {"env": "TEST_KEY_A"}}]
    write_bundle(tmp_path / "b", [newer, selected(make_doc, "older", "classify", "web")], datetime.now(UTC))
    (tmp_path / "labels").write_text('app="web"\n')
    state = SidecarState(adapters=builder, keys=keys)
    await BundleSource(tmp_path / "b", PUB, tmp_path / "labels", "team-a").load_into(state)
    assert state.current().routes["classify"].resource == "older"  # type: ignore[union-attr]


async def test_the_first_load_attempt_is_signalled_loaded_or_not(tmp_path: Path, builder: Any, keys: Any,
                                                                 make_doc: Any) -> None:
    """``tried``: the end of the sidecar's start (it resumes the collector then), whether or not the bundle loaded."""
    missing = BundleSource(tmp_path / "missing", PUB, None, "team-a")
    state = SidecarState(adapters=builder, keys=keys)
    async with Sidecar(state, AuthSettings(operator_key=PUB, pod=POD), bundle=missing, bundle_poll_seconds=60):
        await missing.tried.wait()
        assert not state.ready
    write_bundle(tmp_path / "b", [selected(make_doc, "for-web", "classify", "web")], datetime.now(UTC))
    labels = tmp_path / "labels"
    labels.write_text('app="web"\n')
    present = BundleSource(tmp_path / "b", PUB, labels, "team-a")
    assert not present.tried.is_set()
    state = SidecarState(adapters=builder, keys=keys)
    async with Sidecar(state, AuthSettings(operator_key=PUB, pod=POD), bundle=present, bundle_poll_seconds=60):
        await present.tried.wait()
        assert state.ready  # set after the load, not before it
