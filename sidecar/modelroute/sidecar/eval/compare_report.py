"""Render a revision comparison: a text table, a self-contained HTML page, and a PNG.

The HTML draws its charts as inline SVG made here (no script, no stylesheet or font from
the network), so it opens offline from a CI artifact. The PNG has the same four charts
(accuracy with CI, difference with CI, latency distributions, cost per 1000 cases), drawn with
matplotlib's Agg backend (the optional ``report`` extra), for pasting into a pull request.
Everything but ``write_png`` is a pure function of the ``RevisionComparison`` document.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

from modelroute.api.evaluation import RevisionComparison, RevisionResult
from modelroute.sidecar.eval.report import fmt_ms, fmt_pct, fmt_usd

COLOURS = {"baseline": "#4e79a7", "candidate": "#f28e2b"}
HIST_BINS = 20


COLUMNS = ("", "TARGETS", "EXACT", "95% CI", "VALID", "REPAIRED", "ERRORS", "P50 MS", "P95 MS", "TOKENS/1K", "COST/1K")


def _row(r: RevisionResult) -> tuple[str, ...]:
    ci = "-" if r.exact_match_ci_low is None else f"{fmt_pct(r.exact_match_ci_low)}..{fmt_pct(r.exact_match_ci_high)}"
    return (r.role, ",".join(r.targets), fmt_pct(r.exact_match), ci, fmt_pct(r.valid_output_rate), fmt_pct(r.repair_rate),
            fmt_pct(r.error_rate), fmt_ms(r.latency_p50_ms), fmt_ms(r.latency_p95_ms),
            f"{r.tokens_per_1k.prompt + r.tokens_per_1k.completion:.0f}", fmt_usd(r.cost_per_1k))


def _signed_pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.1f}%"


def summary_line(doc: RevisionComparison) -> str:
    c = doc.comparison
    return (f"difference {_signed_pct(c.difference)} ({round(100 * c.confidence)}% CI {_signed_pct(c.ci_low)} .. "
            f"{_signed_pct(c.ci_high)}, {c.ci_method}), McNemar p={c.p_value:.3g}: {c.verdict.value}")


def table(doc: RevisionComparison) -> str:
    """The comparison as aligned text: one row per revision, the verdict, then the disagreements."""
    rows = [COLUMNS, _row(doc.baseline), _row(doc.candidate)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in rows]
    c = doc.comparison
    lines += ["", f"route {doc.route}, {doc.cases_run} of {doc.cases} cases, {c.paired_cases} scored pairs: "
              f"both right {c.both_correct}, only baseline {c.baseline_only}, only candidate {c.candidate_only}, "
              f"both wrong {c.both_wrong}", summary_line(doc), f"verdict: {c.message}"]
    if doc.stopped:
        lines.append(f"stopped early: {doc.stopped}")
    lines += [f"note: {n}" for n in doc.notes]
    if doc.disagreements:
        lines += ["", f"{doc.disagreements_total} cases answered differently"
                  + (f" (first {len(doc.disagreements)})" if doc.disagreements_total > len(doc.disagreements) else "") + ":"]
        for d in doc.disagreements:
            lines.append(f"  {d.id}: {_clip(d.input, 60)!r} expected {_clip(_text(d.expected), 30)!r}; "
                         f"baseline {_clip(d.baseline.output or f'<{d.baseline.error}>', 30)!r}, "
                         f"candidate {_clip(d.candidate.output or f'<{d.candidate.error}>', 30)!r}")
    return "\n".join(lines) + "\n"


def _text(v: object) -> str:
    return "" if v is None else v if isinstance(v, str) else str(v)


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


# ---- charts: one description of each, drawn as SVG here and with matplotlib for the PNG -------


def histogram(doc: RevisionComparison) -> tuple[list[float], dict[str, list[int]]]:
    """Shared bin edges (ms) and per-revision counts of answered latencies."""
    values = doc.baseline.latencies_ms + doc.candidate.latencies_ms
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    edges = [lo + (hi - lo) * i / HIST_BINS for i in range(HIST_BINS + 1)]
    counts = {}
    for r in (doc.baseline, doc.candidate):
        bins = [0] * HIST_BINS
        for v in r.latencies_ms:
            bins[min(HIST_BINS - 1, int((v - lo) / (hi - lo) * HIST_BINS))] += 1
        counts[r.role] = bins
    return edges, counts


def _svg(width: int, height: int, title: str, body: str, chart_id: str) -> str:
    return (f'<svg id="{chart_id}" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{html.escape(title)}">'
            f'<rect width="{width}" height="{height}" fill="#fff"/>'
            f'<text x="10" y="18" font-size="14" font-weight="bold">{html.escape(title)}</text>{body}</svg>')


Row = tuple[str, float | None, float | None, float | None, str, str]   # label, value, CI low, CI high, colour, text


def _interval_chart(chart_id: str, title: str, rows: Sequence[Row], lo: float, hi: float, *, bars: bool = True,
                    ticks: Sequence[str] = ()) -> str:
    """Horizontal bars (or points) with error bars on a scale from ``lo`` to ``hi`` (5 ticks)."""
    width, left, right, row_h = 640, 110, 30, 36
    height = 40 + row_h * len(rows) + 30
    right_x = width - right

    def x(v: float) -> float:
        return left + (right_x - left) * (v - lo) / (hi - lo)

    parts = []
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        tick = ticks[i] if ticks else f"{100 * v:+.0f}%" if lo < 0 else f"{100 * v:.0f}%"
        parts.append(f'<line x1="{x(v):.1f}" y1="30" x2="{x(v):.1f}" y2="{height - 25}" stroke="#ddd"/>'
                     f'<text x="{x(v):.1f}" y="{height - 10}" font-size="11" text-anchor="middle">{tick}</text>')
    if lo < 0 < hi:
        parts.append(f'<line x1="{x(0):.1f}" y1="30" x2="{x(0):.1f}" y2="{height - 25}" stroke="#333" stroke-dasharray="4 3"/>')
    for i, (label, value, cl, ch, colour, text) in enumerate(rows):
        y = 40 + row_h * i
        parts.append(f'<text x="{left - 8}" y="{y + 16}" font-size="12" text-anchor="end">{html.escape(label)}</text>')
        if value is None:
            parts.append(f'<text x="{left}" y="{y + 16}" font-size="12">n/a</text>')
            continue
        if bars:
            parts.append(f'<rect class="bar" x="{x(max(lo, 0)):.1f}" y="{y + 4}" width="{max(0.0, x(value) - x(max(lo, 0))):.1f}" '
                         f'height="{row_h - 12}" fill="{colour}"/>')
        else:
            parts.append(f'<circle cx="{x(value):.1f}" cy="{y + 14}" r="5" fill="{colour}"/>')
        if cl is not None and ch is not None:
            parts.append(f'<line class="ci" x1="{x(cl):.1f}" y1="{y + 14}" x2="{x(ch):.1f}" y2="{y + 14}" stroke="#222" stroke-width="2"/>'
                         f'<line x1="{x(cl):.1f}" y1="{y + 8}" x2="{x(cl):.1f}" y2="{y + 20}" stroke="#222" stroke-width="2"/>'
                         f'<line x1="{x(ch):.1f}" y1="{y + 8}" x2="{x(ch):.1f}" y2="{y + 20}" stroke="#222" stroke-width="2"/>')
        parts.append(f'<text x="{min(x(value), right_x - 60) + 4:.1f}" y="{y + 30}" font-size="10">{html.escape(text)}</text>')
    return _svg(width, height, title, "".join(parts), chart_id)


def accuracy_svg(doc: RevisionComparison) -> str:
    rows = [(r.role, r.exact_match, r.exact_match_ci_low, r.exact_match_ci_high, COLOURS[r.role], fmt_pct(r.exact_match))
            for r in (doc.baseline, doc.candidate)]
    return _interval_chart("chart-accuracy", "Exact match (Wilson 95% CI)", rows, 0.0, 1.0)


def difference_svg(doc: RevisionComparison) -> str:
    c = doc.comparison
    m = max(0.1, abs(c.ci_low), abs(c.ci_high))
    m = math.ceil(m * 10) / 10
    rows = [("difference", c.difference, c.ci_low, c.ci_high, "#59a14f", _signed_pct(c.difference))]
    return _interval_chart("chart-difference", f"Candidate minus baseline exact match ({c.ci_method}): {c.verdict.value}",
                           rows, -m, m, bars=False)


def latency_svg(doc: RevisionComparison) -> str:
    edges, counts = histogram(doc)
    width, height, left, bottom, top = 640, 220, 50, 30, 30
    peak = max([1, *(max(v) for v in counts.values() if v)])
    plot_w, plot_h = width - left - 20, height - top - bottom
    bw = plot_w / HIST_BINS
    parts = []
    for j, role in enumerate(("baseline", "candidate")):
        for i, n in enumerate(counts[role]):
            if not n:
                continue
            h = plot_h * n / peak
            parts.append(f'<rect class="bar" x="{left + i * bw + j * bw / 2:.1f}" y="{top + plot_h - h:.1f}" '
                         f'width="{bw / 2 - 1:.1f}" height="{h:.1f}" fill="{COLOURS[role]}"/>')
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>')
    for i in (0, HIST_BINS // 2, HIST_BINS):
        parts.append(f'<text x="{left + i * bw:.1f}" y="{height - 10}" font-size="11" text-anchor="middle">{edges[i]:.0f} ms</text>')
    parts.append(f'<text x="{left - 6}" y="{top + 10}" font-size="11" text-anchor="end">{peak}</text>')
    for j, r in enumerate((doc.baseline, doc.candidate)):
        parts.append(f'<rect x="{width - 230}" y="{8 + 14 * j}" width="10" height="10" fill="{COLOURS[r.role]}"/>'
                     f'<text x="{width - 215}" y="{17 + 14 * j}" font-size="11">{r.role} p50 {fmt_ms(r.latency_p50_ms)} '
                     f'p95 {fmt_ms(r.latency_p95_ms)} ms</text>')
    return _svg(width, height, "Latency of answered cases", "".join(parts), "chart-latency")


def cost_svg(doc: RevisionComparison) -> str:
    vals = [r.cost_per_1k for r in (doc.baseline, doc.candidate)]
    top = max([v for v in vals if v is not None] or [0.0]) or 1.0
    rows = [(r.role, None if r.cost_per_1k is None else r.cost_per_1k / top, None, None, COLOURS[r.role], fmt_usd(r.cost_per_1k))
            for r in (doc.baseline, doc.candidate)]
    ticks = [fmt_usd(top * i / 4) for i in range(5)]
    return _interval_chart("chart-cost", "Cost per 1000 cases (USD)", rows, 0.0, 1.0, ticks=ticks)


def html_report(doc: RevisionComparison) -> str:
    """A self-contained page: verdict, table, four SVG charts, disagreements. No external assets."""
    e = html.escape
    c = doc.comparison
    head = "".join(f"<th>{e(x)}</th>" for x in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{e(x)}</td>" for x in _row(r)) + "</tr>" for r in (doc.baseline, doc.candidate))
    dis = "".join(
        f"<tr><td>{e(d.id)}</td><td>{e(_clip(d.input, 200))}</td><td><code>{e(_clip(_text(d.expected), 200))}</code></td>"
        f"<td><code>{e(_clip(d.baseline.output or f'<{d.baseline.error}>', 200))}</code></td>"
        f"<td><code>{e(_clip(d.candidate.output or f'<{d.candidate.error}>', 200))}</code></td></tr>"
        for d in doc.disagreements)
    notes = "".join(f"<p class=note>{e(n)}</p>" for n in ([f"stopped early: {doc.stopped}"] if doc.stopped else []) + doc.notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>modelroute eval: {e(doc.route)}: {e(c.verdict.value)}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;margin:1em 0}}
table{{font-size:0.9em}} td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}} td:first-child,th:first-child{{text-align:left}}
svg{{display:block;margin:1em 0;font-family:system-ui,sans-serif}} .note{{color:#666}} code{{white-space:pre-wrap}}
#verdict{{font-size:1.3em}}
</style></head><body>
<h1>modelroute eval: route <code>{e(doc.route)}</code></h1>
<p>dataset <code>{e(doc.dataset)}</code>: {doc.cases_run} of {doc.cases} cases through both revisions;
baseline <code>{e(doc.baseline.source)}</code> ({e(doc.baseline.revision)}), candidate <code>{e(doc.candidate.source)}</code> ({e(doc.candidate.revision)})</p>
<p id="verdict" data-verdict="{e(c.verdict.value)}"><b>{e(c.message)}</b></p>
<p>{e(summary_line(doc))}; pairs: both right {c.both_correct}, only baseline {c.baseline_only},
only candidate {c.candidate_only}, both wrong {c.both_wrong}</p>
<table id="revisions"><tr>{head}</tr>{body}</table>{notes}
{accuracy_svg(doc)}{difference_svg(doc)}{latency_svg(doc)}{cost_svg(doc)}
<h2>Cases answered differently: {doc.disagreements_total}</h2>
<table id="disagreements"><tr><th>case</th><th>input</th><th>expected</th><th>baseline</th><th>candidate</th></tr>{dis}</table>
</body></html>
"""


def png_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_png(doc: RevisionComparison, path: str | Path) -> None:
    """The same four charts as one PNG (matplotlib, Agg backend: no display, no network)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    revs = (doc.baseline, doc.candidate)
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), dpi=100)
    ax = axes[0][0]
    for i, r in enumerate(revs):
        if r.exact_match is None:
            continue
        lo, hi = r.exact_match_ci_low or 0.0, r.exact_match_ci_high or 0.0
        ax.barh(i, r.exact_match, color=COLOURS[r.role])
        xerr = [[max(0.0, r.exact_match - lo)], [max(0.0, hi - r.exact_match)]]   # matplotlib refuses -1e-16
        ax.errorbar(r.exact_match, i, xerr=xerr, fmt="none", ecolor="#222", capsize=5)
    ax.set_yticks([0, 1], [r.role for r in revs])
    ax.set_xlim(0, 1)
    ax.set_title("Exact match (Wilson 95% CI)")
    ax = axes[0][1]
    c = doc.comparison
    if c.difference is not None:
        ax.errorbar(c.difference, 0, xerr=[[c.difference - c.ci_low], [c.ci_high - c.difference]], fmt="o",
                    color="#59a14f", ecolor="#222", capsize=6)
    ax.axvline(0, color="#333", linestyle="--")
    ax.set_xlim(min(-0.1, c.ci_low) - 0.02, max(0.1, c.ci_high) + 0.02)
    ax.set_yticks([0], ["candidate - baseline"])
    ax.set_title(f"Difference ({c.ci_method}): {c.verdict.value}")
    ax = axes[1][0]
    edges, _ = histogram(doc)
    for r in revs:
        if r.latencies_ms:
            ax.hist(r.latencies_ms, bins=edges, alpha=0.6, color=COLOURS[r.role], label=f"{r.role} p95 {fmt_ms(r.latency_p95_ms)} ms")
    ax.set_xlabel("ms")
    ax.legend()
    ax.set_title("Latency of answered cases")
    ax = axes[1][1]
    ax.bar([r.role for r in revs], [r.cost_per_1k or 0.0 for r in revs], color=[COLOURS[r.role] for r in revs])
    ax.set_title("Cost per 1000 cases (USD)")
    fig.suptitle(f"modelroute eval: {doc.route}: {c.message}")
    fig.tight_layout()
    fig.savefig(str(path), format="png")
    plt.close(fig)
