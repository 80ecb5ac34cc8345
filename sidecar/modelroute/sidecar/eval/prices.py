"""Prices for the eval report: ``--prices`` tables, the route's own pricing, the built-in table.

A target is priced (``price_of``) by the ``--prices`` table if it names it, else by its
``spec.targets[].pricing``, else by the sidecar's built-in list prices (``cost.DEFAULT_PRICES``),
the same order of precedence the sidecar uses for ``/stats`` apart from the table. The table::

    gpt-5.4-mini: {input: 0.75, output: 4.50}     # by provider model id
    haiku: {input: 1.00, output: 5.00}            # or by target name (wins over the model id)

(optionally under a top-level ``prices:`` key). Targets with no price anywhere get no cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modelroute.api.v1alpha1 import Target
from modelroute.sidecar.pipeline import cost
from modelroute.sidecar.pipeline.cost import Price

BUILTIN = cost.PriceTable()


class PriceError(Exception):
    pass


def parse(doc: Any, source: str = "prices") -> dict[str, Price]:
    if isinstance(doc, dict) and set(doc) == {"prices"}:
        doc = doc["prices"]
    if not isinstance(doc, dict):
        raise PriceError(f"{source}: expected a mapping of model or target name to {{input, output}}")
    out: dict[str, Price] = {}
    problems = []
    for name, p in doc.items():
        try:
            out[str(name)] = Price(float(p["input"]), float(p["output"]))
        except (TypeError, KeyError, ValueError):
            problems.append(f"{source}: {name}: needs input and output, in USD per million tokens")
    if problems:
        raise PriceError("\n".join(problems))
    return out


def load(path: str | Path) -> dict[str, Price]:
    p = Path(path)
    try:
        return parse(yaml.safe_load(p.read_text(encoding="utf-8")), str(p))
    except OSError as e:
        raise PriceError(f"{p}: cannot read ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise PriceError(f"{p}: not YAML ({e})") from None


def price_for(prices: dict[str, Price], target: str, model: str) -> Price | None:
    return prices.get(target) or prices.get(model)


def price_of(target: Target, table: dict[str, Price] | None = None, *, builtin: cost.PriceTable = BUILTIN) -> cost.Price | None:
    """What one target's usage costs: ``--prices`` entry, else the target's pricing, else the built-in table."""
    if table:
        p = price_for(table, target.name, target.model)
        if p is not None:
            return p
    return cost.target_price(target, builtin)
