"""The operator refuses unknown model ids, as the sidecars do, before anything is pushed."""

from __future__ import annotations

from datetime import UTC, datetime

from modelroute.operator.validation import validate


def raw(model: str) -> dict[str, object]:
    return {
        "apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute",
        "metadata": {"name": "r", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": {"route": "classify", "targets": [{"name": "t", "provider": "openai", "model": model, "apiKey": {"env": "K"}}]},
    }


def test_known_model_is_valid() -> None:
    assert validate(raw("gpt-4o-mini"), {}).valid


def test_unknown_model_is_invalid_with_the_field_path() -> None:
    v = validate(raw("gpt-4o-minii"), {})
    assert not v.valid
    assert v.problems[0].startswith("spec.targets[0].model: ")
    assert "gpt-4o-minii" in v.problems[0]


def test_secret_that_could_not_be_read_is_not_checked() -> None:
    r = raw("gpt-4o-mini")
    r["spec"]["targets"][0]["apiKey"] = {"secretKeyRef": {"name": "keys", "key": "openai"}}  # type: ignore[index]
    assert validate(r, {}).valid  # unreadable (RBAC): left to the sidecar
    assert not validate(r, {"keys": None}).valid  # read, and absent
    assert not validate(r, {"keys": {"other"}}).valid  # read, key missing


def test_route_params_the_target_refuses_are_invalid_with_the_ways_out() -> None:
    r = raw("gpt-4o-mini")
    r["spec"]["targets"] = [{"name": "haiku", "provider": "anthropic", "model": "claude-haiku-4-5", "apiKey": {"env": "K"}}]  # type: ignore[index]
    r["spec"]["params"] = {"temperature": 0.1}  # type: ignore[index]
    v = validate(r, {})
    assert not v.valid
    (problem,) = v.problems
    assert problem.startswith("spec.params.temperature: target 'haiku' (anthropic claude-haiku-4-5, apiVersion 2026-10-21)")
    assert "apiVersion: '2023-06-01'" in problem and "unsupportedParams: drop" in problem
    r["spec"]["unsupportedParams"] = "drop"  # type: ignore[index]
    assert validate(r, {}).valid
    r["spec"].pop("unsupportedParams")  # type: ignore[attr-defined]
    r["spec"]["targets"][0]["apiVersion"] = "2023-06-01"  # type: ignore[index]
    assert validate(r, {}).valid


def test_an_invalid_route_params_status_says_why() -> None:
    from modelroute.operator.status import compute

    r = raw("gpt-5.4-mini")
    r["spec"]["params"] = {"temperature": 0.2}  # type: ignore[index]
    v = validate(r, {})
    st = compute(v, None, [], None, datetime(2026, 11, 24, tzinfo=UTC))
    ready = next(c for c in st.conditions if c.type == "Ready")
    assert ready.reason == "InvalidSpec" and "only the default temperature" in ready.message



def test_a_when_no_request_can_meet_in_the_models_window_is_invalid() -> None:
    r = raw("gpt-4o-mini")
    r["spec"]["targets"][0]["when"] = {"minInputTokens": 128_000}  # type: ignore[index]
    v = validate(r, {})
    assert not v.valid and v.problems == (
        "spec.targets[0].when: target 't': when.minInputTokens 128000 is not below the 128000-token context window of "
        "gpt-4o-mini: no request could ever be sent to it",)
    r["spec"]["targets"][0]["when"] = {"minInputTokens": 100_000}  # type: ignore[index]
    assert validate(r, {}).valid


def test_a_retired_model_is_refused_naming_the_model_and_its_date() -> None:
    r = raw("gpt-4o-mini")
    r["spec"]["targets"] = [{"name": "sonnet", "provider": "anthropic", "model": "claude-sonnet-4-5", "apiKey": {"env": "K"}}]  # type: ignore[index]
    v = validate(r, {}, today=datetime(2026, 12, 6, tzinfo=UTC).date())
    assert not v.valid
    (problem,) = v.problems
    assert problem.startswith("spec.targets[0].model: target 'sonnet': model 'claude-sonnet-4-5' was retired by anthropic "
                              "on 2026-11-30: every call to it fails; current anthropic models include: ")
    assert "claude-sonnet-4-6" in problem and "anthropic SDK 2.13.0" in problem
    # The day before its shutdown it is a warning, and the route is valid.
    before = validate(r, {}, today=datetime(2026, 11, 29, tzinfo=UTC).date())
    assert before.valid and "shuts down on 2026-11-30, after which" in before.warnings[0]
