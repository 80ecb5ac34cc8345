"""The operator's ``--model-registry`` file: read once at start-up, refused whole when invalid.

The registry (context windows, output limits, allowed model ids) validates routes in the
operator and rides in every pushed config and route bundle, so sidecars in a cluster check
the same windows. A bad file stops the operator before it serves anything, naming the field.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from modelroute.api.problems import Problems, validation_problems
from modelroute.api.v1alpha1.registry import ModelRegistry

KIND = "ModelRegistry"


class RegistryFileError(Problems):
    """The file cannot be read or is not a ModelRegistry; one line per problem."""


def parse_registry(text: str, where: str) -> ModelRegistry:
    """A ModelRegistry from YAML/JSON text: the model itself, or a ``kind: ModelRegistry`` document's ``spec``."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RegistryFileError([f"{where}: not valid YAML or JSON{at}"]) from None
    if doc is None:
        doc = {}
    if isinstance(doc, dict) and doc.get("kind") == KIND:
        doc = doc.get("spec") or {}
    if not isinstance(doc, dict):
        raise RegistryFileError([f"{where}: expected a mapping (a ModelRegistry), got {type(doc).__name__}"])
    try:
        return ModelRegistry.model_validate(doc)
    except ValidationError as e:
        raise RegistryFileError(validation_problems(e, where)) from None


def load_registry(path: Path) -> ModelRegistry:
    """The registry in ``path``; RegistryFileError when it is missing, unreadable or invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RegistryFileError([f"{path}: cannot read: {type(e).__name__}"]) from None
    return parse_registry(text, str(path))
