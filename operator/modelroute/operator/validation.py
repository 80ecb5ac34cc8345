"""Semantic validation of one ModelRoute as stored in the cluster.

The apiserver already enforces the CRD schema and CEL rules; this module parses the object
into the typed model (the same validators the sidecar runs) and checks what only the
operator can see: that every referenced Secret and key exists in the route's namespace,
that every target names a model id the registry knows (the operator's ``--model-registry``,
else the built-in one; an unknown id is refused here, as the sidecars would refuse the push; a model the
provider has retired is refused here too, one with an announced shutdown gets a warning), and that no target is
given params its provider, API version and model refuse (``modelroute.api.v1alpha1.capabilities``, the same table).
``apiKey.env`` names an env var of the sidecar container and cannot be checked here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from pydantic import ValidationError

from modelroute.api.lifecycledate import lifecycle_today
from modelroute.api.problems import validation_problems
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.capabilities import route_param_problems
from modelroute.api.v1alpha1.registry import ModelRegistry, lifecycle_notes
from modelroute.api.v1alpha1.strategy import ACTION_ANNOTATION

# Metadata fields that the operator keeps in bundles and pushes (everything else is noise).
KEPT_METADATA = ("name", "namespace", "uid", "generation", "creationTimestamp")


# The built-in registry of model ids (the sidecars check the same list when a push arrives).
BUILT_IN = ModelRegistry()


@dataclass(frozen=True)
class Validation:
    """The outcome for one ModelRoute object: the parsed route when valid, else the problems."""

    key: str
    name: str
    uid: str | None
    generation: int | None
    route: ModelRoute | None
    problems: tuple[str, ...] = ()
    parsed: ModelRoute | None = None  # parsed even when a cluster check failed (for status)
    warnings: tuple[str, ...] = ()  # valid, but worth saying (a model with an announced shutdown)

    @property
    def valid(self) -> bool:
        return self.route is not None and not self.problems


def slim(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The object without status and without metadata the sidecars do not need."""
    meta = raw.get("metadata") or {}
    return {
        "apiVersion": raw.get("apiVersion"),
        "kind": raw.get("kind"),
        "metadata": {k: meta[k] for k in KEPT_METADATA if meta.get(k) is not None},
        "spec": raw.get("spec"),
    }


def parse(raw: Mapping[str, Any]) -> ModelRoute | list[str]:
    """The typed route, or one readable problem per pydantic error (with its field path)."""
    try:
        return ModelRoute.model_validate(slim(raw))
    except ValidationError as e:
        return validation_problems(e)


def secret_refs(route: ModelRoute) -> list[tuple[str, str, str]]:
    """(target name, secret name, key) for every target whose key comes from a Secret."""
    refs = []
    for t in route.spec.targets:
        if t.api_key is not None and t.api_key.secret_key_ref is not None:
            refs.append((t.name, t.api_key.secret_key_ref.name, t.api_key.secret_key_ref.key))
    return refs


def validate(raw: Mapping[str, Any], secrets: Mapping[str, Set[str] | None], registry: ModelRegistry = BUILT_IN,
             today: date | None = None) -> Validation:
    """Validate one ModelRoute; ``secrets`` maps Secret name -> its data keys (None: absent; a name
    missing from the mapping could not be read and is not checked). ``registry``: the one pushed with the configs.
    ``today`` (default: ``lifecycle_today()``, the pinned ``MODELROUTE_LIFECYCLE_DATE`` or today's UTC date)
    decides which models are retired."""
    meta = raw.get("metadata") or {}
    ns, name = meta.get("namespace") or "", meta.get("name") or ""
    base = Validation(
        key=f"{ns}/{name}" if ns else name, name=name, uid=meta.get("uid"), generation=meta.get("generation"), route=None
    )
    parsed = parse(raw)
    if isinstance(parsed, list):
        return replace(base, problems=tuple(parsed))
    problems = [
        f"spec.targets[{i}].model: {p}" for i, t in enumerate(parsed.spec.targets) if (p := registry.problem(t)) is not None
    ]
    problems += [f"spec.targets[{i}].when: {p}" for i, t in enumerate(parsed.spec.targets)
                 if (p := registry.when_problem(t)) is not None]
    retired, warnings = lifecycle_notes([(f"spec.targets[{i}].model", t) for i, t in enumerate(parsed.spec.targets)],
                                        registry, today if today is not None else lifecycle_today())
    problems += retired
    base = replace(base, warnings=tuple(warnings))
    problems += [f"{field}: {msg}" for field, msg in route_param_problems(parsed.spec)]
    for target, secret, key in secret_refs(parsed):
        if secret not in secrets:
            continue  # not verifiable (no RBAC to read Secrets here); the sidecar checks the key file
        keys = secrets[secret]
        where = f"spec.targets[{target}].apiKey.secretKeyRef"
        if keys is None:
            problems.append(f"{where}: Secret {secret!r} does not exist in namespace {ns!r}")
        elif key not in keys:
            have = ", ".join(sorted(keys)) or "none"
            problems.append(f"{where}: Secret {secret!r} has no key {key!r} (keys: {have})")
    if problems:
        return replace(base, problems=tuple(problems), parsed=parsed)
    return replace(base, route=parsed, parsed=parsed)


def referenced_secrets(raws: Iterable[Mapping[str, Any]]) -> set[str]:
    """Names of the Secrets the given raw routes reference (for one fetch per Secret)."""
    names: set[str] = set()
    for raw in raws:
        parsed = parse(raw)
        if not isinstance(parsed, list):
            names.update(secret for _, secret, _ in secret_refs(parsed))
    return names


def snapshot(body: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a ModelRoute kept in the operator's index: what validation, status and events need."""
    meta = body.get("metadata") or {}
    kept = {k: meta[k] for k in (*KEPT_METADATA, "resourceVersion") if meta.get(k) is not None}
    action = (meta.get("annotations") or {}).get(ACTION_ANNOTATION)
    if action:
        kept["annotations"] = {ACTION_ANNOTATION: action}  # what people ask of a rollout
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": kept,
        "spec": _plain(body.get("spec")),
        "status": _plain(body.get("status")),
    }


def _plain(value: Any) -> Any:
    """A deep copy into plain dicts and lists (kopf bodies are views over changing objects)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
