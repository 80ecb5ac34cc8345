"""``kubectl modelroute eval NAME --candidate proposed.yaml --dataset golden.jsonl``: compare revisions in the cluster.

Why through the cluster: the provider keys live in the sidecars, and the sidecar runs an eval only
when the operator signs it. This command never sees a key or the signing key: it checks the
candidate and the dataset here (errors name the file, line and field), writes a ModelRouteEval
(``modelroute.api.v1alpha1.modelrouteeval``) holding them, watches it until the operator has
written the result (the same ``RevisionComparison`` as ``modelroute eval --json``), prints it with
the local command's renderer (``evalcmd.emit``: table, ``--json``, ``--report``) and deletes the
object (``--keep`` leaves it, until the operator deletes it a day later: ``ttlSecondsAfterFinished``).
The dataset travels in the object: at most ``MAX_EVAL_CASES`` cases and ``MAX_EVAL_BYTES`` of JSON.

Exit codes: 0 done (whatever the verdict), 2 bad input, 1 the cluster or the run failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from modelroute.api.evaluation import RevisionComparison
from modelroute.api.v1alpha1 import API_VERSION, GROUP, PLURAL, VERSION
from modelroute.api.v1alpha1.modelrouteeval import (
    EVAL_KIND,
    EVAL_PLURAL,
    MAX_EVAL_BYTES,
    MAX_EVAL_CASES,
    EvalPhase,
)
from modelroute.sidecar.eval import dataset, stats

DEFAULT_TIMEOUT_SECONDS = 660.0   # the operator waits up to 600 s for the sidecar


class BadInput(Exception):
    pass


class RunFailed(Exception):
    pass


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the live ModelRoute (its stable revision is the baseline)")
    p.add_argument("--candidate", required=True, metavar="FILE", help="the proposed ModelRoute (a YAML or JSON file)")
    p.add_argument("--dataset", required=True, metavar="JSONL",
                   help=f"cases: {{input, expected, schema?}} per line (at most {MAX_EVAL_CASES} cases, {MAX_EVAL_BYTES // 1024} KiB)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (modelroute eval --json's schema)")
    p.add_argument("--report", metavar="HTML", help="also write a self-contained HTML report with charts")
    p.add_argument("--png", metavar="PNG", help="where to write the charts as PNG (default: next to --report)")
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals (default 0.95)")
    p.add_argument("--min-cases", type=int, default=stats.MIN_PAIRED_CASES,
                   help=f"scored pairs needed before a winner is named (default {stats.MIN_PAIRED_CASES})")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds to wait for the result")
    p.add_argument("--keep", action="store_true",
                   help="leave the ModelRouteEval object in the cluster (the operator deletes it a day after it finished)")


# ---- pure parts -------------------------------------------------------------------------------


def candidate_spec(path: str, name: str) -> dict[str, Any]:
    """The candidate ModelRoute's spec (wire form) from ``path``: the one ModelRoute there, or the one named ``name``."""
    # Imported here, not at the top, so `kubectl modelroute get` does not load the config loader.
    from modelroute.sidecar.config import loader
    from modelroute.sidecar.eval import cli as targets_cli

    try:
        config = loader.load([path], None)
    except loader.ConfigError as e:
        raise BadInput(f"candidate {path}: {targets_cli.input_error(e)}") from None
    routes = list(config.routes)
    route = routes[0] if len(routes) == 1 else targets_cli.find_route(routes, name)
    if route is None:
        raise BadInput(f"candidate {path}: {len(routes)} ModelRoutes and none named {name!r}")
    return route.spec.wire()


def dataset_cases(path: str) -> list[dict[str, Any]]:
    """The dataset's cases as JSON objects, checked like the local command checks them (file:line: field problem)."""
    from modelroute.sidecar.eval import cli as targets_cli

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise BadInput(f"dataset {path}: cannot read it ({type(e).__name__}: {e.strerror or e})") from None
    lines = text.splitlines()
    try:
        dataset.parse_lines(lines, path)
    except dataset.DatasetError as e:
        raise BadInput(targets_cli.input_error(e)) from None
    cases = [json.loads(t) for t in (line.strip() for line in lines) if t and not t.startswith("#")]
    if len(cases) > MAX_EVAL_CASES:
        raise BadInput(f"dataset {path}: {len(cases)} cases; an in-cluster eval takes at most {MAX_EVAL_CASES} "
                       "(run `modelroute eval` locally for more)")
    size = len(json.dumps(cases, separators=(",", ":")))
    if size > MAX_EVAL_BYTES:
        raise BadInput(f"dataset {path}: {size} bytes of JSON; an in-cluster eval takes at most {MAX_EVAL_BYTES}")
    return cases


def eval_object(name: str, spec: dict[str, Any], cases: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """The ModelRouteEval the command creates."""
    return {
        "apiVersion": API_VERSION, "kind": EVAL_KIND,
        "metadata": {"generateName": f"{name[:40]}-eval-", "labels": {"modelroute.dev/modelroute": name[:63]}},
        "spec": {"modelRoute": name, "candidate": spec, "candidateSource": args.candidate[-1024:],
                 "dataset": args.dataset[-1024:], "cases": cases, "confidence": args.confidence, "minCases": args.min_cases},
    }


def outcome(obj: dict[str, Any]) -> RevisionComparison | None:
    """The result once the run ended (None while it runs); ``RunFailed`` with the operator's message."""
    status = obj.get("status") or {}
    phase = status.get("phase")
    if phase == EvalPhase.FAILED.value:
        raise RunFailed(str(status.get("message") or "failed (no message)"))
    if phase != EvalPhase.SUCCEEDED.value:
        return None
    try:
        return RevisionComparison.model_validate(status.get("result") or {})
    except ValidationError as e:
        raise RunFailed(f"unreadable result in the status: {e.errors()[0].get('msg')}") from None


# ---- kubernetes I/O ---------------------------------------------------------------------------


def _wait(api: Any, namespace: str, created: dict[str, Any], timeout: float) -> RevisionComparison:
    from kubernetes import watch

    name = created["metadata"]["name"]
    deadline = time.monotonic() + timeout
    obj, version = created, created["metadata"].get("resourceVersion")
    while True:
        done = outcome(obj)
        if done is not None:
            return done
        left = deadline - time.monotonic()
        if left <= 0:
            phase = (obj.get("status") or {}).get("phase") or "not picked up (is the operator running?)"
            raise RunFailed(f"no result within {timeout:g}s ({EVAL_KIND} {namespace}/{name}: {phase})")
        w = watch.Watch()  # type: ignore[no-untyped-call]
        for event in w.stream(  # type: ignore[no-untyped-call]
            api.list_namespaced_custom_object, GROUP, VERSION, namespace, EVAL_PLURAL,
            field_selector=f"metadata.name={name}", resource_version=version, timeout_seconds=max(1, int(min(left, 30))),
        ):
            if event.get("type") == "DELETED":
                raise RunFailed(f"{EVAL_KIND} {namespace}/{name} was deleted before it finished")
            if event.get("type") == "ERROR":   # e.g. 410 Gone: read it again
                obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, EVAL_PLURAL, name)
                version = obj["metadata"].get("resourceVersion")
                break
            obj = event["object"]
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if outcome(obj) is not None:
                w.stop()  # type: ignore[no-untyped-call]
                break


def run(api: Any, namespace: str, args: argparse.Namespace) -> int:
    """``kubectl modelroute eval``: returns the exit code."""
    try:
        if not 0 < args.confidence < 1:
            raise BadInput("--confidence must be between 0 and 1")
        spec = candidate_spec(args.candidate, args.name)
        cases = dataset_cases(args.dataset)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name)   # 404: unknown route
    created = api.create_namespaced_custom_object(GROUP, VERSION, namespace, EVAL_PLURAL, eval_object(args.name, spec, cases, args))
    name = created["metadata"]["name"]
    print(f"{EVAL_KIND} {namespace}/{name}: {len(cases)} cases through the live and the candidate revision...", file=sys.stderr)
    try:
        doc = _wait(api, namespace, created, args.timeout)
    except RunFailed as e:
        print(f"error: eval of modelroute {namespace}/{args.name} failed: {e}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            _delete(api, namespace, name)
    from modelroute.cli import evalcmd

    evalcmd.emit(doc, as_json=args.json, report=args.report, png=args.png)
    return 0


def _delete(api: Any, namespace: str, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        api.delete_namespaced_custom_object(GROUP, VERSION, namespace, EVAL_PLURAL, name)
    except ApiException as e:
        print(f"note: could not delete {EVAL_KIND} {namespace}/{name} ({e.status} {e.reason})", file=sys.stderr)
