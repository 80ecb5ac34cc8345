"""``modelroute eval``: compare two revisions of a route (or, with ``--config``, a route's targets).

Why in cli/: a revision may come from the cluster (``--baseline-from-cluster NS/NAME``), and
only this layer may talk to Kubernetes; the running and the numbers are the sidecar's eval
package (``revisions``, ``compare``, ``stats``, ``compare_report``).

    modelroute eval --baseline current.yaml --candidate proposed.yaml --route classify \\
        --dataset golden.jsonl [--json] [--report out.html] [--max-cost 2.50]

Exit codes: 0 done (whatever the verdict), 2 bad input (files, dataset, prices, route, an
estimate over ``--max-cost``), 1 the cluster could not be read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from modelroute.api.evaluation import RevisionComparison
from modelroute.sidecar.config import loader
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.eval import cli as targets_cli
from modelroute.sidecar.eval import compare, compare_report, dataset, prices, revisions, stats
from modelroute.sidecar.eval.progress import Progress
from modelroute.sidecar.eval.scoring import Outcome


class BadInput(Exception):
    pass


class ClusterUnavailable(Exception):
    """The kubeconfig or the API server did not give the ModelRoute."""


def configure(parser: argparse.ArgumentParser) -> None:
    rev = parser.add_argument_group("comparing two revisions")
    rev.add_argument("--baseline", metavar="FILE", help="the current ModelRoute (a YAML or JSON file)")
    rev.add_argument("--candidate", metavar="FILE", help="the proposed ModelRoute (a YAML or JSON file)")
    rev.add_argument("--baseline-from-cluster", metavar="NAMESPACE/NAME", help="read the baseline ModelRoute from the cluster")
    rev.add_argument("--candidate-from-cluster", metavar="NAMESPACE/NAME", help="read the candidate ModelRoute from the cluster")
    rev.add_argument("--max-cost", type=float, metavar="USD",
                     help="refuse to start when the estimated cost of both revisions exceeds this; stop before crossing it")
    rev.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals (default 0.95)")
    rev.add_argument("--ci-method", choices=compare.CI_METHODS, default=compare.CI_METHODS[0],
                     help="interval of the accuracy difference (default newcombe-paired)")
    rev.add_argument("--seed", type=int, default=0, help="seed of the paired bootstrap (default 0)")
    rev.add_argument("--min-cases", type=int, default=stats.MIN_PAIRED_CASES,
                     help=f"scored pairs needed before a winner is named (default {stats.MIN_PAIRED_CASES})")
    rev.add_argument("--png", metavar="PNG", help="where to write the charts as PNG (default: next to --report)")
    rev.add_argument("--kubeconfig", help="kubeconfig for --*-from-cluster (default: $KUBECONFIG, then ~/.kube/config)")
    rev.add_argument("--context", help="kubeconfig context for --*-from-cluster")
    tgt = parser.add_argument_group("comparing the targets of one route")
    tgt.add_argument("--config", action="append", metavar="FILE", help="ModelRoute YAML or JSON file (repeatable)")
    tgt.add_argument("--target", action="append", metavar="NAME", help="only these targets (repeatable; default: all)")
    parser.add_argument("--route", required=True, help="route name (spec.route) or ModelRoute name to evaluate")
    parser.add_argument("--dataset", required=True, metavar="JSONL", help="cases: {input, expected, schema?} per line")
    parser.add_argument("--prices", metavar="YAML", help="USD per million tokens per model or target: {name: {input, output}}")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--report", metavar="HTML", help="also write a self-contained HTML report with charts")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _cluster_doc(ref: str, args: argparse.Namespace) -> str:
    """The ModelRoute NAMESPACE/NAME from the cluster, as YAML text (metadata and spec only)."""
    namespace, _, name = ref.partition("/")
    if not namespace or not name or "/" in name:
        raise BadInput(f"{ref!r}: expected NAMESPACE/NAME")
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from modelroute.api.v1alpha1 import GROUP, PLURAL, VERSION

    try:
        config.load_kube_config(config_file=args.kubeconfig, context=args.context)  # type: ignore[no-untyped-call]
        obj: Any = client.CustomObjectsApi().get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except config.ConfigException as e:
        raise ClusterUnavailable(f"no usable kubeconfig: {e}") from None
    except ApiException as e:
        what = "not found" if e.status == 404 else f"{e.status} {e.reason or 'error'}"
        raise ClusterUnavailable(f"modelroute {namespace}/{name}: {what}") from None
    except HTTPError as e:
        raise ClusterUnavailable(f"API server unreachable ({type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise BadInput(f"{ref}: the API server returned no object")
    doc = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
           "metadata": {"name": name, "namespace": namespace}, "spec": obj.get("spec")}
    return yaml.safe_dump(doc)


def _revision(role: str, path: str | None, ref: str | None, args: argparse.Namespace, keys: KeyResolver) -> revisions.Revision:
    if (path is None) == (ref is None):
        raise BadInput(f"give exactly one of --{role} FILE and --{role}-from-cluster NAMESPACE/NAME")
    source = path if path is not None else f"cluster:{ref}"
    try:
        config = loader.load([path], keys) if path is not None else loader.load_text(_cluster_doc(str(ref), args), source, keys)
    except loader.ConfigError as e:
        raise BadInput(f"{role} {source}: {targets_cli.input_error(e)}") from None
    route = targets_cli.find_route(list(config.routes), args.route)
    if route is None:
        known = ", ".join(sorted(r.spec.route for r in config.routes))
        raise BadInput(f"{role} {source}: no route {args.route!r} (known: {known})")
    return revisions.Revision(role, source, route)


def _progress(total: int, enabled: bool) -> tuple[Progress | None, revisions.ProgressFn | None]:
    if not enabled or not sys.stderr.isatty():
        return None, None
    bar = Progress(total, "baseline + candidate")

    def advance(role: str, outcome: Outcome) -> None:
        bar.advance(error=outcome.error is not None)

    return bar, advance


def run_revisions(args: argparse.Namespace) -> int:
    keys = KeyResolver()
    try:
        if not 0 < args.confidence < 1:
            raise BadInput("--confidence must be between 0 and 1")
        if args.max_cost is not None and args.max_cost < 0:
            raise BadInput("--max-cost must not be negative")
        base = _revision("baseline", args.baseline, args.baseline_from_cluster, args, keys)
        cand = _revision("candidate", args.candidate, args.candidate_from_cluster, args, keys)
        cases = dataset.load(args.dataset)
        table = prices.load(args.prices) if args.prices else None
        estimate = revisions.estimate_cost([base.route, cand.route], cases, table)
        if args.max_cost is not None:
            if estimate is None:
                raise BadInput("--max-cost needs a price for every target (spec.targets[].pricing, --prices, "
                               "or a model with a built-in price)")
            if estimate > args.max_cost:
                raise BadInput(f"estimated cost {estimate:.4f} USD for {len(cases)} cases through both revisions exceeds "
                               f"--max-cost {args.max_cost:g} USD; nothing was sent")
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (dataset.DatasetError, prices.PriceError) as e:
        print(f"error: {targets_cli.input_error(e)}", file=sys.stderr)
        return 2
    bar, progress = _progress(2 * len(cases), not args.quiet)
    try:
        b, c, stopped = asyncio.run(revisions.compare_revisions(
            base, cand, cases, keys.source_for, concurrency=args.concurrency, prices=table,
            max_cost=args.max_cost, progress=progress))
    finally:
        if bar is not None:
            bar.close()
    doc = compare.build(args.route, args.dataset, cases, b, c, confidence=args.confidence, ci_method=args.ci_method,
                        seed=args.seed, min_cases=args.min_cases, stopped=stopped, max_cost=args.max_cost,
                        estimated_cost=estimate)
    emit(doc, as_json=args.json, report=args.report, png=args.png)
    return 0


def emit(doc: RevisionComparison, *, as_json: bool, report: str | None, png: str | None) -> None:
    """The comparison as a table or JSON on stdout, and the HTML (and PNG) report when asked
    (also what ``kubectl modelroute eval`` prints of the in-cluster run)."""
    if as_json:
        print(json.dumps(compare.as_json(doc), indent=2))
    else:
        sys.stdout.write(compare_report.table(doc))
    if report:
        Path(report).write_text(compare_report.html_report(doc), encoding="utf-8")
        png_path = png or str(Path(report).with_suffix(".png"))
        written = [report]
        if compare_report.png_available():
            compare_report.write_png(doc, png_path)
            written.append(png_path)
        else:
            print("note: no PNG: matplotlib is not installed (pip install 'modelroute[report]')", file=sys.stderr)
        print(f"report written to {' and '.join(written)}", file=sys.stderr)
    elif png and compare_report.png_available():
        compare_report.write_png(doc, png)


def run(args: argparse.Namespace) -> int:
    revision_flags = (args.baseline, args.candidate, args.baseline_from_cluster, args.candidate_from_cluster)
    if any(f is not None for f in revision_flags):
        if args.config or args.target:
            print("error: --config/--target compare one route's targets; --baseline/--candidate compare two revisions: "
                  "not both", file=sys.stderr)
            return 2
        try:
            return run_revisions(args)
        except ClusterUnavailable as e:
            print(f"error: cannot read the cluster: {e}", file=sys.stderr)
            return 1
    if not args.config:
        print("error: give --baseline and --candidate (two revisions), or --config (the targets of one route)", file=sys.stderr)
        return 2
    return targets_cli.run(args)
