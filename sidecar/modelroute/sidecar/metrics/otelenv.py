"""Which OpenTelemetry signals the ``OTEL_*`` variables ask for, read without importing OpenTelemetry.

Why a module of its own: most pods export nothing, and importing ``telemetry`` (the OpenTelemetry
API, its context and propagators) costs ~30 ms of CPU at every sidecar start. ``cli`` asks here
first and imports ``telemetry`` only when a signal is exported (bench/README.md, issue 15).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger("modelroute.sidecar.metrics.telemetry")


def _signal_endpoint(env: Mapping[str, str], signal: str) -> str | None:
    own = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
    if own:
        return own
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return f"{base.rstrip('/')}/v1/{signal}" if base else None


def _wanted(env: Mapping[str, str], signal: str) -> str | None:
    """The OTLP/HTTP endpoint for ``signal`` ("traces" or "metrics"), or None when that signal is off."""
    exporters = {e.strip() for e in env.get(f"OTEL_{signal.upper()}_EXPORTER", "otlp").split(",") if e.strip()}
    if "otlp" not in exporters:
        if exporters - {"none"}:
            log.warning("OTEL_%s_EXPORTER=%s: only otlp (OTLP/HTTP) is supported; %s not exported",
                        signal.upper(), ",".join(sorted(exporters)), signal)
        return None
    protocol = (env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf").strip()
    if protocol != "http/protobuf":
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf is supported; %s not exported", protocol, signal)
        return None
    return _signal_endpoint(env, signal)


def endpoints(env: Mapping[str, str]) -> tuple[str | None, str | None] | None:
    """(traces endpoint, metrics endpoint) as the variables say (None: that signal off), or None when nothing is exported."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    traces, metrics = _wanted(env, "traces"), _wanted(env, "metrics")
    if traces is None and metrics is None:
        return None
    return traces, metrics
