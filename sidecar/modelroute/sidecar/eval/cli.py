"""``modelroute eval``: compare a route's targets on a golden dataset (subcommand module).

``configure(parser)`` / ``run(args) -> int``, like every ``modelroute`` subcommand.
Exit codes: 0 done, 2 bad input (config, dataset, prices, unknown route or target).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from modelroute.api.v1alpha1 import ModelRoute
from modelroute.sidecar.config import loader
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.eval import dataset, prices, report
from modelroute.sidecar.eval.progress import Progress
from modelroute.sidecar.eval.runner import run_route
from modelroute.sidecar.eval.scoring import Outcome


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", action="append", required=True, metavar="FILE", help="ModelRoute YAML or JSON file (repeatable)")
    parser.add_argument("--route", required=True, help="route name (spec.route) or ModelRoute name to evaluate")
    parser.add_argument("--dataset", required=True, metavar="JSONL", help="cases: {input, expected, schema?} per line")
    parser.add_argument("--target", action="append", metavar="NAME", help="only these targets (repeatable; default: all)")
    parser.add_argument("--prices", metavar="YAML", help="USD per million tokens per model or target: {name: {input, output}} (wins over the targets' pricing and the built-in prices)")
    parser.add_argument("--concurrency", type=int, default=4, help="cases in flight per target (default 4)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--report", metavar="HTML", help="also write a self-contained HTML report with charts")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def find_route(routes: list[ModelRoute], name: str) -> ModelRoute | None:
    """The route whose ``spec.route`` is ``name``, else the ModelRoute named ``name``."""
    return next((r for r in routes if r.spec.route == name), None) or next(
        (r for r in routes if r.metadata.name == name), None)


INPUT_ERRORS = (loader.ConfigError, dataset.DatasetError, prices.PriceError)


def input_error(e: Exception) -> str:
    """What is wrong with a config, dataset or price file (one of ``INPUT_ERRORS``)."""
    if isinstance(e, loader.ConfigError):
        return "invalid config:\n  " + "\n  ".join(e.problems)
    if isinstance(e, dataset.DatasetError):
        return "invalid dataset:\n  " + "\n  ".join(e.problems)
    return f"invalid prices: {e}"


def run(args: argparse.Namespace) -> int:
    keys = KeyResolver()
    try:
        config = loader.load(args.config, keys)
        cases = dataset.load(args.dataset)
        table = prices.load(args.prices) if args.prices else None
    except INPUT_ERRORS as e:
        print(f"error: {input_error(e)}", file=sys.stderr)
        return 2
    route = find_route(list(config.routes), args.route)
    if route is None:
        known = ", ".join(sorted(r.spec.route for r in config.routes))
        print(f"error: no route {args.route!r} in the config (known: {known})", file=sys.stderr)
        return 2
    names = [t.name for t in route.spec.targets]
    unknown = [t for t in args.target or () if t not in names]
    if unknown:
        print(f"error: route {route.spec.route!r} has no target {', '.join(map(repr, unknown))} (targets: {', '.join(names)})", file=sys.stderr)
        return 2
    chosen = args.target or names
    bars: dict[str, Progress] = {}

    def progress(target: str, outcome: Outcome) -> None:
        if args.quiet:
            return
        bar = bars.get(target)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[target] = Progress(len(cases), f"{route.spec.route} -> {target}")
        bar.advance(error=outcome.error is not None)

    runs = asyncio.run(run_route(route, cases, keys.source_for, targets=chosen, concurrency=args.concurrency,
                                 prices=table, progress=progress))
    for bar in bars.values():
        bar.close()
    if args.json:
        print(json.dumps(report.as_json(route.spec.route, args.dataset, runs), indent=2))
    else:
        sys.stdout.write(report.table([r.summary for r in runs]))
    if args.report:
        Path(args.report).write_text(report.html_report(route.spec.route, args.dataset, runs), encoding="utf-8")
        print(f"report written to {args.report}", file=sys.stderr)
    return 0
