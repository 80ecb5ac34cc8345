"""Retired and retiring model ids: one table (``ProviderSpec.retirements``), copied from the pinned SDKs."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import anthropic
import openai
import pytest

from modelroute.api.v1alpha1 import Target
from modelroute.api.v1alpha1.providers import PROVIDERS, Provider, spec_of
from modelroute.api.v1alpha1.registry import ModelRegistry, lifecycle_notes

TODAY = date(2026, 12, 6)
REGISTRY = ModelRegistry()


def target(provider: str, model: str) -> Target:
    return Target.model_validate({"name": "t", "provider": provider, "model": model, "apiKey": {"env": "K"}})


def _openai_sdk_table() -> dict[str, date | None]:
    """ChatModel's "Deprecated values" docstring in the installed openai SDK, parsed."""
    text = (Path(openai.__file__).parent / "types" / "shared" / "chat_model.py").read_text()
    table: dict[str, date | None] = {}
    for item in text.split('"""Deprecated values:', 1)[1].split("\n- ")[1:]:
        ids = re.findall(r'"([^"]+)"', item.split(":", 1)[0])
        found = re.search(r"shutdown\s+date:\s+(\d{4}-\d{2}-\d{2})", item)
        if found is None:
            assert "Not a supported model ID" in item, item
        for model in ids:
            table[model] = date.fromisoformat(found.group(1)) if found else None
    return table


def _anthropic_sdk_table() -> dict[str, date]:
    from anthropic._data import DEPRECATED_MODELS

    def day(text: str) -> date:  # "November 30th, 2026"
        month, dd, year = re.sub(r"(\d)(st|nd|rd|th),", r"\1", text).split()
        return date(int(year), ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                                "October", "November", "December"].index(month) + 1, int(dd))

    return {model: day(text) for model, text in DEPRECATED_MODELS.items()}


def test_the_table_is_what_the_pinned_sdks_say() -> None:
    # A pin bump that changes either SDK's table fails here until providers.py follows (and its source strings).
    assert (openai.__version__, anthropic.__version__) == ("3.57.0", "2.13.0"), (
        "a pin moved: re-copy the deprecation tables into providers.py (_OPENAI_RETIREMENTS, _ANTHROPIC_RETIREMENTS), "
        "with the new versions in their source strings, and update the versions here")
    ours = {p: {m: r.shutdown for m, r in spec_of(p).retirements.items()} for p in (Provider.OPENAI, Provider.ANTHROPIC)}
    assert ours[Provider.OPENAI] == _openai_sdk_table()
    assert ours[Provider.ANTHROPIC] == _anthropic_sdk_table() | DOCUMENTED
    assert all(r.source.startswith(("openai SDK 3.57.0", "anthropic SDK 2.13.0")) if m not in DOCUMENTED
               else r.source.startswith("Anthropic's model deprecations page, https://")
               for s in PROVIDERS.values() for m, r in s.retirements.items())


# The pinned anthropic SDK no longer carries Claude Haiku 3.5: its date is from Anthropic's deprecations page.
DOCUMENTED = {"claude-3-5-haiku": date(2026, 2, 19), "claude-3-5-haiku-20241022": date(2026, 2, 19)}


def test_dates_from_the_providers_pages_are_only_for_ids_the_pinned_sdk_does_not_carry() -> None:
    # A pin bump whose SDK marks one of them fails here: its table is then the source, and the entry goes.
    from anthropic._data import DEPRECATED_MODELS

    assert not DOCUMENTED.keys() & DEPRECATED_MODELS.keys()


@pytest.mark.parametrize("model", ["claude-3-5-haiku", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"])
def test_claude_haiku_3_5_is_retired_known_and_no_longer_built_in(model: str) -> None:
    problem = REGISTRY.lifecycle_problem(target("anthropic", model), TODAY)
    assert problem is not None and f"model {model!r} was retired by anthropic on 2026-02-19: every call to it fails" in problem
    assert "current anthropic models include: claude-haiku-4-5" in problem
    assert "model-deprecations (Claude Haiku 3.5)" in problem  # the source, so a reader can re-check it
    assert REGISTRY.lifecycle_problem(target("anthropic", model), date(2026, 2, 18)) is None
    assert REGISTRY.problem(target("anthropic", model)) is None  # still known: configs already accepted keep loading
    anthropic_spec = spec_of(Provider.ANTHROPIC)
    assert "claude-3-5-haiku" not in (*anthropic_spec.models, *anthropic_spec.prices, *anthropic_spec.windows)


def test_the_built_in_current_models_name_nothing_retired_by_today() -> None:
    for p, s in PROVIDERS.items():
        for model in (*s.models, *s.prices, *s.windows):
            assert REGISTRY.lifecycle_problem(target(p.value, model), TODAY) is None, (p, model)


@pytest.mark.parametrize(("provider", "model", "day"), [
    ("anthropic", "claude-sonnet-4-5", "2026-11-30"),
    ("anthropic", "claude-sonnet-4-5-20250929", "2026-11-30"),
    ("openai", "o4-mini", "2026-10-23"),
    ("openai", "gpt-4.1-nano-2025-04-14", "2026-10-23"),
    ("openai", "gpt-4o-2024-05-13", "2026-10-23"),  # listed itself: its base gpt-4o retires later
])
def test_a_retired_model_is_an_error_naming_it_and_the_date(provider: str, model: str, day: str) -> None:
    problem = REGISTRY.lifecycle_problem(target(provider, model), TODAY)
    assert problem is not None and f"model {model!r} was retired by {provider} on {day}: every call to it fails" in problem
    assert REGISTRY.lifecycle_warning(target(provider, model), TODAY) is None
    assert REGISTRY.problem(target(provider, model)) is None  # still a known id: accepted configs keep loading


def test_a_model_with_a_shutdown_ahead_is_a_warning_with_the_days_left() -> None:
    t = target("openai", "gpt-4o-mini-2024-07-18")
    assert REGISTRY.lifecycle_problem(t, TODAY) is None
    warning = REGISTRY.lifecycle_warning(t, TODAY)
    assert warning is not None and "is deprecated by openai and shuts down on 2027-01-14, after which every call to it fails" in warning
    assert "current openai models include: gpt-5.4, gpt-5.4-mini, gpt-5.5" in warning
    assert REGISTRY.lifecycle_problem(t, date(2027, 1, 14)) is not None  # on the day, it is retired


def test_an_id_the_provider_never_served_is_an_error() -> None:
    problem = REGISTRY.lifecycle_problem(target("openai", "gpt-5.1-mini"), TODAY)
    assert problem is not None and "'gpt-5.1-mini' is not a model openai serves" in problem


def test_models_without_an_announcement_and_other_providers_say_nothing() -> None:
    for provider, model in (("openai", "gpt-5.4-mini"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-flash"),
                            ("openai-compatible", "o4-mini")):
        t = target(provider, model) if provider != "openai-compatible" else Target.model_validate(
            {"name": "t", "provider": provider, "model": model, "baseUrl": "http://127.0.0.1:9/v1"})
        assert lifecycle_notes([("here", t)], REGISTRY, TODAY) == ([], []), (provider, model)


def test_unknown_id_hints_leave_retired_ids_out() -> None:
    problem = REGISTRY.problem(target("anthropic", "claude-sonet-4-6"))
    assert problem is not None and "claude-sonnet-4-6" in problem and "claude-sonnet-4-5" not in problem


REPO = Path(__file__).resolve().parents[3]
_MODEL_FIELD = re.compile(r"""["']?\bmodel["']?:\s*["']?([A-Za-z0-9][A-Za-z0-9._/-]*)""")


def _copied_texts() -> dict[str, str]:
    """What a person copies a config from: the example files and the YAML blocks of the README and docs."""
    texts = {str(p.relative_to(REPO)): p.read_text() for p in sorted(
        [*(REPO / "examples").rglob("*.yaml"), *(REPO / "charts" / "modelroute" / "examples").glob("*.yaml"),
         REPO / "charts" / "modelroute" / "values.yaml"])}
    for doc in [REPO / "README.md", REPO / "charts" / "modelroute" / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        blocks = re.findall(r"```ya?ml\n(.*?)```", doc.read_text(), flags=re.S)
        texts[str(doc.relative_to(REPO))] = "\n".join(blocks)
    return texts


def test_the_examples_and_docs_name_no_model_with_an_announced_shutdown() -> None:
    # A model with a shutdown date (even one ahead) in an example is a config that stops loading on that day.
    found = {(name, m) for name, text in _copied_texts().items() for m in _MODEL_FIELD.findall(text)}
    assert {("examples/standalone/routes.yaml", "gpt-5.4-mini"), ("README.md", "claude-haiku-4-5"),
            ("docs/responses-api.md", "gpt-5.4-mini")} <= found  # the scan reads what it should
    dated = sorted((name, m) for name, m in found for p in (Provider.OPENAI, Provider.ANTHROPIC)
                   if REGISTRY.retirement(p, m) is not None)
    assert dated == []
