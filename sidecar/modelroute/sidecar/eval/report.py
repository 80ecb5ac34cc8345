"""Render eval results: a text table, a JSON document, and a self-contained HTML report.

The HTML report has no external assets (inline CSS, inline SVG bar charts), so it can be
attached to a ticket or opened from a CI artifact as it is. All functions are pure.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from modelroute.sidecar.eval.runner import TargetRun
from modelroute.sidecar.eval.scoring import TargetSummary

MAX_MISMATCHES = 50
COST_NOTE = "cost needs a price: the target's pricing in the route, --prices prices.yaml, or a model in the built-in table"


def fmt_pct(v: float | None) -> str:
    """A rate as a percentage, "-" when unknown."""
    return "-" if v is None else f"{100 * v:.1f}%"


def fmt_ms(v: float | None) -> str:
    """Milliseconds, one decimal below 10, "-" when unknown."""
    return "-" if v is None else f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def fmt_usd(v: float | None) -> str:
    """US dollars to four decimals, "-" when unknown."""
    return "-" if v is None else f"${v:.4f}"


COLUMNS = ("TARGET", "MODEL", "CASES", "ERRORS", "EXACT", "VALID", "P50 MS", "P95 MS", "P99 MS", "TOKENS IN", "TOKENS OUT", "COST")


def row(s: TargetSummary) -> tuple[str, ...]:
    return (s.target, f"{s.provider}/{s.model}", str(s.cases), str(s.errors), fmt_pct(s.exact_match), fmt_pct(s.valid_rate),
            fmt_ms(s.p50_ms), fmt_ms(s.p95_ms), fmt_ms(s.p99_ms), str(s.prompt_tokens), str(s.completion_tokens), fmt_usd(s.cost_usd))


def table(summaries: Sequence[TargetSummary]) -> str:
    rows = [COLUMNS, *(row(s) for s in summaries)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in rows]
    if any(s.cost_usd is None for s in summaries):
        lines.append(f"(cost: {COST_NOTE})")
    return "\n".join(lines) + "\n"


def as_json(route: str, dataset: str, runs: Sequence[TargetRun]) -> dict[str, Any]:
    out: dict[str, Any] = {"route": route, "dataset": dataset, "cases": runs[0].summary.cases if runs else 0, "targets": []}
    for r in runs:
        doc = r.summary.as_json()
        doc["mismatches"] = [
            {"id": o.case_id, "output": o.output, "error": o.error, "valid": o.valid}
            for o in r.outcomes if not o.exact
        ][:MAX_MISMATCHES]
        out["targets"].append(doc)
    if any(r.summary.cost_usd is None for r in runs):
        out["costNote"] = COST_NOTE
    return out


# ---- HTML ------------------------------------------------------------------------------------

_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948")


def bar_chart(title: str, groups: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *,
              unit: str = "", max_value: float | None = None, width: int = 640) -> str:
    """A grouped horizontal bar chart as an inline SVG element."""
    bar_h, gap, label_w, pad = 14, 10, 150, 8
    n_series = max(1, len(series))
    group_h = n_series * bar_h + gap
    legend_h = 22
    height = pad * 2 + 24 + legend_h + len(groups) * group_h + gap
    values = [v for _, vs in series for v in vs if v is not None]
    top = max_value if max_value is not None else max(values, default=0.0) or 1.0
    plot_w = width - label_w - 90
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="{pad}" y="{pad + 14}" font-weight="bold">{html.escape(title)}</text>']
    x = label_w
    for si, (name, _) in enumerate(series):
        color = _PALETTE[si % len(_PALETTE)]
        parts.append(f'<rect x="{x}" y="{pad + 24}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{x + 14}" y="{pad + 33}" font-size="11">{html.escape(name)}</text>')
        x += 14 + 8 * len(name) + 16
    y0 = pad + 24 + legend_h
    for gi, group in enumerate(groups):
        gy = y0 + gi * group_h
        parts.append(f'<text x="{pad}" y="{gy + n_series * bar_h / 2 + 4}" font-size="12">{html.escape(group)}</text>')
        for si, (_, vs) in enumerate(series):
            v = vs[gi] if gi < len(vs) else None
            y = gy + si * bar_h
            w = 0.0 if v is None else max(1.0, plot_w * min(v, top) / top)
            color = _PALETTE[si % len(_PALETTE)]
            label = "n/a" if v is None else f"{v:.1f}{unit}" if unit != "$" else f"${v:.4f}"
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{color}"/>'
                         f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 4}" font-size="11">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_report(route: str, dataset: str, runs: Sequence[TargetRun]) -> str:
    s = [r.summary for r in runs]
    names = [x.target for x in s]
    charts = [
        bar_chart("Quality (percent of cases)", names, [
            ("exact match", [None if x.exact_match is None else 100 * x.exact_match for x in s]),
            ("valid output", [100 * x.valid_rate for x in s]),
            ("errors", [100 * x.errors / x.cases if x.cases else None for x in s]),
        ], unit="%", max_value=100.0),
        bar_chart("Latency (ms)", names, [("p50", [x.p50_ms for x in s]), ("p95", [x.p95_ms for x in s]),
                                          ("p99", [x.p99_ms for x in s])], unit=" ms"),
        bar_chart("Tokens", names, [("input", [float(x.prompt_tokens) for x in s]),
                                    ("output", [float(x.completion_tokens) for x in s])]),
    ]
    if any(x.cost_usd is not None for x in s):
        charts.append(bar_chart("Cost (USD, whole dataset)", names, [("cost", [x.cost_usd for x in s])], unit="$"))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row(x)) + "</tr>" for x in s)
    mism = []
    for r in runs:
        bad = [o for o in r.outcomes if not o.exact][:MAX_MISMATCHES]
        if not bad:
            continue
        items = "".join(f"<tr><td>{html.escape(o.case_id)}</td><td>{html.escape(o.error or '')}</td>"
                        f"<td><code>{html.escape((o.output or '')[:300])}</code></td></tr>" for o in bad)
        mism.append(f"<h3>{html.escape(r.summary.target)}: {len(bad)} not matching</h3>"
                    f"<table><tr><th>case</th><th>error</th><th>output</th></tr>{items}</table>")
    note = f"<p class=note>{html.escape(COST_NOTE)}</p>" if any(x.cost_usd is None for x in s) else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modelroute eval: {html.escape(route)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} td:first-child,th:first-child{{text-align:left}}
svg{{display:block;margin:1em 0;font-family:system-ui,sans-serif}} .note{{color:#666}} code{{white-space:pre-wrap}}
</style></head><body>
<h1>modelroute eval: route <code>{html.escape(route)}</code></h1>
<p>dataset <code>{html.escape(dataset)}</code>, {s[0].cases if s else 0} cases, {len(s)} targets</p>
<table><tr>{head}</tr>{body}</table>{note}
{''.join(charts)}
{''.join(mism)}
</body></html>
"""
