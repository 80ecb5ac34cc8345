"""The Prometheus text exposition format (0.0.4), written by hand for ``GET /metrics``.

Two owners write metric families (``stats.Stats``: requests, attempts, latency, tokens,
config; ``pipeline.counters.Ledger``: cost, output checks, cache, quotas); both go through
``Exposition`` so escaping and line shapes are decided once. Label values are escaped
(backslash, newline, double quote); values are written with ``repr`` (exact floats).
"""

from __future__ import annotations

from collections.abc import Sequence


def esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def labels(**values: str) -> str:
    """``k="v",...`` in the order given, values escaped."""
    return ",".join(f'{k}="{esc(v)}"' for k, v in values.items())


class Exposition:
    """Lines of one exposition: ``family`` headers, ``sample`` lines and whole ``histogram`` series."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, label_text: str, value: float) -> None:
        """One sample; ``label_text`` from ``labels(...)`` ("" for none)."""
        self._lines.append(f"{name}{{{label_text}}} {value!r}" if label_text else f"{name} {value!r}")

    def histogram(self, name: str, label_text: str, bounds: Sequence[str], counts: Sequence[int], total: float,
                  count: int) -> None:
        """Cumulative ``_bucket`` lines (``bounds`` as ``le`` strings, ``counts`` per bucket), ``_sum`` and ``_count``."""
        cum = 0
        for le, n in zip(bounds, counts, strict=True):
            cum += n
            self._lines.append(f'{name}_bucket{{{label_text},le="{le}"}} {cum}')
        self.sample(f"{name}_sum", label_text, total)
        self.sample(f"{name}_count", label_text, count)

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"
