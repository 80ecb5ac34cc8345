"""Load ModelRoute YAML or JSON files into a ``SidecarConfig`` and report every problem at once.

Besides ModelRoutes, a file may hold one ``kind: ModelRegistry`` document (``spec``:
``includeDefaults``, ``models: [{provider, models}]``) that extends the built-in registry
of model ids; several such documents are merged. Every target's model is checked against
it (``openai``, ``anthropic`` and ``gemini`` always; ``openai-compatible`` when listed),
and every route or target param against what the target's provider, ``apiVersion`` and
model accept (``modelroute.api.v1alpha1.capabilities``). A config written by a person (``checked``)
may not name a model its provider has retired; one with a shutdown date ahead is logged as a warning.

A config with errors must fail at start (or at ``PUT /config``) with one clear line per
problem saying where it is: file, document number (1-based), ``metadata.name`` and field path,
e.g. ``routes.yaml doc 2 (ticket-classifier): spec.targets[0].provider: Input should be ...``.
Nothing here raises on the first error: parsing collects, ``problems()`` collects, and
``load()`` raises one ``ConfigError`` carrying the whole list.

A file is read as YAML; one that is JSON (``routes.json``) is read by ``json`` instead, without
importing PyYAML, wherever YAML 1.1 would read it to the same values (``_json_as_yaml``).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import ValidationError

from modelroute.api.config import CanaryServing, SidecarConfig
from modelroute.api.lifecycledate import LifecycleDateError, lifecycle_today
from modelroute.api.problems import Problems, validation_problems
from modelroute.api.v1alpha1 import ModelRoute, Target
from modelroute.api.v1alpha1.capabilities import route_param_problems
from modelroute.api.v1alpha1.registry import ModelRegistry, ProviderModels, lifecycle_notes
from modelroute.sidecar.config.secrets import KeyResolver

if TYPE_CHECKING:
    import yaml

log = logging.getLogger(__name__)


class ConfigError(Problems):
    """The config is invalid; ``problems`` holds one human-readable line per problem."""


def _doc_name(doc: Any) -> str | None:
    if isinstance(doc, dict):
        meta = doc.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            return str(meta["name"])
    return None


def _where(source: str, index: int, doc: Any) -> str:
    name = _doc_name(doc)
    return f"{source} doc {index}" + (f" ({name})" if name else "")


REGISTRY_KIND = "ModelRegistry"
CLEAR_ROUTES = "clearRoutes"
"""The one deliberate way to make an admin ``PUT /config`` serve zero routes: ``{"routes": [], "clearRoutes": true}``."""


def _expand(docs: Iterable[Any]) -> list[Any]:
    """Accept ModelRoute docs, lists of them, and ``{"routes": [...], "modelRegistry"?, "canaries"?}`` wrappers.

    ``canaries`` are read by ``with_canaries`` (they need the routes first).
    """
    out: list[Any] = []
    for doc in docs:
        if doc is None:
            continue  # an empty YAML document (e.g. a trailing ---)
        if isinstance(doc, list):
            out.extend(doc)
        elif (isinstance(doc, dict) and "routes" in doc and set(doc) <= {"routes", "modelRegistry", "canaries", CLEAR_ROUTES}
              and isinstance(doc["routes"], list)):
            out.extend(doc["routes"])
            if doc.get("modelRegistry") is not None:
                out.append({"kind": REGISTRY_KIND, "spec": doc["modelRegistry"]})
        else:
            out.append(doc)
    return out


class Claim(NamedTuple):
    """What one mapping document claims, read even when the document is invalid (for duplicate checks)."""

    where: str
    route: str | None
    name: str | None


class Parsed(NamedTuple):
    routes: list[tuple[str, ModelRoute]]   # (where, route) for every valid document
    problems: list[str]
    claims: list[Claim]                    # every mapping document, valid or not, in order
    registries: list[ModelRegistry] | None = None   # valid ModelRegistry documents, in order

    def extend(self, other: Parsed) -> None:
        self.routes.extend(other.routes)
        self.problems.extend(other.problems)
        self.claims.extend(other.claims)
        if other.registries:
            self.registry_list().extend(other.registries)

    def registry_list(self) -> list[ModelRegistry]:
        """``registries`` (a NamedTuple field cannot default to a fresh list, so build ``Parsed`` with ``[]``)."""
        assert self.registries is not None, "build Parsed with registries=[] to add registries"
        return self.registries

    def registry(self) -> ModelRegistry | None:
        """The merged registry of every ModelRegistry document (None: there was none)."""
        return merge_registries(self.registries or [])


def merge_registries(registries: Sequence[ModelRegistry]) -> ModelRegistry | None:
    """Several registry documents as one: models concatenated; built-ins only if every document keeps them."""
    if not registries:
        return None
    if len(registries) == 1:
        return registries[0]
    models: list[ProviderModels] = [m for r in registries for m in r.models]
    return ModelRegistry(include_defaults=all(r.include_defaults for r in registries), models=models)


def _claim(where: str, doc: dict[str, Any]) -> Claim:
    spec, meta = doc.get("spec"), doc.get("metadata")
    route = spec.get("route") if isinstance(spec, dict) else None
    name = _doc_name(doc)
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    if name is not None and isinstance(ns, str) and ns:
        name = f"{ns}/{name}"
    return Claim(where, route if isinstance(route, str) else None, name)


def parse_documents(docs: Iterable[Any], source: str) -> Parsed:
    """Validate raw documents as ModelRoutes (and ModelRegistry documents); collects every problem."""
    out = Parsed([], [], [], [])
    for i, doc in enumerate(_expand(docs), start=1):
        where = _where(source, i, doc)
        if not isinstance(doc, dict):
            out.problems.append(f"{where}: expected a ModelRoute mapping, got {type(doc).__name__}")
            continue
        if doc.get("kind") == REGISTRY_KIND:
            try:
                out.registry_list().append(ModelRegistry.model_validate(doc.get("spec") or {}))
            except ValidationError as e:
                out.problems.extend(validation_problems(e, f"{where} ({REGISTRY_KIND})"))
            continue
        out.claims.append(_claim(where, doc))
        try:
            out.routes.append((where, ModelRoute.model_validate(doc)))
        except ValidationError as e:
            out.problems.extend(validation_problems(e, where))
    return out


def _yaml_error(source: str, e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    at = f" line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
    return f"{source}{at}: YAML syntax error: {problem}"


class _YamlSyntax(Exception):
    """A YAML text that does not parse; the message is the problem line."""


def _yaml_documents(text: str, source: str) -> list[Any]:
    """The YAML documents of ``text``. PyYAML is imported by the first YAML text, not at start: a pod
    configured by its JSON route bundle or JSON pushes never loads it (~15 ms of CPU, bench/README.md)."""
    import yaml

    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise _YamlSyntax(_yaml_error(source, e)) from None


MAX_DEPTH = 64          # nesting of a document; real ModelRoutes stay under 20
MAX_NODES = 200_000     # containers and values, YAML aliases counted as often as they are used


def _children(node: dict[Any, Any] | list[Any]) -> list[Any]:
    return list(node.values()) if isinstance(node, dict) else node


def shape_problem(docs: Sequence[Any], source: str) -> str | None:
    """Why ``docs`` are too deep, too big once YAML aliases are expanded, or cyclic (pure, iterative).

    Checked before validation, which would recurse (a ``RecursionError``) or expand an alias
    bomb into exponentially many nodes.
    """
    depth: dict[int, int] = {}
    size: dict[int, int] = {}
    for root in docs:
        stack: list[tuple[Any, bool]] = [(root, False)]
        on_path: set[int] = set()
        while stack:
            node, done = stack.pop()
            if not isinstance(node, (dict, list)):
                continue
            key = id(node)
            kids = [k for k in _children(node) if isinstance(k, (dict, list))]
            if done:
                on_path.discard(key)
                depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
                size[key] = 1 + len(_children(node)) - len(kids) + sum(size[id(k)] for k in kids)
                if depth[key] > MAX_DEPTH:
                    return f"{source}: nested more than {MAX_DEPTH} levels deep"
                if size[key] > MAX_NODES:
                    return f"{source}: more than {MAX_NODES} values (YAML aliases counted each time they are used)"
                continue
            if key in size:
                continue
            if key in on_path:
                return f"{source}: a YAML alias refers to the node that contains it"
            on_path.add(key)
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
    return None


class _NotAsYaml(Exception):
    """JSON text that YAML 1.1 (PyYAML) reads differently: read it as YAML."""


# Patterns as text, compiled by ``re`` on first use (not at import: every start imports this module).
# Characters PyYAML refuses (its Reader) or reads as line breaks (NEL, LS, PS: folded in quoted
# scalars), and tabs (not YAML whitespace everywhere JSON allows them); the non-ASCII ones apart, as
# a class of large ranges costs tens of millions of instructions to compile.
_NOT_YAML_ASCII = "[\x00-\x09\x0b\x0c\x0e-\x1f\x7f]"
_NOT_YAML_OTHER = "[\x80-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]"
# An escaped high surrogate (JSON joins a pair into one character, PyYAML keeps two).
_SURROGATE_ESCAPE = r"\\u[dD][89abAB]"
# Every JSON string; ``gap`` when it is a key: PyYAML's simple keys end on their line within 1024 characters.
_STRING = r'"(?:[^"\\]|\\.)*"(?P<gap>[ \r\n]*:)?'
_SIMPLE_KEY_CHARS = 1024


def _yaml_float(literal: str) -> float:
    """A JSON float literal as PyYAML reads it: YAML 1.1 floats need a dot and a signed exponent."""
    mantissa, e, exponent = literal.replace("E", "e").partition("e")
    if "." not in mantissa or (e and exponent[:1] not in "+-"):
        raise _NotAsYaml(literal)   # '1e5' is the string '1e5' to PyYAML
    return float(literal)


def _no_constant(name: str) -> Any:
    raise _NotAsYaml(name)          # NaN / Infinity: strings to PyYAML


def _json_as_yaml(text: str) -> list[Any] | None:
    """The one document of ``text`` when it is JSON that PyYAML would read to the same values; None
    otherwise (not JSON, or one of the few places YAML 1.1 reads JSON differently): read it as YAML.

    A config file of JSON (``routes.json``, a rendered bundle) is then read without importing PyYAML;
    any other text gets exactly what YAML gives it, problems included.
    """
    if (text.lstrip()[:1] not in ("{", "[") or re.search(_NOT_YAML_ASCII, text) or re.search(_SURROGATE_ESCAPE, text)
            or (not text.isascii() and re.search(_NOT_YAML_OTHER, text))):
        return None
    for m in re.finditer(_STRING, text):
        gap = m.group("gap")
        if gap is not None and ("\n" in gap or "\r" in gap or m.end() - m.start() > _SIMPLE_KEY_CHARS):
            return None
    try:
        return [json.loads(text, parse_float=_yaml_float, parse_constant=_no_constant)]
    except (_NotAsYaml, ValueError, RecursionError):   # ValueError: JSONDecodeError, or an int of 4300+ digits
        return None


def _documents(text: str, source: str, *, json_first: bool) -> tuple[list[Any], str | None]:
    """The raw documents of ``text`` (JSON, else YAML), or the one problem that stops reading them.

    ``json_first``: any JSON is read as JSON (admin bodies). Otherwise the text means what YAML says:
    JSON is read without PyYAML only where YAML would read it the same way (``_json_as_yaml``).
    """
    try:
        if json_first:
            try:
                docs = [json.loads(text)]
            except json.JSONDecodeError:
                docs = _yaml_documents(text, source)
        else:
            as_yaml = _json_as_yaml(text)
            docs = as_yaml if as_yaml is not None else _yaml_documents(text, source)
    except _YamlSyntax as e:
        return [], str(e)
    except RecursionError:
        return [], f"{source}: nested too deeply"
    except ValueError:  # the only one left: an integer of more than 4300 digits
        return [], f"{source}: a number has more than {sys.get_int_max_str_digits()} digits"
    return docs, shape_problem(docs, source)


def parse_text(text: str, source: str) -> Parsed:
    """Parse YAML (multi-document) or JSON text holding ModelRoute documents (JSON without PyYAML)."""
    docs, problem = _documents(text, source, json_first=False)
    if problem is not None:
        return Parsed([], [problem], [], [])
    return parse_documents(docs, source)


def duplicate_problems(claims: Iterable[Claim]) -> list[str]:
    """Two documents with the same route name, or the same ModelRoute name."""
    problems: list[str] = []
    by_route: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for c in claims:
        if c.route is not None:
            if c.route in by_route:
                problems.append(f"{c.where}: spec.route: route name {c.route!r} is already defined by {by_route[c.route]}")
            else:
                by_route[c.route] = c.where
        if c.name is not None:
            if c.name in by_name:
                problems.append(f"{c.where}: metadata.name: ModelRoute name {c.name!r} is already used by {by_name[c.name]}")
            else:
                by_name[c.name] = c.where
    return problems


def route_problems(
    routes: Sequence[tuple[str, ModelRoute]], keys: KeyResolver | None, claims: Iterable[Claim] | None = None,
    registry: ModelRegistry | None = None,
) -> list[str]:
    """Cross-document checks: duplicates (over ``claims``, default: the routes), empty targets, keys, model ids."""
    if claims is None:
        claims = [Claim(where, r.spec.route, r.key) for where, r in routes]
    problems = duplicate_problems(claims)
    registry = registry if registry is not None else ModelRegistry()
    for where, r in routes:
        if not r.spec.targets:
            problems.append(f"{where}: spec.targets: a route needs at least one target")
        for ti, t in enumerate(r.spec.targets):
            p = registry.problem(t)
            if p is not None:
                problems.append(f"{where}: spec.targets[{ti}].model: {p}")
            if (w := registry.when_problem(t)) is not None:
                problems.append(f"{where}: spec.targets[{ti}].when: {w}")
        problems += [f"{where}: {field}: {msg}" for field, msg in route_param_problems(r.spec)]
        if keys is None:
            continue
        problems += key_problems(where, r.spec.targets, keys)
    return problems


def key_problems(where: str, targets: Sequence[Target], keys: KeyResolver) -> list[str]:
    """Targets whose API key cannot be read, each with the field that names it."""
    problems: list[str] = []
    for ti, t in enumerate(targets):
        p = keys.problem(t)
        if p is not None:
            assert t.api_key is not None
            which = "env" if t.api_key.env is not None else "file" if t.api_key.file is not None else "secretKeyRef"
            problems.append(f"{where}: spec.targets[{ti}].apiKey.{which}: {p}")
    return problems


def canary_problems(config: SidecarConfig, keys: KeyResolver | None) -> list[str]:
    """Semantic problems of ``config.canaries`` (one per line, like ``problems``)."""
    problems: list[str] = []
    routes = {r.spec.route for r in config.routes}
    seen: set[str] = set()
    for i, c in enumerate(config.canaries):
        where = f"canaries[{i}] ({c.route})"
        if c.route not in routes:
            problems.append(f"{where}: route: no route {c.route!r} in this config to add a canary to")
        if c.spec.route != c.route:
            problems.append(f"{where}: spec.route: is {c.spec.route!r}, expected the canary's route {c.route!r}")
        if c.route in seen:
            problems.append(f"{where}: route: route {c.route!r} already has a canary")
        seen.add(c.route)
        if keys is None:
            continue
        problems += key_problems(where, c.spec.targets, keys)
    return problems


def problems(config: SidecarConfig, keys: KeyResolver | None) -> list[str]:
    """Every semantic problem of an already-parsed config (used by ``PUT /config``)."""
    pairs = [(f"routes[{i}] ({r.metadata.name})", r) for i, r in enumerate(config.routes)]
    registry = config.registry()
    found = route_problems(pairs, keys, registry=registry)
    if config.canaries:
        found += canary_problems(config, keys)
        found += [f"canaries[{i}] ({c.route}): spec.targets[{ti}].model: {p}"
                  for i, c in enumerate(config.canaries)
                  for ti, t in enumerate(c.spec.targets) if (p := registry.problem(t)) is not None]
        found += [f"canaries[{i}] ({c.route}): {field}: {msg}"
                  for i, c in enumerate(config.canaries) for field, msg in route_param_problems(c.spec)]
    return found


def model_sites(routes: Sequence[tuple[str, ModelRoute]], canaries: Sequence[CanaryServing] = ()) -> list[tuple[str, Target]]:
    """Every place a config names a model, located: each route's targets (primary, then fallbacks) and each
    canary's (weighted, or mirror-only: a shadow). ``routes``: (where, route) pairs, as ``Parsed.routes``."""
    sites = [(f"{where}: spec.targets[{ti}].model", t) for where, r in routes for ti, t in enumerate(r.spec.targets)]
    return sites + [(f"canaries[{i}] ({c.route}): spec.targets[{ti}].model", t)
                    for i, c in enumerate(canaries) for ti, t in enumerate(c.spec.targets)]


def _day(today: date | None) -> date:
    """``today``, else ``lifecycle_today()``; a bad ``MODELROUTE_LIFECYCLE_DATE`` is a ``ConfigError``."""
    try:
        return today if today is not None else lifecycle_today()
    except LifecycleDateError as e:
        raise ConfigError([str(e)]) from None


def written(parsed: Parsed, keys: KeyResolver | None, today: date | None = None) -> tuple[SidecarConfig, list[str]]:
    """The config of documents a person wrote and the warnings about it; raises ``ConfigError`` with every problem.

    Besides ``route_problems``, no target may name a model retired by ``today`` (default: ``lifecycle_today()``, the
    pinned ``MODELROUTE_LIFECYCLE_DATE`` or today's UTC date); one with a shutdown ahead is a warning. Configs the
    operator signed were checked by it and go through ``problems`` only (``registry.py``: retirement dates).
    """
    registry = parsed.registry()
    found = parsed.problems + route_problems(parsed.routes, keys, parsed.claims, registry)
    warnings: list[str] = []
    try:
        day = _day(today)
    except ConfigError as e:
        found += e.problems
    else:
        retired, warnings = lifecycle_notes(model_sites(parsed.routes), registry or ModelRegistry(), day)
        found += retired
    if found:
        raise ConfigError(found)
    return SidecarConfig(routes=[r for _, r in parsed.routes], model_registry=registry), warnings


def checked(parsed: Parsed, keys: KeyResolver | None, today: date | None = None) -> SidecarConfig:
    """``written``'s config, its warnings logged (config files)."""
    config, warnings = written(parsed, keys, today)
    for w in warnings:
        log.warning("%s", w)
    return config


def admin_config(body: bytes, keys: KeyResolver | None, today: date | None = None) -> tuple[SidecarConfig, list[str]]:
    """A bearer-token ``PUT /config`` body -> (config, warnings), checked like a file (``written``) and its canaries
    with it (``with_canaries``): a retired model wherever a route or canary names one is a located problem, one with
    a shutdown ahead a warning for the answer (also logged). Raises ``ConfigError`` with every problem."""
    day = _day(today)
    config, warnings = written(parse_json_or_yaml(body, "body"), keys, day)
    config, more = with_canaries(config, body, keys, day)
    for w in (warnings := warnings + more):
        log.warning("%s", w)
    return config, warnings


def with_canaries(config: SidecarConfig, body: bytes, keys: KeyResolver | None,
                  today: date) -> tuple[SidecarConfig, list[str]]:
    """``config`` plus the ``canaries`` of a JSON ``{"routes": [...], "canaries": [...]}`` admin body, and the warnings
    about the canaries' models.

    Without this a bearer-token ``PUT /config`` would drop canaries silently; they are validated like the
    operator's (``problems``) and, being written by a person, may not name a model retired by ``today``; every
    problem is reported.
    """
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return config, []
    raw = doc.get("canaries") if isinstance(doc, dict) else None
    if not raw:
        return config, []
    if not isinstance(raw, list):
        raise ConfigError(["body: canaries: must be a list of CanaryServing objects"])
    canaries, found = [], []
    for i, item in enumerate(raw):
        try:
            canaries.append(CanaryServing.model_validate(item))
        except ValidationError as e:
            found += validation_problems(e, f"body: canaries[{i}]")
    if found:
        raise ConfigError(found)
    combined = config.model_copy(update={"canaries": canaries})
    retired, warnings = lifecycle_notes(model_sites((), canaries), combined.registry(), today)
    found = problems(combined, keys) + retired
    if found:
        raise ConfigError(found)
    return combined, warnings


def load_text(text: str, source: str, keys: KeyResolver | None) -> SidecarConfig:
    """YAML/JSON text -> validated config; raises ``ConfigError`` with every problem."""
    return checked(parse_text(text, source), keys)


def load(paths: Sequence[str | Path], keys: KeyResolver | None) -> SidecarConfig:
    """Load and validate one or more YAML or JSON files; raises ``ConfigError`` with every problem."""
    parsed = Parsed([], [], [], [])
    for p in paths:
        path = Path(p)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            parsed.problems.append(f"{p}: config file does not exist")
            continue
        except (OSError, UnicodeDecodeError) as e:
            parsed.problems.append(f"{p}: config file cannot be read ({type(e).__name__}: {e})")
            continue
        parsed.extend(parse_text(text, str(p)))
    if not parsed.problems and not parsed.claims:
        raise ConfigError([", ".join(map(str, paths)) + ": no ModelRoute documents found"])
    return checked(parsed, keys)


def parse_json_or_yaml(body: bytes, source: str) -> Parsed:
    """An admin ``PUT /config`` body: JSON or YAML, a list of docs or ``{"routes": [...]}``.

    A body without any ModelRoute (empty, ``null``, ``---``, only comments, an empty list) is a
    problem, not an order to drop every route: serving zero routes takes the named form
    ``{"routes": [], "clearRoutes": true}``.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Parsed([], [f"{source}: body is not UTF-8"], [], [])
    docs, problem = _documents(text, source, json_first=True)
    if problem is not None:
        return Parsed([], [problem], [], [])
    parsed = parse_documents(docs, source)
    parsed.problems.extend(emptiness_problems(docs, parsed, source))
    return parsed


def emptiness_problems(docs: Sequence[Any], parsed: Parsed, source: str) -> list[str]:
    """Why ``docs`` may not replace the served routes with none (pure)."""
    flagged = [d for d in docs if isinstance(d, dict) and CLEAR_ROUTES in d]
    for doc in flagged:
        if doc[CLEAR_ROUTES] is not True or doc.get("routes") != []:
            return [f"{source}: {CLEAR_ROUTES}: only {{\"routes\": [], \"{CLEAR_ROUTES}\": true}} clears every route"]
    if parsed.routes or parsed.claims or parsed.problems:
        return []  # routes (valid or not) were sent; their own problems say what is wrong
    if flagged and len(docs) == 1:
        return []
    return [f"{source}: no ModelRoute documents (empty body, null, '---' or only comments): refusing to serve zero "
            f"routes; to clear every route on purpose send {{\"routes\": [], \"{CLEAR_ROUTES}\": true}}"]
