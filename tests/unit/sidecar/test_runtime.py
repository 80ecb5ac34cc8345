"""Compiling a config into a Runtime, and the atomic swap with drain-then-close."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1.spec import Params, Target
from modelroute.sidecar.routing import router, runtime
from modelroute.sidecar.routing.runtime import NotReady, Runtime, RuntimeHolder

from .fakes import FakeAdapter, FakeView, Recorder

built: list[FakeAdapter] = []


def fake_build(target: Target, key: Any, *, params: Params | None = None, system: str | None = None) -> FakeAdapter:
    a = FakeAdapter(target)
    a.key = key  # type: ignore[attr-defined]
    built.append(a)  # one per SDK client the runtime would build
    return a


@pytest.fixture(autouse=True)
def _fresh() -> None:
    built.clear()


def build(config: SidecarConfig, key_for: runtime.KeyFor, observer: Any, **kw: Any) -> Runtime:
    """``Runtime.build`` with the fake adapter factory."""
    return Runtime.build(config, key_for, observer, adapters=fake_build, **kw)


def config(*routes: tuple[str, list[str]], temperature: float = 0.1, system: str = "label it",
           model: str = "m") -> SidecarConfig:
    docs = []
    for name, targets in routes:
        docs.append({
            "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": f"mr-{name}"},
            "spec": {
                "route": name,
                "targets": [{"name": t, "provider": "openai", "model": f"{model}-{t}", "apiKey": {"env": "K"}}
                            for t in targets],
                "params": {"temperature": temperature, "maxTokens": 64},
                "prompt": {"version": "v3", "system": system},
            },
        })
    return SidecarConfig.model_validate({"routes": docs})


def key_for(target: Target) -> Any:
    return lambda: f"key-{target.name}"


def test_build_compiles_routes_in_order() -> None:
    cfg = config(("classify", ["a", "b"]), ("summarize", ["c"]))
    rt = build(cfg, key_for, Recorder())
    assert rt.version == cfg.hash
    assert set(rt.routes) == {"classify", "summarize"}
    route = rt.route("classify")
    assert route is not None
    assert [t.name for t in route.targets] == ["a", "b"]
    assert route.resource == "mr-classify" and route.prompt_version == "v3"
    view = route.targets[0].adapter
    assert isinstance(view, FakeView) and view.base is built[0]
    assert view.params is not None and view.params.temperature == 0.1 and view.params.max_tokens == 64
    assert view.system == "label it"
    assert built[0].key() == "key-a"  # type: ignore[attr-defined]
    assert rt.route("nope") is None


async def test_lease_swap_and_drain_then_close() -> None:
    holder = RuntimeHolder()
    with pytest.raises(NotReady), holder.lease():
        pass
    old = build(config(("classify", ["a"])), key_for, Recorder())
    holder.swap(old)
    old_adapter = built[-1]
    with holder.lease() as rt:
        assert rt is old
        new = build(config(("classify", ["a"]), model="m2"), key_for, Recorder(), previous=old)
        assert built[-1] is not old_adapter  # another model: another client
        holder.swap(new)
        assert holder.current is new
        with holder.lease() as rt2:
            assert rt2 is new  # new requests see the new config at once
        # No event to wait on for "not closed": give the retiring task time to (wrongly) close it.
        await asyncio.sleep(0.01)
        assert rt.inflight == 1
        assert not old_adapter.closed  # the request in flight still uses it
    await holder.retired()
    assert old_adapter.closed  # drained, then closed
    assert not built[-1].closed
    await holder.aclose()
    assert built[-1].closed


async def test_unchanged_targets_keep_adapter_and_breaker_across_a_swap() -> None:
    holder = RuntimeHolder()
    old = build(config(("classify", ["a", "b"])), key_for, Recorder())
    holder.swap(old)
    old_route = old.routes["classify"]
    old_route.targets[0].breaker.record_failure()
    new = build(config(("classify", ["a", "b"]), ("other", ["c"])), key_for, Recorder(), previous=old)
    assert len(built) == 3  # only "c" is new
    holder.swap(new)
    await holder.retired()
    route = new.routes["classify"]
    assert route.targets[0].adapter is old_route.targets[0].adapter
    assert route.targets[0].breaker is old_route.targets[0].breaker
    assert route.targets[0].breaker.consecutive_failures == 1
    assert not any(a.closed for a in built)  # still shared with the new runtime
    await holder.aclose()
    assert all(a.closed for a in built)


async def test_a_prompt_or_params_change_reuses_the_sdk_client_and_breaker() -> None:
    holder = RuntimeHolder()
    old = build(config(("classify", ["a"])), key_for, Recorder())
    holder.swap(old)
    client = built[0]
    old_target = old.routes["classify"].targets[0]
    old_target.breaker.record_failure()
    with holder.lease():  # a request in flight on the old runtime across the swap
        new = build(config(("classify", ["a"]), system="classify it", temperature=0.7), key_for, Recorder(),
                            previous=old)
        holder.swap(new)
        assert built == [client]  # no new SDK client
        view = new.routes["classify"].targets[0].adapter
        assert isinstance(view, FakeView) and view.base is client  # the same client, bound to the new prompt
        assert view.system == "classify it" and view.params is not None and view.params.temperature == 0.7
        assert old_target.adapter.system == "label it"  # type: ignore[attr-defined]  # the old view is untouched
        # The breaker tracks the provider's health, which a prompt edit does not change.
        assert new.routes["classify"].targets[0].breaker is old_target.breaker
        assert old_target.breaker.consecutive_failures == 1
    await holder.retired()  # the old runtime drained and closed: the client is still the new one's
    assert not client.closed
    await holder.aclose()
    assert client.closed  # closed once both runtimes are closed


async def test_a_client_closes_exactly_when_its_last_runtime_closes() -> None:
    first = build(config(("classify", ["a"])), key_for, Recorder())
    second = build(config(("classify", ["a"]), system="other"), key_for, Recorder(), previous=first)
    third = build(config(("classify", ["a"]), system="third"), key_for, Recorder(), previous=second)
    assert len(built) == 1
    await second.aclose()
    await second.aclose()  # idempotent: does not drop another runtime's reference
    await first.aclose()
    assert not built[0].closed
    await third.aclose()
    assert built[0].closed


async def test_a_failed_build_leaves_the_previous_runtime_owning_its_clients() -> None:
    old = build(config(("classify", ["a"])), key_for, Recorder())

    def broken(target: Target) -> Any:
        raise KeyError("missing key")

    with pytest.raises(KeyError):
        build(config(("classify", ["a"]), ("other", ["b"])), broken, Recorder(), previous=old)
    await old.aclose()
    assert built[0].closed


async def test_a_request_in_flight_finishes_on_its_runtime() -> None:
    holder = RuntimeHolder(build(config(("classify", ["a"])), key_for, Recorder()))
    started, gate = asyncio.Event(), asyncio.Event()
    first = built[-1]

    async def slow_complete(request: dict[str, Any], *, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        started.set()
        await gate.wait()
        return {"choices": [], "served_by": "old"}

    first.complete = slow_complete  # type: ignore[method-assign]

    async def request() -> str:
        with holder.lease() as rt:
            c = await router.complete(rt.routes["classify"], {"model": "classify", "messages": []})
            return str(c.response["served_by"])

    task = asyncio.create_task(request())
    await started.wait()
    holder.swap(build(config(("classify", ["z"])), key_for, Recorder(), previous=holder.current))
    gate.set()
    assert await task == "old"
    await holder.retired()
    assert first.closed
    await holder.aclose()


def test_sdks_are_imported_only_when_a_target_needs_them() -> None:
    code = """
import sys
from modelroute.api.config import SidecarConfig
from modelroute.sidecar.routing.runtime import Runtime
from modelroute.sidecar.routing.observer import NullObserver
cfg = SidecarConfig.model_validate({"routes": [{"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute",
    "metadata": {"name": "x"}, "spec": {"route": "r", "targets": [{"name": "a", "provider": "openai",
    "model": "gpt", "apiKey": {"env": "K"}}]}}]})
assert "openai" not in sys.modules
Runtime.build(cfg, lambda t: (lambda: "k"), NullObserver())
assert "openai" in sys.modules
assert "anthropic" not in sys.modules, "anthropic imported"
assert "google.genai" not in sys.modules, "google.genai imported"
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_a_sidecar_starts_without_what_only_later_requests_need() -> None:
    """Start-up cost (issue 15): OpenTelemetry without OTEL_* endpoints, PyYAML for a JSON config, the
    eval gate before a ``POST /eval`` and httpx2's sending stack (the SDK builder clients never send)
    are not imported by a sidecar that applies a JSON config, listens and builds a request."""
    code = """
import asyncio, sys
from modelroute.sidecar import cli  # noqa: F401  (what `modelroute sidecar` imports)
from modelroute.sidecar.config import loader
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.metrics import otelenv
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState

async def main():
    body = (b'{"routes": [{"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": "x"},'
            b' "spec": {"route": "r", "targets": [{"name": "a", "provider": "openai", "model": "gpt-4o-mini",'
            b' "baseUrl": "http://127.0.0.1:9/v1", "apiKey": {"env": "K"}}]}}]}')
    assert otelenv.endpoints({}) is None
    state = SidecarState(keys=KeyResolver())
    await state.apply(loader.checked(loader.parse_json_or_yaml(body, "body"), state.keys), source="push")
    sidecar = Sidecar(state, AuthSettings(operator_key=None, admin_token=None, pod=None),
                      listen=("127.0.0.1", 0), admin_listen=("127.0.0.1", 0))
    await sidecar.start()
    await sidecar.stop()
    loaded = [m for m in ("opentelemetry", "yaml", "modelroute.sidecar.server.evalgate", "httpcore2") if m in sys.modules]
    assert not loaded, loaded
    assert "openai" in sys.modules  # the adapter was built (and warmed: a request built)
    print("ok")

asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "K": "k"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
