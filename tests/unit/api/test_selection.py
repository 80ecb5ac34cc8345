"""Selection and rendering: which routes a pod gets, and the config hash."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelroute.api.config import SidecarConfig
from modelroute.api.selection import matches, render_for_pod
from modelroute.api.v1alpha1 import LabelSelector, ModelRoute


def mr(name: str, route: str, created: int, selector: dict[str, Any] | None = None, model: str = "gpt-4o-mini") -> ModelRoute:
    spec: dict[str, Any] = {"route": route, "targets": [{"name": "t", "provider": "openai", "model": model, "apiKey": {"env": "K"}}]}
    if selector is not None:
        spec["selector"] = selector
    return ModelRoute.model_validate({
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": datetime.fromtimestamp(created, UTC).isoformat()},
        "spec": spec,
    })


def test_label_selector_semantics() -> None:
    sel = LabelSelector.model_validate({"matchLabels": {"app": "a"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["x", "y"]},
        {"key": "canary", "operator": "DoesNotExist"},
        {"key": "zone", "operator": "NotIn", "values": ["z"]},
        {"key": "team", "operator": "Exists"},
    ]})
    assert matches(sel, {"app": "a", "tier": "x", "team": "t"})
    assert not matches(sel, {"app": "a", "tier": "x", "team": "t", "canary": "1"})
    assert not matches(sel, {"app": "a", "tier": "q", "team": "t"})
    assert not matches(sel, {"app": "a", "tier": "x", "team": "t", "zone": "z"})
    assert not matches(sel, {"app": "a", "tier": "x"})
    assert matches(None, {}) and matches(LabelSelector(), {"any": "thing"})


def test_oldest_route_wins_a_name_conflict() -> None:
    old, new = mr("old", "classify", 100), mr("new", "classify", 200)
    r = render_for_pod([new, old], {})
    assert [x.metadata.name for x in r.config.routes] == ["old"]
    assert len(r.conflicts) == 1 and r.conflicts[0].loser == "ns/new" and r.conflicts[0].winner == "ns/old"


def test_conflict_only_where_both_select_the_pod() -> None:
    a, b = mr("a", "classify", 1, {"matchLabels": {"app": "x"}}), mr("b", "classify", 2, {"matchLabels": {"app": "y"}})
    r = render_for_pod([a, b], {"app": "y"})
    assert [x.metadata.name for x in r.config.routes] == ["b"] and r.conflicts == []


def test_hash_is_deterministic_and_content_sensitive() -> None:
    a, b = mr("a", "one", 1), mr("b", "two", 2)
    assert SidecarConfig(routes=[a, b]).hash == SidecarConfig(routes=[b, a]).hash
    assert SidecarConfig(routes=[a]).hash != SidecarConfig(routes=[mr("a", "one", 1, model="gpt-4.1-mini")]).hash
    # selectors do not change what the sidecar serves
    assert SidecarConfig(routes=[a]).hash == SidecarConfig(routes=[mr("a", "one", 1, {"matchLabels": {"k": "v"}})]).hash
