"""The per-target param filter: what is dropped, from where, and that rule-free targets get none."""

from __future__ import annotations

from typing import Any

from modelroute.api.v1alpha1 import Params, Target
from modelroute.sidecar.translate.accepts import param_filter


def t(provider: str = "anthropic", model: str = "claude-haiku-4-5", **extra: Any) -> Target:
    return Target.model_validate({"name": "t", "provider": provider, "model": model, "apiKey": {"env": "K"}, **extra})


REQ: dict[str, Any] = {"model": "r", "messages": [{"role": "user", "content": "x"}]}


def test_targets_without_rules_get_no_filter() -> None:
    assert param_filter(t("openai-compatible", "llama"), Params(temperature=0.2)) is None
    assert param_filter(t("gemini", "gemini-2.5-flash"), None) is None
    assert param_filter(t(model="claude-3-5-haiku", apiVersion="2023-06-01"), None) is None


def test_app_params_are_stripped_and_the_input_is_not_mutated() -> None:
    f = param_filter(t(), Params(max_tokens=9))
    assert f is not None
    req = {**REQ, "temperature": 0.7, "top_p": 0.9, "stop": ["s"]}
    out, params = f.strip(req)
    assert f.dropped(req) == ("temperature", "top_p")
    assert out == {**REQ, "stop": ["s"]} and req["temperature"] == 0.7
    assert params == Params(max_tokens=9)
    untouched, _ = f.strip(REQ)
    assert untouched is REQ and f.dropped(REQ) == ()


def test_route_params_dropped_by_policy_leave_the_params_once_at_compile_time() -> None:
    f = param_filter(t(), Params(temperature=0.1, max_tokens=5))
    assert f is not None and f.route_dropped == ("temperature",)
    assert f.params == Params(max_tokens=5)
    out, _ = f.strip({**REQ, "temperature": 0.4})
    assert "temperature" not in out and f.dropped(REQ) == ("temperature",)


def test_in_an_exclusive_pair_the_routes_param_wins() -> None:
    legacy = t(apiVersion="2023-06-01")
    by_route_top_p = param_filter(legacy, Params(top_p=0.5))
    assert by_route_top_p is not None and by_route_top_p.dropped({**REQ, "temperature": 0.2}) == ("temperature",)
    by_app = param_filter(legacy, None)
    assert by_app is not None and by_app.dropped({**REQ, "temperature": 0.2, "top_p": 0.5}) == ("top_p",)


def test_value_rules_look_at_the_value() -> None:
    f = param_filter(t("openai", "o4-mini"), None)
    assert f is not None
    assert f.dropped({**REQ, "temperature": 1}) == ()
    assert f.dropped({**REQ, "temperature": 0}) == ("temperature",)


def test_openai_targets_drop_only_top_k() -> None:
    # OpenAI has no top_k and refuses it ("Unrecognized request argument supplied: top_k"): dropped and reported.
    f = param_filter(t("openai", "gpt-4o-mini"), Params(temperature=0.2))
    assert f is not None
    req = {**REQ, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "max_tokens": 5}
    assert f.dropped(req) == ("top_k",)
    assert f.strip(req)[0] == {**REQ, "temperature": 0.7, "top_p": 0.9, "max_tokens": 5}
    assert f.dropped({**REQ, "temperature": 0.7}) == ()


def _full_dropped(f: Any, request: dict[str, Any]) -> tuple[str, ...]:
    """What ``dropped`` answered before its shortcut: every ruled app param the route does not set, checked."""
    from modelroute.api.v1alpha1.capabilities import RULED, param_values

    route = param_values(f.params)
    values = {**route, **{p: request[p] for p in RULED if p not in route and request.get(p) is not None}}
    app = {u.param for u in f.rules.unsupported(values, keep=frozenset(param_values(f.params)) | set(f.route_dropped))}
    return tuple(p for p in RULED if p in f.route_dropped or p in app)


def test_the_shortcut_on_params_the_rules_never_name_changes_no_answer() -> None:
    import itertools

    targets = [t(), t(model="claude-sonnet-4-6", apiVersion="2023-06-01"), t(model="claude-opus-4-1", apiVersion="2023-06-01"),
               t("openai", "gpt-4o-mini"), t("openai", "o3-mini")]
    app_values = {"temperature": 0.5, "top_p": 0.9, "top_k": 5, "stop": ["x"], "max_tokens": 7}
    for target, params in itertools.product(targets, [None, Params(temperature=1.0), Params(top_p=0.5, max_tokens=3)]):
        f = param_filter(target, params)
        if f is None:
            continue
        for n in range(len(app_values) + 1):
            for keys in itertools.combinations(app_values, n):
                req = {**REQ, **{k: app_values[k] for k in keys}}
                assert f.dropped(req) == _full_dropped(f, req), (target.model, params, keys)
