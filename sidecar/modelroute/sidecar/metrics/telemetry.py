"""OpenTelemetry from the sidecar: a SERVER span per inbound request, a CLIENT span per upstream attempt.

Configured by the standard variables, read once at start (``from_env``):
``OTEL_SDK_DISABLED``, ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` (``otlp`` or
``none``), ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the per-signal ``..._TRACES_ENDPOINT`` /
``..._METRICS_ENDPOINT``), ``OTEL_EXPORTER_OTLP_PROTOCOL`` (only ``http/protobuf`` is
shipped), ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``, ``OTEL_METRIC_EXPORT_INTERVAL``, ``OTEL_PROPAGATORS``.
With no endpoint (or both exporters ``none``) ``from_env`` returns None and the sidecar
never touches OpenTelemetry: the hot path checks one attribute (``state.telemetry``,
``RouteRuntime.tracer``) and the SDK is not even imported.

Spans follow the GenAI semantic conventions: a CLIENT span ``chat {model}`` per attempt
(``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.usage.input_tokens``/``output_tokens`` (and
``gen_ai.usage.cache_read.input_tokens``/``cache_creation.input_tokens`` when cached), ``error.type``,
``server.address``/``server.port``), plus ``modelroute.route``, ``.revision``, ``.variant``,
``.fallback.hop``, ``.prompt.version``, ``.target``, ``.cost.usd`` (the attempt's usage at the
target's price, when it has one); the SERVER span continues the app's
``traceparent``. Attempt spans are created when the attempt ends, with its real start time
(``AttemptHook``), so the router needs no span plumbing. Metrics:
``gen_ai.client.operation.duration`` (s) and ``gen_ai.client.token.usage``
(``gen_ai.token.type`` input/output) with the same low-cardinality attributes.

Prompt and completion text are never recorded: no attribute or event carries message
content (an opt-in per route, e.g. ``spec.telemetry.recordContent``, is a proposed API field).
Exporting happens on the SDK's background threads; nothing here blocks the event loop.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from modelroute.api.v1alpha1.embeddings import target_dimension
from modelroute.api.v1alpha1.providers import Provider, spec_of
from modelroute.sidecar.metrics import otelenv
from modelroute.sidecar.pipeline.counters import CostObserver

if TYPE_CHECKING:
    from opentelemetry.metrics import Histogram, MeterProvider
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.trace import Span, TracerProvider

    from modelroute.sidecar.routing.runtime import RouteRuntime, TargetRuntime

log = logging.getLogger(__name__)

SCOPE = "modelroute.sidecar"
DEFAULT_SERVICE_NAME = "modelroute-sidecar"


# Bucket advice from the GenAI semantic conventions.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

_SKIPPED = "circuit_open"  # no call was made: no client span, no metric
_PRECHECKED = frozenset({"input_size", "context_window"})  # with no status: skipped before a call, an event on the request's span


def server_of(provider: Provider, base_url: str | None) -> tuple[str, int]:
    """``server.address`` and ``server.port`` of a target (the provider's default host without ``baseUrl``)."""
    if base_url:
        parts = urlsplit(base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.hostname or "", port
    return spec_of(provider).default_host or "", 443


class ServerSpan:
    """The inbound request's span; ``finish(resp)`` copies what the response headers say onto it."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def finish(self, resp: web.StreamResponse) -> None:
        span = self.span
        if not span.is_recording():
            return
        span.set_attribute("http.response.status_code", resp.status)
        h = resp.headers
        for header, attr in (("x-modelroute-route", "modelroute.route"), ("x-modelroute-revision", "modelroute.revision"),
                             ("x-modelroute-variant", "modelroute.variant"), ("x-modelroute-target", "modelroute.target"),
                             ("x-modelroute-prompt-version", "modelroute.prompt.version"),
                             ("x-modelroute-dropped-params", "modelroute.dropped_params")):
            value = h.get(header)
            if value:
                span.set_attribute(attr, value)
        if resp.status >= 500:
            span.set_attribute("error.type", str(resp.status))
            span.set_status(Status(StatusCode.ERROR))

    def record_content(self, request: Mapping[str, Any], resp: web.StreamResponse) -> None:
        """Prompt and completion text, for routes that opt in (``spec.telemetry.recordContent``).

        The app's messages always; the answer when it was a JSON body (a streamed answer is
        not buffered for this).
        """
        span = self.span
        if not span.is_recording():
            return
        span.set_attribute("gen_ai.input.messages", json.dumps(request.get("messages", []), ensure_ascii=False))
        body = getattr(resp, "body", None)
        if isinstance(body, bytes | bytearray) and resp.content_type == "application/json":
            try:
                answer = json.loads(body)
            except ValueError:
                return
            choices = answer.get("choices") if isinstance(answer, dict) else None
            if choices:
                outputs = [c.get("message", {}) for c in choices if isinstance(c, dict)]
                span.set_attribute("gen_ai.output.messages", json.dumps(outputs, ensure_ascii=False))


class Telemetry:
    """Tracer and meter of one sidecar; implements ``routing.observer.AttemptHook``."""

    def __init__(self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None) -> None:
        self._tp = tracer_provider
        self._mp = meter_provider
        self.tracer = (tracer_provider or trace.NoOpTracerProvider()).get_tracer(SCOPE)
        self._duration: Histogram | None = None
        self._tokens: Histogram | None = None
        if meter_provider is not None:
            meter = meter_provider.get_meter(SCOPE)
            self._duration = meter.create_histogram(
                "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration.",
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
            self._tokens = meter.create_histogram(
                "gen_ai.client.token.usage", unit="{token}", description="Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)

    # -- inbound ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def server_span(self, request: web.Request) -> Iterator[ServerSpan]:
        """A SERVER span for one inbound request, current for its whole life (streams included)."""
        parent = propagate.extract(request.headers)
        info = request.match_info.route.resource
        template = info.canonical if info is not None else request.path
        host, _, port = (request.host or "").rpartition(":")
        attrs: dict[str, Any] = {"http.request.method": request.method, "http.route": template, "url.path": request.path,
                                 "url.scheme": request.scheme}
        if host and port.isdigit():
            attrs["server.address"], attrs["server.port"] = host, int(port)
        span = self.tracer.start_span(f"{request.method} {template}", context=parent, kind=SpanKind.SERVER, attributes=attrs)
        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            yield ServerSpan(span)
        except BaseException as e:
            span.set_attribute("error.type", type(e).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
            raise
        finally:
            context.detach(token)
            span.end()

    # -- outbound (AttemptHook) --------------------------------------------------------------
    def attempt_ended(
        self,
        route: RouteRuntime,
        target: TargetRuntime,
        outcome: str,
        status: int | None,
        seconds: float,
        usage: dict[str, Any] | None,
        response_model: str | None,
        streamed: bool,
    ) -> None:
        if outcome == _SKIPPED:
            return
        t = target.target
        if status is None and outcome in _PRECHECKED:
            trace.get_current_span().add_event("modelroute.target.skipped", {
                "modelroute.target": t.name, "gen_ai.request.model": t.model, "error.type": outcome})
            return
        address, port = server_of(t.provider, t.base_url)
        operation = _operation(t.provider, t.model, t.dimensions)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": spec_of(t.provider).otel_name,
            "gen_ai.request.model": t.model,
            "server.address": address,
            "server.port": port,
            "modelroute.route": route.name,
            "modelroute.revision": route.revision,
            "modelroute.variant": route.variant,
        }
        if response_model:
            attrs["gen_ai.response.model"] = response_model
        if outcome != "ok":
            attrs["error.type"] = outcome
        if self._duration is not None:
            self._duration.record(seconds, attrs)
        inp = _count(usage, "prompt_tokens") if usage else None
        out = _count(usage, "completion_tokens") if usage else None
        if self._tokens is not None:
            if inp is not None:
                self._tokens.record(inp, {**attrs, "gen_ai.token.type": "input"})
            if out is not None:
                self._tokens.record(out, {**attrs, "gen_ai.token.type": "output"})
        end = time.time_ns()
        span = self.tracer.start_span(f"{operation} {t.model}", kind=SpanKind.CLIENT, attributes=attrs,
                                      start_time=end - int(seconds * 1e9))
        if span.is_recording():
            extra: dict[str, Any] = {
                "modelroute.target": t.name,
                "modelroute.fallback.hop": route.targets.index(target) if target in route.targets else 0,
                "modelroute.streamed": streamed,
            }
            if route.prompt_version is not None:
                extra["modelroute.prompt.version"] = route.prompt_version
            if inp is not None:
                extra["gen_ai.usage.input_tokens"] = inp
            if out is not None:
                extra["gen_ai.usage.output_tokens"] = out
            details = usage.get("prompt_tokens_details") if usage else None
            if isinstance(details, dict):  # prompt caching (docs/prompt-caching.md); part of input_tokens
                for key, attr in _CACHE_ATTRS:
                    n = _count(details, key)
                    if n:
                        extra[attr] = n
            if status is not None:
                extra["http.response.status_code"] = status
            observer = route.observer
            if usage and isinstance(observer, CostObserver):  # mirrored copies have no cost observer
                usd = observer.cost(t.name, usage)
                if usd is not None:
                    extra["modelroute.cost.usd"] = usd
            span.set_attributes(extra)
            if outcome != "ok":
                span.set_status(Status(StatusCode.ERROR, outcome))
        span.end(end_time=end)

    # -- lifecycle ---------------------------------------------------------------------------
    def force_flush(self, timeout_millis: int = 10_000) -> None:
        for p in (self._tp, self._mp):
            flush = getattr(p, "force_flush", None)
            if flush is not None:
                flush(timeout_millis)

    def shutdown(self) -> None:
        """Export what is buffered and stop the exporters (blocking: call off the event loop)."""
        for p in (self._tp, self._mp):
            stop = getattr(p, "shutdown", None)
            if stop is not None:
                stop()


_CACHE_ATTRS = (("cached_tokens", "gen_ai.usage.cache_read.input_tokens"),
                ("cache_write_tokens", "gen_ai.usage.cache_creation.input_tokens"))


def _count(usage: Mapping[str, Any], key: str) -> int | None:
    v = usage.get(key)
    return v if isinstance(v, int) else None


# ---- configuration ------------------------------------------------------------------------


def from_env(environ: Mapping[str, str] | None = None) -> Telemetry | None:
    """Telemetry as the ``OTEL_*`` variables say (``otelenv``), or None when nothing is to be exported."""
    wanted = otelenv.endpoints(os.environ if environ is None else environ)
    if wanted is None:
        return None
    return build(traces_endpoint=wanted[0], metrics_endpoint=wanted[1])


def build(*, traces_endpoint: str | None, metrics_endpoint: str | None,
          resource_attributes: Mapping[str, str] | None = None) -> Telemetry:
    """Real SDK providers exporting OTLP/HTTP to the given signal endpoints (None: that signal off)."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource

    resource = Resource.create(dict(resource_attributes or {}))
    name = resource.attributes.get(SERVICE_NAME)
    if not isinstance(name, str) or name.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    tp: SdkTracerProvider | None = None
    mp: SdkMeterProvider | None = None
    if traces_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        tp = SdkTracerProvider(resource=resource)
        tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_endpoint)))
    if metrics_endpoint is not None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=metrics_endpoint))
        mp = SdkMeterProvider(resource=resource, metric_readers=[reader])
    log.info("OpenTelemetry: traces to %s, metrics to %s", traces_endpoint or "(off)", metrics_endpoint or "(off)")
    return Telemetry(tp, mp)


@functools.lru_cache(maxsize=256)
def _operation(provider: Provider, model: str, dimensions: int | None) -> str:
    """``gen_ai.operation.name``: an embedding target only ever embeds (its route is checked at load)."""
    return "embeddings" if target_dimension(provider, model, dimensions) is not None else "chat"
