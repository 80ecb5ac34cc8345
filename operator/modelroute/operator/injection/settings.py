"""What the injector is configured with (from the operator's command line / the chart's values)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Resources:
    """Kubernetes quantities; ``None`` leaves that request or limit unset."""

    cpu_request: str | None = "50m"
    memory_request: str | None = "64Mi"
    cpu_limit: str | None = None
    memory_limit: str | None = "192Mi"

    def as_dict(self) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for kind, name, value in (
            ("requests", "cpu", self.cpu_request),
            ("requests", "memory", self.memory_request),
            ("limits", "cpu", self.cpu_limit),
            ("limits", "memory", self.memory_limit),
        ):
            if value:
                out.setdefault(kind, {})[name] = value
        return out


@dataclass(frozen=True)
class Probe:
    """HTTP probe timing of the sidecar (path and port are fixed by the sidecar)."""

    period_seconds: int
    failure_threshold: int
    timeout_seconds: int = 1


@dataclass(frozen=True)
class StartGate:
    """The sidecar's postStart hook: polls its own ``/readyz`` until 200, holding the app back.

    The kubelet starts the next container as soon as a native sidecar's postStart hook returns
    (no startup probe, so no 1-s probe period and no wait for the prober's next report). A hook
    that fails (``timeout_seconds`` without a 200) gets the sidecar killed and restarted, as the
    startup probe's 1 s x 300 did before.
    """

    timeout_seconds: int = 300
    poll_interval_ms: int = 20
    # The image's interpreter (the Dockerfile's venv), run with -I -S: no site, no env, ~10 ms.
    python: str = "/opt/modelroute/bin/python"


@dataclass(frozen=True)
class InjectionSettings:
    """Everything ``decide`` and ``patch`` need besides the pod itself."""

    image: str
    operator_public_key_pem: str
    operator_namespace: str
    image_pull_policy: str = "IfNotPresent"
    listen_port: int = 8787
    admin_port: int = 8788
    resources: Resources = field(default_factory=Resources)
    run_as_user: int = 10001
    # Startup: the app containers start only once the sidecar has a config (from the mounted
    # bundle or the operator's push), gated by the sidecar's postStart hook (sidecar.py).
    start_gate: StartGate = field(default_factory=StartGate)
    readiness_probe: Probe = field(default_factory=lambda: Probe(period_seconds=2, failure_threshold=3))
    liveness_probe: Probe = field(default_factory=lambda: Probe(period_seconds=10, failure_threshold=3))
    # Namespaces never injected in addition to the system ones and the operator's own.
    excluded_namespaces: frozenset[str] = frozenset()
