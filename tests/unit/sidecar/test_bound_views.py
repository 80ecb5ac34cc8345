"""Real adapters: a ``bound`` view shares its adapter's SDK client and pool, and only the owner closes them."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1.spec import Params, Provider, Target
from modelroute.sidecar.providers.registry import build_adapter
from modelroute.sidecar.routing.observer import NullObserver
from modelroute.sidecar.routing.runtime import Runtime, RuntimeHolder

URL = "http://127.0.0.1:9/v1"  # never called: nothing here sends a request


def target(provider: Provider) -> Target:
    return Target.model_validate({"name": "t", "provider": provider.value, "model": "m", "baseUrl": URL,
                                  "apiKey": {"env": "K"}})


@pytest.mark.parametrize("provider", [Provider.OPENAI, Provider.ANTHROPIC, Provider.GEMINI])
async def test_a_view_shares_the_sdk_client_and_pool_and_only_the_owner_closes_it(provider: Provider) -> None:
    base: Any = build_adapter(target(provider), lambda: "k", params=Params(temperature=0.1), system="a")
    view: Any = base.bound(Params(temperature=0.9), "b")
    assert view.sdk is base.sdk and view.transport is base.transport
    assert (view._params.temperature, view._system) == (0.9, "b")
    assert (base._params.temperature, base._system) == (0.1, "a")  # the owner is unchanged
    session = view.transport._pool()  # the pool is created on first use, by whichever view sends first
    assert base.transport._pool() is session
    await view.aclose()
    assert not session.closed
    await base.aclose()
    assert session.closed and base.transport.closed


def config(system: str) -> SidecarConfig:
    return SidecarConfig.model_validate({"routes": [{
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "mr"},
        "spec": {"route": "chat", "targets": [{"name": "t", "provider": "openai", "model": "m", "baseUrl": URL,
                                                "apiKey": {"env": "K"}}],
                 "prompt": {"version": "v1", "system": system}},
    }]})


async def test_a_system_prompt_change_across_a_swap_keeps_the_sdk_client() -> None:
    holder = RuntimeHolder()
    old = Runtime.build(config("one"), lambda t: (lambda: "k"), NullObserver())
    holder.swap(old)
    new = Runtime.build(config("two"), lambda t: (lambda: "k"), NullObserver(), previous=old)
    holder.swap(new)
    old_adapter: Any = old.routes["chat"].targets[0].adapter
    new_adapter: Any = new.routes["chat"].targets[0].adapter
    assert new_adapter is not old_adapter and new_adapter._system == "two" and old_adapter._system == "one"
    assert new_adapter.sdk is old_adapter.sdk  # the same SDK client object
    transport = new_adapter.transport
    assert transport is old_adapter.transport  # and the same connection pool
    session = transport._pool()
    await old.drained()
    await old.aclose()
    assert not session.closed  # the new runtime still uses it
    await holder.aclose()
    assert session.closed  # closed once both runtimes are closed


async def test_rate_limit_headers_are_hooked_once_per_client_across_prompt_changes() -> None:
    from modelroute.sidecar.pipeline.compiler import Planner

    def limited(system: str) -> SidecarConfig:
        cfg = config(system).model_dump(by_alias=True, mode="json")
        cfg["routes"][0]["spec"]["targets"][0]["limits"] = {"requestsPerMinute": 60}
        return SidecarConfig.model_validate(cfg)

    planner = Planner()
    old = Runtime.build(limited("one"), lambda t: (lambda: "k"), NullObserver(), pipeline=planner.compiler())
    new = Runtime.build(limited("two"), lambda t: (lambda: "k"), NullObserver(), previous=old, pipeline=planner.compiler())
    adapter: Any = new.routes["chat"].targets[0].adapter
    assert adapter.transport.observers == ("limits",)  # one observer on the one shared pool, not one per config
    await old.aclose()
    await new.aclose()
