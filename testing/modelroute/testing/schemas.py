"""Checks on the OpenAPI schemas generated from the API models, shared by the CRD and API tests.

Every field of a CRD or API schema needs a description (``kubectl explain`` and the docs show
it); this finds the ones that have none.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def undocumented(schema: dict[str, Any], path: str = "", *, exempt: Collection[str] = ()) -> list[str]:
    """Paths (``.spec.targets[].name``) of the properties below ``schema`` that have no description.

    ``exempt``: paths allowed to go without one (their children are still checked).
    """
    missing = []
    for name, prop in schema.get("properties", {}).items():
        here = f"{path}.{name}"
        if not prop.get("description") and here not in exempt:
            missing.append(here)
        missing += undocumented(prop, here, exempt=exempt)
    items = schema.get("items")
    if isinstance(items, dict):
        missing += undocumented(items, path + "[]", exempt=exempt)
    return missing
