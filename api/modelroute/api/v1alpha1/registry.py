"""Proposed API: the registry of model ids a target may name, per provider.

A typo in a model id (``gpt-4o-mni``) otherwise shows up as a 404 from the provider at
request time, on the primary target, under load. With the registry it is a config error
with a clear message when the config is validated: at sidecar start, on ``PUT /config``
and in the operator's status. The built-in list holds current small and mid-size models;
the config extends it (or replaces it with ``includeDefaults: false``).

Matching: an id is allowed when it is listed, or when it is a listed id plus a version
suffix (``claude-haiku-4-5-20251001``, ``gpt-4o-mini-2024-07-18``, ``gemini-2.5-flash-001``,
``...-preview-05-20``, ``...-latest``). Gemini ids may carry the ``models/`` prefix.
Providers whose spec says ``checks_models=False`` (``openai-compatible``: self-hosted servers,
any model name) are not checked unless the registry lists models for that provider. Which request params each provider,
API version and model accepts is the registry's capability table, ``capabilities.py``.

Retired models (``ProviderSpec.retirements``, dates copied from the pinned SDKs' deprecation tables): a
model past its shutdown date fails every call, so naming one in a config a person writes (YAML files,
an admin ``PUT /config``) or in a ModelRoute the operator validates is an error naming the model and the
date; a model with a shutdown date still ahead is a warning. Configs the operator has already accepted
(pushes, route bundles) are not refused for a date that passed since: the operator's status says it,
and the sidecar keeps serving the rest of the route. Retired ids stay known to the registry for that.

Context windows: each model's window and output limit come from the provider's spec
(``ProviderSpec.windows``, documented figures) and ``windows`` here overrides or adds to them
(a fine-tuned or self-hosted model, a changed limit). ``window`` is looked up once per target
when a config is compiled (``docs/context-windows.md``), never per request.
"""


import re
from collections.abc import Iterable, Mapping
from datetime import date
from typing import TypeVar

from pydantic import Field

from modelroute.api.v1alpha1.base import ApiModel
from modelroute.api.v1alpha1.providers import PROVIDERS, Retirement, Window, spec_of
from modelroute.api.v1alpha1.spec import Provider, Target

DEFAULT_MODELS: dict[Provider, tuple[str, ...]] = {
    p: (*s.models, *s.embedding_models, *s.retirements) for p, s in PROVIDERS.items() if s.models or s.embedding_models}
"""The built-in model ids per provider (``providers.ProviderSpec.models``, ``embedding_models`` and the retired or
retiring ids, which stay known so that a config already accepted keeps loading; ``lifecycle_problem`` refuses them)."""

_T = TypeVar("_T")

# A version suffix after a listed id: a date, a revision number, preview/exp/latest tags.
_SUFFIX = re.compile(r"^(-(\d{8}|\d{4}-\d{2}-\d{2}|\d{3}|latest|preview|exp)(-[0-9]{2}-[0-9]{2}|-\d{2}|-\d{4})*)+$")


class ProviderModels(ApiModel):
    """Model ids allowed for one provider, in addition to (or instead of) the built-in list."""

    provider: Provider = Field(description="The provider these model ids belong to.")
    models: list[str] = Field(description="Allowed model ids (a listed id also allows its dated versions).", min_length=1, max_length=1000)


class ModelWindow(ApiModel):
    """One model's context window and output limit, overriding (or adding to) the built-in table."""

    provider: Provider = Field(description="The provider the model belongs to.")
    model: str = Field(description="Model id (also covers its dated versions).", min_length=1, max_length=200)
    context_window: int = Field(description="Tokens the model holds, input and output together.", ge=1, le=100_000_000)
    max_output_tokens: int = Field(description="The most output tokens one request may ask for.", ge=1, le=100_000_000)


class ModelRegistry(ApiModel):
    """Which model ids targets may name; checked when a config is validated, never at request time."""

    include_defaults: bool = Field(default=True, description="Start from modelroute's built-in list of current models.")
    models: list[ProviderModels] = Field(default_factory=lambda: [], description="Further allowed model ids, per provider.", max_length=16)
    windows: list[ModelWindow] = Field(
        default_factory=lambda: [], max_length=1000,
        description="Context windows and output limits of models, overriding the built-in table (a model with no "
                    "known window is not checked before the call).",
    )

    def window(self, provider: Provider, model: str) -> Window | None:
        """The window of ``model`` (or of the listed id it is a dated version of), or None when unknown."""
        table: dict[str, Window] = dict(spec_of(provider).windows) if self.include_defaults else {}
        for w in self.windows:
            if w.provider is provider:
                table[w.model] = Window(w.context_window, w.max_output_tokens)
        return _lookup(table, model)

    def retirement(self, provider: Provider, model: str) -> Retirement | None:
        """The provider's announced shutdown of ``model`` (or of the listed id it is a dated version of), or None."""
        return _lookup(spec_of(provider).retirements, model)

    def lifecycle_problem(self, target: Target, today: date) -> str | None:
        """Why the target's model can take no call any more (retired on or before ``today``), or None."""
        r = self.retirement(target.provider, target.model)
        if r is None or (r.shutdown is not None and r.shutdown > today):
            return None
        what = (f"was retired by {target.provider.value} on {r.shutdown.isoformat()}: every call to it fails"
                if r.shutdown is not None else f"is not a model {target.provider.value} serves (its SDK keeps the id "
                                               "for compatibility only)")
        return f"target {target.name!r}: model {target.model!r} {what}{self._current(target)} (source: {r.source})"

    def lifecycle_warning(self, target: Target, today: date) -> str | None:
        """A warning when the target's model has an announced shutdown still ahead of ``today``, or None."""
        r = self.retirement(target.provider, target.model)
        if r is None or r.shutdown is None or r.shutdown <= today:
            return None
        # No "in N days": the operator's condition and its one Warning event must not change every day.
        return (f"target {target.name!r}: model {target.model!r} is deprecated by {target.provider.value} and shuts "
                f"down on {r.shutdown.isoformat()}, after which every call to it fails; move the target to a current "
                f"model before then{self._current(target)} (source: {r.source})")

    def _current(self, target: Target) -> str:
        """``; current <provider> models include: ...`` (built-in ids with no shutdown announced), or ""."""
        family = target.model.split("-")[0]
        live = sorted(m for m in spec_of(target.provider).models
                      if m.split("-")[0] == family and self.retirement(target.provider, m) is None)[:6]
        return f"; current {target.provider.value} models include: {', '.join(live)}" if live else ""

    def allowed(self, provider: Provider) -> frozenset[str] | None:
        """The allowed ids of a provider, or None when any id is accepted."""
        ids: set[str] = set(DEFAULT_MODELS.get(provider, ())) if self.include_defaults else set()
        listed = False
        for entry in self.models:
            if entry.provider is provider:
                ids.update(entry.models)
                listed = True
        if not spec_of(provider).checks_models and not listed:
            return None
        return frozenset(ids)

    def problem(self, target: Target) -> str | None:
        """Why the target's model is not allowed, or None when it is."""
        allowed = self.allowed(target.provider)
        if allowed is None or model_allowed(target.model, allowed):
            return None
        spec = spec_of(target.provider)
        gone = spec.retirements.keys() - set(spec.models)  # known only to report them: not worth suggesting
        close = sorted(m for m in allowed if m.split("-")[0] == target.model.split("-")[0] and m not in gone)[:8]
        hint = f"; known {target.provider.value} models include: {', '.join(close)}" if close else ""
        return (f"target {target.name!r}: model {target.model!r} is not in the model registry for provider "
                f"{target.provider.value}{hint} (add it under modelRegistry.models to allow it)")

    def when_problem(self, target: Target) -> str | None:
        """Why the target's ``when`` can never take a request (its minimum fills the model's window), or None."""
        low = target.when.min_input_tokens if target.when is not None else None
        window = self.window(target.provider, target.model) if low is not None else None
        if low is None or window is None or low < window.context:
            return None
        return (f"target {target.name!r}: when.minInputTokens {low} is not below the {window.context}-token context "
                f"window of {target.model}: no request could ever be sent to it")

    def problems(self, targets: Iterable[Target]) -> list[str]:
        """One message per target whose model is not allowed."""
        return [p for t in targets if (p := self.problem(t)) is not None]


def lifecycle_notes(targets: Iterable[tuple[str, Target]], registry: ModelRegistry, today: date) -> tuple[list[str], list[str]]:
    """(errors, warnings) for ``(where, target)`` pairs: retired models, and models whose shutdown is announced."""
    pairs = list(targets)
    errors = [f"{where}: {p}" for where, t in pairs if (p := registry.lifecycle_problem(t, today)) is not None]
    warnings = [f"{where}: {w}" for where, t in pairs if (w := registry.lifecycle_warning(t, today)) is not None]
    return errors, warnings


def _lookup(table: Mapping[str, _T], model: str) -> _T | None:
    """``table[model]``, else the entry of the longest listed id ``model`` is a dated version of (``models/`` dropped)."""
    name = model[7:] if model.startswith("models/") else model
    if name in table:
        return table[name]
    bases = [b for b in table if name.startswith(b) and _SUFFIX.match(name[len(b):])]
    return table[max(bases, key=len)] if bases else None


def model_allowed(model: str, allowed: frozenset[str]) -> bool:
    """True when ``model`` is listed, or is a listed id plus a version suffix."""
    name = model[7:] if model.startswith("models/") else model
    if name in allowed:
        return True
    return any(name.startswith(base) and _SUFFIX.match(name[len(base):]) for base in allowed)
