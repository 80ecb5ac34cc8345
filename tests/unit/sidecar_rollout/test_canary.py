"""Variant choice (weights, sticky keys), canary validation and compiling canaries into the runtime."""

from __future__ import annotations

import random
from typing import Any

import pytest

from modelroute.api.config import CanaryServing, SidecarConfig
from modelroute.api.v1alpha1.strategy import variant_for
from modelroute.sidecar.config import loader
from modelroute.sidecar.config.loader import canary_problems
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.metrics.stats import Stats
from modelroute.sidecar.routing.canary import Canary
from modelroute.sidecar.routing.observer import NullObserver
from modelroute.sidecar.routing.runtime import Runtime

from .conftest import ENV, FakeAdapters, config, spec


def _canary(weight: int, mirror: int = 0, sticky: str | None = None) -> Canary:
    rt = Runtime.build(config(weight=weight, mirror=mirror, sticky=sticky), lambda t: None, Stats(), adapters=FakeAdapters())
    c = rt.routes["classify"].canary
    assert c is not None
    return c


@pytest.mark.parametrize("weight", [5, 25, 50])
def test_random_split_follows_the_weight(adapters: FakeAdapters, weight: int) -> None:
    c = _canary(weight)
    rng = random.Random(7)
    n = 20_000
    canary = sum(c.pick({}, rng.random) == "canary" for _ in range(n))
    assert abs(canary / n - weight / 100) < 0.015


def test_weight_0_and_100_never_draw(adapters: FakeAdapters) -> None:
    def boom() -> float:
        raise AssertionError("no draw expected")

    assert _canary(0).pick({"x-user-id": "u"}, boom) == "stable"
    assert _canary(100).pick({"x-user-id": "u"}, boom) == "canary"


def test_sticky_header_pins_each_key_to_the_shared_assignment(adapters: FakeAdapters) -> None:
    c = _canary(30, sticky="x-user-id")

    def boom() -> float:
        raise AssertionError("a sticky request must not draw")

    keys = [f"user-{i}" for i in range(2000)]
    picks = {k: c.pick({"x-user-id": k}, boom) for k in keys}
    assert picks == {k: variant_for(k, c.revision, 30) for k in keys}   # the same on every pod and process
    share = sum(v == "canary" for v in picks.values()) / len(keys)
    assert 0.25 < share < 0.35
    # A request without the header (or with an empty one) is split at random.
    assert c.pick({}, lambda: 0.0) == "canary" and c.pick({"x-user-id": ""}, lambda: 0.99) == "stable"


def test_mirror_draw(adapters: FakeAdapters) -> None:
    assert not _canary(0, mirror=0).mirrors(lambda: 0.0)
    assert _canary(0, mirror=100).mirrors(lambda: 0.999)
    c = _canary(0, mirror=10)
    assert c.mirrors(lambda: 0.05) and not c.mirrors(lambda: 0.2)


def test_build_compiles_live_and_mirror_runtimes(adapters: FakeAdapters) -> None:
    stats = Stats()
    cfg = config(weight=10, mirror=50, sticky="x-user-id", run="abc.1")
    rt = Runtime.build(cfg, lambda t: None, stats, adapters=adapters)
    stable = rt.routes["classify"]
    c = stable.canary
    assert c is not None and (c.weight, c.mirror, c.run_id, c.sticky_header) == (10, 50, "abc.1", "x-user-id")
    assert stable.variant == "stable" and c.route.variant == "canary" and c.mirror_route.variant == "mirror"
    assert c.route.revision == c.mirror_route.revision == cfg.canaries[0].revision != stable.revision
    assert [t.name for t in c.route.targets] == ["new"]
    assert c.route.targets == c.mirror_route.targets          # one adapter and breaker set for both
    assert c.route.observer is stats                          # live canary answers are inbound requests
    assert isinstance(c.mirror_route.observer, NullObserver)  # mirror copies are not
    assert c.route.canary is None and list(rt.routes) == ["classify"]


def test_canary_with_the_same_target_shares_adapter_and_breaker(adapters: FakeAdapters) -> None:
    cfg = config(weight=10)
    same = cfg.routes[0].spec.model_copy(update={"timeout_seconds": 9})
    cfg = SidecarConfig(routes=cfg.routes, canaries=[cfg.canaries[0].model_copy(update={"spec": same})])
    rt = Runtime.build(cfg, lambda t: None, Stats(), adapters=adapters)
    stable = rt.routes["classify"]
    assert stable.canary is not None
    assert stable.canary.route.targets[0].adapter is stable.targets[0].adapter
    assert stable.canary.route.targets[0].breaker is stable.targets[0].breaker


def test_a_route_without_canary_compiles_as_before(adapters: FakeAdapters) -> None:
    rt = Runtime.build(config(with_canary=False), lambda t: None, Stats(), adapters=adapters)
    r = rt.routes["classify"]
    assert r.canary is None and r.variant == "stable" and r.tracer is None and len(r.revision) == 12


def _canary_entry(**kw: Any) -> CanaryServing:
    base: dict[str, Any] = {"route": "classify", "revision": "r1", "run_id": "r1.0", "spec": spec("classify", "new", "gpt-4.1-mini", key="KEY_B")}
    base.update(kw)
    return CanaryServing(**base)


def test_canary_problems_are_reported_with_their_place() -> None:
    cfg = config(with_canary=False)
    bad = SidecarConfig(routes=cfg.routes, canaries=[
        _canary_entry(route="nope", spec=spec("nope", "n", "m")),
        _canary_entry(spec=spec("other", "n", "m")),
        _canary_entry(),
        _canary_entry(spec=spec("classify", "n", "m", key="MISSING_KEY")),
    ])
    found = canary_problems(bad, KeyResolver(environ=ENV))
    text = "\n".join(found)
    assert "canaries[0] (nope): route: no route 'nope'" in text
    assert "canaries[1] (classify): spec.route: is 'other'" in text
    assert "canaries[2] (classify): route: route 'classify' already has a canary" in text
    assert "canaries[3] (classify): spec.targets[0].apiKey.env:" in text and "MISSING_KEY" in text
    # PUT /config and the bundle go through loader.problems: the canary problems are part of it.
    assert set(found) <= set(loader.problems(bad, KeyResolver(environ=ENV)))
    assert canary_problems(config(weight=5), KeyResolver(environ=ENV)) == []


async def test_an_invalid_canary_is_rejected_and_the_old_config_keeps_serving(
        adapters: FakeAdapters) -> None:
    from modelroute.sidecar.config.loader import ConfigError
    from modelroute.sidecar.server.state import SidecarState

    state = SidecarState(keys=KeyResolver(environ=ENV), adapters=adapters)
    await state.apply(config(weight=5), source="file")
    before = state.current()
    cfg = config(with_canary=False)
    with pytest.raises(ConfigError):
        await state.apply(SidecarConfig(routes=cfg.routes, canaries=[_canary_entry(route="nope")]), source="push")
    assert state.current() is before
    await state.aclose()
