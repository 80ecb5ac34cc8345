"""A bearer-token PUT /config is checked for model lifecycles like a config file, canaries included.

Wherever a route names a model (its primary target, its fallbacks, a weighted canary's targets, a mirror-only
canary's, i.e. a shadow's), a retired model is a 422 problem naming that place, and one with an announced shutdown
ahead is a warning in the typed success answer (``ConfigApplied.warnings``).
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelroute.api.admin import AdminError, ConfigApplied
from modelroute.api.lifecycledate import ENV_LIFECYCLE_DATE
from modelroute.sidecar.config import loader
from modelroute.sidecar.config.loader import ConfigError
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState

DAY = date(2026, 12, 6)
LIVE = [("openai", "gpt-5.4-mini"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-flash")]
RETIRED = ("anthropic", "claude-sonnet-4-5", "was retired by anthropic on 2026-11-30: every call to it fails")
DEPRECATED = ("openai", "gpt-4o-mini", "is deprecated by openai and shuts down on 2027-01-14")
AUTH = {"Authorization": "Bearer s3cret-token"}


def target(i: int, provider: str, model: str) -> dict[str, Any]:
    return {"name": f"t{i}", "provider": provider, "model": model, "apiKey": {"env": "TEST_KEY_A"}}


def spec(route: str, models: list[tuple[str, str]]) -> dict[str, Any]:
    return {"route": route, "targets": [target(i, p, m) for i, (p, m) in enumerate(models)]}


def doc(name: str, route: str, models: list[tuple[str, str]]) -> dict[str, Any]:
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": name},
            "spec": spec(route, models)}


def canary(route: str, models: list[tuple[str, str]], *, weight: int, mirror: int) -> dict[str, Any]:
    return {"route": route, "revision": "rev2", "runId": "run1", "spec": spec(route, models), "weight": weight,
            "mirror": mirror}


@st.composite
def bodies(draw: st.DrawFn) -> tuple[list[list[tuple[str, str]]], list[tuple[int, list[tuple[str, str]], int, int]]]:
    """Routes (each a list of target models) and canaries (route index, models, weight, mirror) of live models."""
    models = st.lists(st.sampled_from(LIVE), min_size=1, max_size=3)
    routes = draw(st.lists(models, min_size=1, max_size=3))
    on = draw(st.lists(st.sampled_from(range(len(routes))), unique=True, max_size=len(routes)))
    canaries = [(r, draw(models), draw(st.integers(0, 100)), draw(st.integers(0, 100))) for r in on]
    return routes, canaries


def body_of(routes: list[list[tuple[str, str]]], canaries: list[tuple[int, list[tuple[str, str]], int, int]]) -> bytes:
    return json.dumps({"routes": [doc(f"mr{i}", f"route{i}", m) for i, m in enumerate(routes)],
                       "canaries": [canary(f"route{r}", m, weight=w, mirror=x) for r, m, w, x in canaries]}).encode()


@settings(max_examples=60, deadline=None)
@given(bodies(), st.data(), st.sampled_from([RETIRED, DEPRECATED]))
def test_a_dated_model_anywhere_a_route_names_one_is_reported_at_that_place(
        body: tuple[list[list[tuple[str, str]]], list[tuple[int, list[tuple[str, str]], int, int]]],
        data: st.DataObject, dated: tuple[str, str, str]) -> None:
    routes, canaries = body
    sites = [("route", i, ti) for i, m in enumerate(routes) for ti in range(len(m))]
    sites += [("canary", ci, ti) for ci, (_, m, _, _) in enumerate(canaries) for ti in range(len(m))]
    kind, i, ti = data.draw(st.sampled_from(sites))
    provider, model, says = dated
    (routes[i] if kind == "route" else canaries[i][1])[ti] = (provider, model)
    where = (f"body doc {i + 1} (mr{i}): spec.targets[{ti}].model" if kind == "route"
             else f"canaries[{i}] (route{canaries[i][0]}): spec.targets[{ti}].model")
    line = f"{where}: target 't{ti}': model {model!r} {says}"
    if dated is RETIRED:
        with pytest.raises(ConfigError) as refused:
            loader.admin_config(body_of(routes, canaries), None, DAY)
        (problem,) = refused.value.problems
        assert problem.startswith(line), (problem, line)
    else:
        config, warnings = loader.admin_config(body_of(routes, canaries), None, DAY)
        assert [w[:len(line)] for w in warnings] == [line]
        assert len(config.routes) == len(routes) and len(config.canaries) == len(canaries)


def test_a_config_of_live_models_has_no_warnings() -> None:
    config, warnings = loader.admin_config(body_of([LIVE], [(0, LIVE[::-1], 0, 100)]), None, DAY)
    assert warnings == [] and config.canaries[0].mirror == 100


@pytest.fixture
async def token_sidecar(builder: Any, keys: Any) -> Any:
    async with Sidecar(SidecarState(adapters=builder, keys=keys), AuthSettings(admin_token="s3cret-token")) as sc:
        yield sc


async def put(http: aiohttp.ClientSession, sc: Sidecar, body: bytes) -> tuple[int, str]:
    async with http.put(sc.admin_url + "/config", data=body, headers=AUTH) as r:
        return r.status, await r.text()


async def test_a_retired_model_in_a_canary_is_422_naming_it_and_old_keeps_serving(
        token_sidecar: Sidecar, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_LIFECYCLE_DATE, DAY.isoformat())
    status, _ = await put(http, token_sidecar, body_of([LIVE], []))
    assert status == 200
    before = token_sidecar.state.current()
    shadow = [LIVE[0], RETIRED[:2]]
    status, text = await put(http, token_sidecar, body_of([LIVE], [(0, shadow, 0, 100)]))
    assert status == 422
    (problem,) = AdminError.model_validate_json(text).error.problems
    assert problem.startswith("canaries[0] (route0): spec.targets[1].model: target 't1': model 'claude-sonnet-4-5' "
                              f"{RETIRED[2]}; current anthropic models include: claude-haiku-4-5")
    assert token_sidecar.state.current() is before


async def test_deprecation_warnings_are_in_the_success_answer(
        token_sidecar: Sidecar, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_LIFECYCLE_DATE, DAY.isoformat())
    status, text = await put(http, token_sidecar, body_of([[LIVE[1], DEPRECATED[:2]]], [(0, [DEPRECATED[:2]], 25, 0)]))
    assert status == 200
    answer = ConfigApplied.model_validate_json(text)
    assert answer.changed and answer.version == token_sidecar.state.current().version  # type: ignore[union-attr]
    assert [w.split(": target")[0] for w in answer.warnings] == [
        "body doc 1 (mr0): spec.targets[1].model", "canaries[0] (route0): spec.targets[0].model"]
    assert all(f"model 'gpt-4o-mini' {DEPRECATED[2]}" in w for w in answer.warnings)
    status, text = await put(http, token_sidecar, body_of([LIVE], []))
    assert status == 200 and ConfigApplied.model_validate_json(text).warnings == []
