"""Price tables for ``modelroute eval --prices``: USD per million tokens, per model or target.

The ModelRoute API has no prices yet, so cost is computed only when a table is given::

    gpt-4o-mini: {input: 0.15, output: 0.60}      # by provider model id
    haiku: {input: 1.00, output: 5.00}            # or by target name (wins over the model id)

(optionally under a top-level ``prices:`` key). Targets without a price get no cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Price:
    input_per_m: float
    output_per_m: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_m + completion_tokens * self.output_per_m) / 1_000_000


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
