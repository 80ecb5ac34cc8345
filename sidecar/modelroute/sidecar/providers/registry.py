"""The adapter factory: the provider registry's ``adapter`` entry, imported when a target needs it.

``modelroute.api.v1alpha1.providers.PROVIDERS`` names each provider's adapter class
(``module:Class``); ``build_adapter`` imports that module (and with it the SDK) on first use,
so a sidecar that serves only OpenAI never loads ``anthropic`` or ``google.genai``. Nothing here
switches on the provider: a new provider's adapter module is found through its spec.
"""

from __future__ import annotations

import functools
import importlib
from typing import Protocol, cast

from modelroute.api.v1alpha1.providers import Provider, spec_of
from modelroute.api.v1alpha1.spec import Params, Target
from modelroute.sidecar.providers.base import Adapter, KeyFn


class AdapterClass(Protocol):
    """What a spec's ``adapter`` names: a class built from one target, its key source, params and prompt."""

    def __call__(self, target: Target, key: KeyFn | None, *, params: Params | None = None,
                 system: str | None = None) -> Adapter: ...


@functools.cache
def adapter_class(provider: Provider) -> AdapterClass:
    """The adapter class of ``provider``, its module (and SDK) imported on first use."""
    module, _, name = spec_of(provider).adapter.partition(":")
    return cast(AdapterClass, getattr(importlib.import_module(module), name))


def build_adapter(
    target: Target, key: KeyFn | None, *, params: Params | None = None, system: str | None = None
) -> Adapter:
    """The adapter for ``target``; its SDK is imported here, on first use of a provider.

    ``key`` is called for each request (cheap; the adapters pick up a rotated key without
    rebuilding their connection pool); ``None`` means the endpoint needs no key (providers
    whose spec is ``keyless``). ``params`` are the target's effective params
    (``translate.params.effective_params(route.params, target)``) and ``system`` the route
    prompt's system text; both default to none (the request goes through as sent).
    The returned adapter owns its SDK client; ``adapter.bound(params, system)`` derives
    views for other params and prompts that share it.
    Must be called with a running event loop only if the SDK needs one (none do today).
    The adapter is warmed (``warm``: the SDK's prepared request and lazily built types) here,
    when a config is applied, so that a sidecar's first request costs what any other does.
    """
    adapter = adapter_class(target.provider)(target, key, params=params, system=system)
    warm = getattr(adapter, "warm", None)
    if warm is not None:
        warm()
    return adapter
