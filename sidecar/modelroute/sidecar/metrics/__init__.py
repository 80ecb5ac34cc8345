"""What the sidecar reports about itself: ``/stats`` and ``/metrics`` counters, and OpenTelemetry.

``stats`` counts requests and attempts per route and target (an ``Observer``) and is a
prometheus-client collector for ``/metrics``; ``telemetry`` emits OTel spans and metrics (off
unless ``OTEL_*`` is set). The pipeline's own counters live beside it (``pipeline.counters``).
"""
