"""The operator refuses unknown model ids, as the sidecars do, before anything is pushed."""

from __future__ import annotations

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
