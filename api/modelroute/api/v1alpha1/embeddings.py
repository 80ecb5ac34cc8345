"""Which targets serve embeddings, and at which vector dimension (``POST /v1/embeddings``).

Why apart: fallback between embedding targets is only sound when every target returns vectors
of the same dimension (vectors of one index must be comparable), and that is a property of the
route, checked when the config loads (``spec.ModelRouteSpec``) rather than per request. A
target's dimension is its ``dimensions`` override, else its model's default from the provider's
``ProviderSpec.embedding_models``; a provider with no embedding models (anthropic) has no
embeddings API. Pure: no pydantic, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelroute.api.v1alpha1.providers import Provider, having, spec_of


def default_dimension(provider: Provider, model: str) -> int | None:
    """The default vector dimension of ``model`` (or a dated version of it), None when not a known embedding model."""
    known = spec_of(provider).embedding_models
    if model in known:
        return known[model]
    return next((d for m, d in known.items() if model.startswith(m + "-")), None)


def target_dimension(provider: Provider, model: str, dimensions: int | None) -> int | None:
    """The dimension a target's vectors have, None when the target is not an embedding target."""
    return dimensions if dimensions is not None else default_dimension(provider, model)


def _can_embed(provider: Provider) -> bool:
    return bool(spec_of(provider).embedding_models) or not spec_of(provider).checks_models


def route_dimension_problem(targets: Iterable[tuple[str, Provider, str, int | None]]) -> str | None:
    """Why a route's targets (name, provider, model, dimensions) cannot serve embeddings together, or None.

    A route none of whose targets is an embedding target is a chat route: no problem. Otherwise
    every target must embed, at one dimension.
    """
    rows = [(name, provider, target_dimension(provider, model, dims)) for name, provider, model, dims in targets]
    embedding = [r for r in rows if r[2] is not None]
    if not embedding:
        return None
    for name, provider, dim in rows:
        if not _can_embed(provider):
            able = ", ".join(p.value for p in having(lambda s: s.embedding_models or not s.checks_models))
            return (f"target {name!r}: provider {provider.value} has no embeddings API, but this route has embedding "
                    f"targets (providers with embeddings: {able})")
        if dim is None:
            return (f"target {name!r}: this route has embedding targets, but the vector dimension of this target's "
                    "model is not known: set the target's dimensions (or use a known embedding model)")
    dims = sorted({d for _, _, d in rows if d is not None})
    if len(dims) > 1:
        listed = ", ".join(f"{n!r}: {d}" for n, _, d in rows)
        return (f"embedding targets of one route must share one dimension (fallback mixes their vectors): {listed}; "
                "set dimensions on the targets to one value, or split the route")
    return None
