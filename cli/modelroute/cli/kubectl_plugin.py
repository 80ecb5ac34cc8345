"""``kubectl modelroute``: act on and watch ModelRoute rollouts (a kubectl plugin).

Installed as the console script ``kubectl-modelroute``, so ``kubectl modelroute ...`` finds it
on ``PATH``. kubectl does not pass its own flags to plugins, so this one reads
``--kubeconfig``, ``--context`` and ``-n/--namespace`` itself and honours ``KUBECONFIG`` the way
kubectl does (falling back to the in-cluster service account).

* ``promote|abort|retry|pause|resume NAME`` write the ``modelroute.dev/action`` annotation
  (``VERB:NONCE``) with one merge patch; the operator applies it once and records it in
  ``status.rollout.lastAction`` (see ``modelroute.operator.rollout.actions``).
  ``promote --full`` skips every remaining step.
* ``get NAME [--watch]`` renders steps (current one marked), weights, the analysis table and
  the message; with ``--watch`` it re-renders on every watch event (and every few seconds, so
  countdowns stay true).
* ``quota [NAME]`` shows ProviderQuotas: used/limit, the pressure condition and each pod's lease.
* ``eval NAME --candidate proposed.yaml --dataset golden.jsonl`` compares the live revision with a
  candidate through a sidecar of the route (``kubectl_eval``: a ModelRouteEval the operator runs).

Rendering is a pure function of the object and the time (``render``), tested without a cluster.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from modelroute.api.v1alpha1 import GROUP, PLURAL, VERSION
from modelroute.api.v1alpha1.providerquota import QUOTA_PLURAL, ProviderQuotaStatus
from modelroute.api.v1alpha1.strategy import (
    ACTION_ANNOTATION,
    UPPER_BOUNDS,
    GateRevisionResult,
    MetricResult,
    PauseReason,
    RolloutStatus,
    Strategy,
    format_duration,
)

RATIO_CAP = 1e6  # how the operator writes an infinite ratio (JSON has no infinity)
VERBS = ("promote", "abort", "retry", "pause", "resume")
WATCH_REFRESH_SECONDS = 5
_CLEAR = "\x1b[H\x1b[2J"


# ---- pure parts -------------------------------------------------------------------------------


def action_value(verb: str, *, full: bool = False, nonce: str | None = None) -> str:
    """The annotation value for a verb: ``promote:3f2a...`` (``promote-full`` with ``full``)."""
    if verb not in VERBS:
        raise ValueError(f"unknown action {verb!r}")
    name = "promote-full" if full and verb == "promote" else verb
    return f"{name}:{nonce or uuid.uuid4().hex[:12]}"


def action_patch(value: str) -> dict[str, Any]:
    """The merge patch that asks the operator for an action."""
    return {"metadata": {"annotations": {ACTION_ANNOTATION: value}}}


def _ago(then: datetime | None, now: datetime) -> str:
    return "-" if then is None else format_duration((now - then).total_seconds()) + " ago"


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    if v == int(v):
        return str(int(v))
    return f"{v:.4g}"


def _bound(name: str) -> str:
    return "<=" if name in UPPER_BOUNDS else ">="


def analysis_table(metrics: Sequence[MetricResult]) -> list[str]:
    """The analysis as aligned text rows: metric, value, threshold, samples, verdict."""
    rows = [("METRIC", "VALUE", "THRESHOLD", "SAMPLES", "VERDICT")]
    for m in metrics:
        value = "inf" if m.name.endswith("Ratio") and (m.value or 0) >= RATIO_CAP else _num(m.value)
        rows.append((m.name, value, f"{_bound(m.name)} {_num(m.threshold)}", str(m.samples), m.verdict.value))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def revisions_table(revisions: Sequence[GateRevisionResult]) -> list[str]:
    """Each revision's numbers on the golden dataset (candidate and stable, for relative thresholds)."""
    rows = [("REVISION", "ROLE", "CASES", "ERRORS", "EXACT", "VALID", "P95")]
    for r in revisions:
        rows.append((r.revision or "-", r.role, str(r.cases), str(r.errors), _num(r.exact_match),
                     _num(r.valid_output_rate), "-" if r.latency_p95_seconds is None else f"{r.latency_p95_seconds:.3g}s"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _parse(model: Any, data: Any) -> Any:
    if not isinstance(data, Mapping):
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def render(obj: Mapping[str, Any], now: datetime) -> str:
    """The live view of one ModelRoute's rollout as plain text (the raw object from the API)."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    strategy: Strategy | None = _parse(Strategy, spec.get("strategy"))
    ro: RolloutStatus | None = _parse(RolloutStatus, status.get("rollout"))
    out = [
        f"Name:       {meta.get('name', '?')}",
        f"Namespace:  {meta.get('namespace', '-')}",
        f"Route:      {spec.get('route', '-')}",
    ]
    pods = status.get("pods") or {}
    if pods:
        out.append(f"Pods:       selected {pods.get('selected', 0)}, synced {pods.get('synced', 0)}, failed {pods.get('failed', 0)}")
    if ro is None:
        out.append(f"Status:     {status.get('phase', 'Unknown')} (no rollout recorded yet)")
        if strategy is None:
            out.append("Strategy:   none: changes apply at once")
        return "\n".join(out) + "\n"
    out.append(f"Status:     {ro.phase.value}")
    out.append(f"Message:    {ro.message or '-'}")
    out.append(f"Stable:     {ro.stable_revision or '-'}")
    if ro.canary_revision:
        out.append(f"Canary:     {ro.canary_revision} (attempt {ro.attempt + 1})")
    w = ro.weights
    served = "served by every selected sidecar" if ro.acked else "being pushed"
    out.append(f"Weights:    stable {w.stable}%  canary {w.canary}%  mirror {w.mirror}%  ({served})")
    for p in ro.pause_conditions:
        extra = f" ({p.duration})" if p.duration else ""
        out.append(f"Paused:     {p.reason.value}{extra}, started {_ago(p.start_time, now)}")
    canary = strategy.canary if strategy else None
    if canary is not None:
        out.append("")
        out.append("Steps:")
        current = ro.current_step_index if ro.canary_revision and ro.phase.value != "Degraded" else None
        for i, st in enumerate(canary.steps):
            mark, note = "   ", ""
            if ro.canary_revision and ro.current_step_index is not None and i < ro.current_step_index:
                mark = " ✓ "
            if current == i:
                mark = " ▶ "
                note = f"   <- current, started {_ago(ro.step_start_time, now)}"
                if ro.phase.value == "Paused" and any(p.reason is PauseReason.PAUSE_STEP for p in ro.pause_conditions):
                    note = f"   <- current, paused {_ago(ro.step_start_time, now)}"
            if ro.phase.value == "Degraded" and i == ro.current_step_index:
                mark, note = " ✗ ", "   <- aborted here"
            out.append(f"{mark}{i + 1:>2}  {st.describe()}{note}")
        if current is not None and current >= len(canary.steps):
            out.append(" ▶     promotion (waiting for the final verdict)")
    if ro.gate is not None:
        out.append("")
        out.append(f"Gate:       {ro.gate.verdict.value}  {ro.gate.message}")
        if ro.gate.metrics:
            out += analysis_table(ro.gate.metrics)
        if len(ro.gate.revisions) > 1:
            out += revisions_table(ro.gate.revisions)
    if ro.analysis is not None:
        a = ro.analysis
        limit = canary.analysis.failure_limit if canary is not None and canary.analysis is not None else None
        failures = f"{a.failures}" + (f" (aborts at {limit + 1})" if limit is not None else "")
        out.append("")
        out.append(f"Analysis:   {a.verdict.value}, {_ago(a.time, now)}, failures {failures}")
        out += analysis_table(a.metrics)
    return "\n".join(out) + "\n"


def render_quota(obj: Mapping[str, Any], now: datetime) -> str:
    """One ProviderQuota as plain text: limits, usage, pressure and each pod's lease (the raw object from the API)."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    status: ProviderQuotaStatus | None = _parse(ProviderQuotaStatus, obj.get("status"))
    limits = spec.get("limits") or {}
    out = [
        f"Name:       {meta.get('namespace', '-')}/{meta.get('name', '?')}",
        f"Provider:   {spec.get('provider', '-')}  key {_key(spec.get('apiKey'))}"
        + (f"  models {', '.join(spec['models'])}" if spec.get("models") else ""),
    ]
    if status is None:
        out.append("Status:     not written yet (is the operator running, and does a pod use the key?)")
        return "\n".join(out) + "\n"
    out.append(f"Tokens:     {status.tokens or '-'} per minute" + (f"  (budget {limits['dailyTokens']}/day)" if limits.get("dailyTokens") else ""))
    out.append(f"Requests:   {status.requests or '-'} per minute")
    for c in status.conditions:
        out.append(f"{c.type}: {c.status.value} ({c.reason}) {c.message}")
    out.append(f"Pods:       {status.pods}")
    rows = [("POD", "RPM", "TPM", "DEMAND TPM", "GENERATION", "EXPIRES")]
    for lease in status.leases:
        expires = "-" if lease.expires_at is None else (
            "in " + format_duration((lease.expires_at - now).total_seconds()) if lease.expires_at > now else "expired")
        rows.append((lease.pod, _num(lease.requests_per_minute), _num(lease.tokens_per_minute), _num(lease.demand_tokens),
                     str(lease.generation), expires))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out) + "\n"


def _key(ref: Any) -> str:
    if not isinstance(ref, Mapping):
        return "-"
    if isinstance(ref.get("secretKeyRef"), Mapping):
        return f"secret {ref['secretKeyRef'].get('name')}/{ref['secretKeyRef'].get('key')}"
    return next((f"{k} {v}" for k, v in ref.items()), "-")


# ---- kubernetes I/O ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubectl modelroute", description="Act on and watch ModelRoute rollouts.")
    p.add_argument("--kubeconfig", help="path of the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context to use")
    p.add_argument("-n", "--namespace", help="namespace (default: the context's, else 'default')")
    sub = p.add_subparsers(dest="verb", metavar="COMMAND", required=True)
    for verb, help_text in (
        ("promote", "finish the current step (a pause, an inconclusive verdict) and go on; --full skips all steps"),
        ("abort", "send all traffic back to stable now; phase Degraded"),
        ("retry", "start an aborted rollout again from the first step"),
        ("pause", "hold the rollout at its current step"),
        ("resume", "continue a paused rollout (after Inconclusive: wait for more evidence)"),
    ):
        sp = sub.add_parser(verb, help=help_text, description=help_text)
        sp.add_argument("name", help="ModelRoute name")
        if verb == "promote":
            sp.add_argument("--full", action="store_true", help="skip every remaining step and analysis")
    g = sub.add_parser("get", help="show a rollout: steps, weights, analysis", description="show a rollout: steps, weights, analysis")
    g.add_argument("name", help="ModelRoute name")
    g.add_argument("-w", "--watch", action="store_true", help="keep the view live")
    q = sub.add_parser("quota", help="show ProviderQuotas: used/limit and each pod's lease",
                       description="show ProviderQuotas: used/limit and each pod's lease")
    q.add_argument("name", nargs="?", help="ProviderQuota name (default: every one in the namespace)")
    e = sub.add_parser("eval", help="compare the live revision with a candidate spec on a dataset, in the cluster",
                       description="compare the live revision with a candidate spec on a golden dataset, through a sidecar of the "
                                   "route (the operator signs the run; no provider key leaves the pod)")
    from modelroute.cli import kubectl_eval

    kubectl_eval.configure(e)
    return p


def _connect(args: argparse.Namespace) -> tuple[Any, str]:
    """(CustomObjectsApi, namespace) from kubeconfig/context/namespace flags, like kubectl."""
    from kubernetes import client, config

    path = args.kubeconfig or os.environ.get("KUBECONFIG") or None
    namespace = args.namespace
    try:
        config.load_kube_config(config_file=path, context=args.context)  # type: ignore[no-untyped-call]
        if namespace is None:
            _, active = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
            if args.context:
                contexts, _ = config.list_kube_config_contexts(config_file=path)  # type: ignore[no-untyped-call]
                active = next((c for c in contexts if c.get("name") == args.context), active)
            namespace = ((active or {}).get("context") or {}).get("namespace")
    except config.ConfigException:
        if path or args.context:
            raise
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        try:
            with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                namespace = namespace or f.read().strip()
        except OSError:
            pass
    return client.CustomObjectsApi(), namespace or "default"


def _act(api: Any, namespace: str, args: argparse.Namespace) -> int:
    value = action_value(args.verb, full=getattr(args, "full", False))
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name, action_patch(value))
    what = "promote (full)" if value.startswith("promote-full") else args.verb
    print(f"modelroute {namespace}/{args.name}: {what} requested ({ACTION_ANNOTATION}={value})")
    return 0


def _show(text: str, clear: bool) -> None:
    sys.stdout.write((_CLEAR if clear else "") + text)
    sys.stdout.flush()


def _get(api: Any, namespace: str, args: argparse.Namespace) -> int:
    obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name)
    if not args.watch:
        _show(render(obj, datetime.now(UTC)), False)
        return 0
    from kubernetes import watch

    clear = sys.stdout.isatty()
    version = obj.get("metadata", {}).get("resourceVersion")
    _show(render(obj, datetime.now(UTC)), clear)
    while True:
        w = watch.Watch()  # type: ignore[no-untyped-call]
        for event in w.stream(  # type: ignore[no-untyped-call]
            api.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
            field_selector=f"metadata.name={args.name}", resource_version=version, timeout_seconds=WATCH_REFRESH_SECONDS,
        ):
            if event.get("type") == "DELETED":
                _show(f"modelroute {namespace}/{args.name} was deleted\n", False)
                return 0
            if event.get("type") == "ERROR":   # e.g. 410 Gone: start over from a fresh read
                version = None
                break
            obj = event["object"]
            version = obj.get("metadata", {}).get("resourceVersion", version)
            _show(render(obj, datetime.now(UTC)), clear)
        else:
            _show(render(obj, datetime.now(UTC)), clear)   # no change: refresh countdowns
        if version is None:
            obj = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, args.name)
            version = obj.get("metadata", {}).get("resourceVersion")
            time.sleep(0.2)


def _quota(api: Any, namespace: str, args: argparse.Namespace) -> int:
    if args.name:
        items = [api.get_namespaced_custom_object(GROUP, VERSION, namespace, QUOTA_PLURAL, args.name)]
    else:
        items = api.list_namespaced_custom_object(GROUP, VERSION, namespace, QUOTA_PLURAL).get("items") or []
    if not items:
        print(f"no ProviderQuotas in namespace {namespace}")
    now = datetime.now(UTC)
    _show("\n".join(render_quota(obj, now) for obj in items), False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException

    try:
        api, namespace = _connect(args)
        if args.verb == "get":
            return _get(api, namespace, args)
        if args.verb == "quota":
            return _quota(api, namespace, args)
        if args.verb == "eval":
            from modelroute.cli import kubectl_eval

            return kubectl_eval.run(api, namespace, args)
        return _act(api, namespace, args)
    except ApiException as e:
        reason = "not found" if e.status == 404 else (e.reason or "error")
        kind = "providerquota" if args.verb == "quota" else "modelroute"
        if args.verb == "eval" and e.status != 404:
            kind = "modelroute eval of"
        print(f"error: {kind} {args.name or '(all)'}: {e.status} {reason}", file=sys.stderr)
        return 1
    except ConfigException as e:
        print(f"error: no usable kubeconfig: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
