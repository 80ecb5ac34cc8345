"""Real adapters: a ``bound`` view shares its adapter's SDK client, and only the owner closes it."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1.spec import Params, Provider, Target
from modelroute.sidecar.observe import NullObserver
from modelroute.sidecar.providers.base import build_adapter
from modelroute.sidecar.runtime import Runtime, RuntimeHolder

URL = "http://127.0.0.1:9/v1"  # never called: nothing here sends a request


def target(provider: Provider) -> Target:
    return Target.model_validate({"name": "t", "provider": provider.value, "model": "m", "baseUrl": URL,
                                  "apiKey": {"env": "K"}})


@pytest.mark.parametrize("provider", [Provider.OPENAI, Provider.ANTHROPIC])
async def test_a_stainless_view_shares_the_client_and_only_the_owner_closes_it(provider: Provider) -> None:
    base: Any = build_adapter(target(provider), lambda: "k", params=Params(temperature=0.1), system="a")
    view: Any = base.bound(Params(temperature=0.9), "b")
    assert view._client is base._client and view._options is base._options
    assert (view._params.temperature, view._system) == (0.9, "b")
    assert (base._params.temperature, base._system) == (0.1, "a")  # the owner is unchanged
    await view.aclose()
    assert not base._client.is_closed()
    await base.aclose()
    assert base._client.is_closed()


async def test_a_gemini_view_shares_the_lazily_created_client() -> None:
    base: Any = build_adapter(target(Provider.GEMINI), lambda: "k")
    view: Any = base.bound(None, "b")  # made before the client exists
    aio = view._aio()
    assert base._aio() is aio  # one client, created once for both
    session = base._conn._session
    await view.aclose()
    assert not session.closed
    await base.aclose()
    assert session.closed


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
    client = new_adapter._client
    assert client is old_adapter._client  # the same SDK client object (and connection pool)
    await old.drained()
    await old.aclose()
    assert not client.is_closed()  # the new runtime still uses it
    await holder.aclose()
    assert client.is_closed()  # closed once both runtimes are closed


async def test_rate_limit_headers_are_hooked_once_per_client_across_prompt_changes() -> None:
    from modelroute.sidecar.reflexive import Reflexive

    def limited(system: str) -> SidecarConfig:
        cfg = config(system).model_dump(by_alias=True, mode="json")
        cfg["routes"][0]["spec"]["targets"][0]["limits"] = {"requestsPerMinute": 60}
        return SidecarConfig.model_validate(cfg)

    reflexive = Reflexive()
    old = Runtime.build(limited("one"), lambda t: (lambda: "k"), NullObserver())
    reflexive.compile(old)
    new = Runtime.build(limited("two"), lambda t: (lambda: "k"), NullObserver(), previous=old)
    reflexive.compile(new)
    adapter: Any = new.routes["chat"].targets[0].adapter
    hooks = adapter._client._client.event_hooks["response"]
    assert len(hooks) == 1  # one observer on the one shared client, not one per config
    await old.aclose()
    await new.aclose()
