"""Helpers for the rollout e2e tests: a route with a canary strategy, traffic, status and Events.

Not a test module (``test_rollout_*.py`` import it relatively). Builds on ``operator_harness``: real apiserver, operator and sidecar processes,
the provider emulator, the real openai SDK.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import openai

from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer, PodHandle
from modelroute.testing.workers import Workers

from .operator_harness import (
    APP_PORT,
    Emulator,
    Keys,
    OperatorProcess,
    apply,
    emulator,
    get_route,
    install_crd,
    modelroute,
    start_sidecar_pod,
    wait_for,
)

STABLE_MODEL = "gpt-4o-mini"
CANARY_MODEL = "gpt-4.1-mini"
NAME = "chat"


@dataclass
class RolloutEnv:
    cluster: ControlPlane
    ns: str
    keys: Keys
    operator: OperatorProcess
    emu: Emulator
    kubelet: KubeletPlayer
    pods: dict[str, PodHandle]


@contextmanager
def rollout_env(cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path,
                pods: int = 2, env: dict[str, str] | None = None) -> Iterator[RolloutEnv]:
    """``env``: extra variables for every sidecar process (e.g. ``OTEL_*``)."""
    install_crd(cluster)
    keys = Keys(tmp_path / "keys")
    op = OperatorProcess(cluster, namespace, keys, tmp_path)
    with emulator(tmp_path) as emu:
        op.start()
        handles = {f"web-{i}": start_sidecar_pod(kubelet, namespace, f"web-{i}", {"app": "web"}, keys, env) for i in range(1, pods + 1)}
        try:
            yield RolloutEnv(cluster, namespace, keys, op, emu, kubelet, handles)
        finally:
            op.stop()
            print(op.logs()[-8000:])


def strategy(steps: list[dict[str, Any]], *, analysis: dict[str, Any] | None = None,
             sticky: str | None = None, deadline: int | None = 30) -> dict[str, Any]:
    canary: dict[str, Any] = {"steps": steps}
    if analysis is not None:
        canary["analysis"] = analysis
    if sticky is not None:
        canary["stickyBy"] = {"header": sticky}
    if deadline is not None:
        canary["progressDeadlineSeconds"] = deadline
    return {"canary": canary}


def route_with(env: RolloutEnv, model: str, strat: dict[str, Any]) -> dict[str, Any]:
    obj = modelroute(NAME, env.emu, model=model, selector={"matchLabels": {"app": "web"}})
    obj["spec"]["strategy"] = strat
    return obj


def rollout(env: RolloutEnv) -> dict[str, Any]:
    return dict((get_route(env.cluster, env.ns, NAME).get("status") or {}).get("rollout") or {})


def start_stable(env: RolloutEnv, strat: dict[str, Any], *, label: str | None = None) -> str:
    """Create the route at the stable model; wait until every pod serves it; the stable revision.

    ``label``: the answer a scripted emulator gives (else the answer names the stable model).
    """
    apply(env.cluster, env.ns, route_with(env, STABLE_MODEL, strat))
    ro = wait_for("the first revision to be stable", lambda: (r := rollout(env)).get("phase") == "Healthy"
                  and r.get("stableRevision") and r, timeout=30)

    def serves_stable(h: PodHandle) -> bool:
        got = answer(h)
        return got == label if label is not None else STABLE_MODEL in got

    wait_each(env, "to answer from the stable model", serves_stable, timeout=30)
    return str(ro["stableRevision"])


def wait_each(env: RolloutEnv, what: str, ok: Callable[[PodHandle], bool], timeout: float = 30.0) -> None:
    """Wait until ``ok(pod)`` holds for every pod, one pod after the other."""
    for h in env.pods.values():
        wait_for(f"{h.name} {what}", partial(ok, h), timeout=timeout)


def without_canary(h: PodHandle) -> bool:
    return canaries(h) == []


def change_model(env: RolloutEnv, model: str, strat: dict[str, Any]) -> None:
    apply(env.cluster, env.ns, route_with(env, model, strat))


def answer(h: PodHandle, text: str = "hello", headers: dict[str, str] | None = None) -> str:
    client = openai.OpenAI(base_url=f"http://{h.ip}:{APP_PORT}/v1", api_key="unused", max_retries=0, timeout=10,
                           default_headers=headers or {})
    try:
        reply = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": text}])
    finally:
        client.close()
    return reply.choices[0].message.content or ""


class Traffic(Workers[PodHandle]):
    """Background requests through every pod with the real openai SDK; counts answers by model.

    ``inputs(i)``: the user turn of request ``i``; ``stream``: streamed requests (the answer is the chunks joined)."""

    def __init__(self, pods: list[PodHandle], pause: float = 0.02, inputs: Callable[[int], str] = lambda _i: "classify this",
                 stream: bool = False) -> None:
        self.pods, self.pause, self.inputs, self.stream = pods, pause, inputs, stream
        self.answers: dict[str, int] = {}
        self.variants: dict[str, int] = {}   # by x-modelroute-variant (task traffic only)
        self.errors = 0
        super().__init__(pods)

    def work(self, h: PodHandle) -> None:
        client = openai.OpenAI(base_url=f"http://{h.ip}:{APP_PORT}/v1", api_key="unused", max_retries=0, timeout=10)
        i = 0
        try:
            while not self.stopping.is_set():
                i += 1
                try:
                    text = _ask(client, self.inputs(i), self.stream)
                    key = CANARY_MODEL if CANARY_MODEL in text else STABLE_MODEL if STABLE_MODEL in text else text[:40]
                    with self.lock:
                        self.answers[key] = self.answers.get(key, 0) + 1
                except openai.OpenAIError:
                    with self.lock:
                        self.errors += 1
                self.stopping.wait(self.pause)
        finally:
            client.close()


def _ask(client: openai.OpenAI, text: str, stream: bool) -> str:
    messages: list[Any] = [{"role": "user", "content": text}]
    if not stream:
        reply = client.chat.completions.create(model="chat", messages=messages)
        return reply.choices[0].message.content or ""
    chunks = client.chat.completions.create(model="chat", messages=messages, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


class TaskTraffic(Traffic):
    """Background task requests (``POST /v1/{kind}``, input ``inputs(i)``, ``extra`` fields such as labels or
    schema); counts answers (the label, or the extracted JSON as canonical text) and the variants that answered.

    Every answer's ``revision`` must be the ``x-modelroute-revision`` header (else it counts as an error)."""

    def __init__(self, pods: list[PodHandle], pause: float = 0.02, inputs: Callable[[int], str] = lambda _i: "classify this",
                 kind: str = "classify", extra: dict[str, Any] | None = None) -> None:
        self.kind, self.extra = kind, extra or {}
        super().__init__(pods, pause, inputs)

    def work(self, h: PodHandle) -> None:
        i = 0
        while not self.stopping.is_set():
            i += 1
            try:
                body, variant, revision = task(h, self.kind, self.inputs(i), self.extra)
                answer = body["label"] if self.kind == "classify" else json.dumps(body["data"], sort_keys=True)
                with self.lock:
                    self.answers[answer] = self.answers.get(answer, 0) + 1
                    self.variants[variant] = self.variants.get(variant, 0) + 1
                    self.errors += body.get("revision") != revision
            except (OSError, ValueError, KeyError):
                with self.lock:
                    self.errors += 1
            self.stopping.wait(self.pause)


def task(h: PodHandle, kind: str, text: str, extra: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """One ``POST /v1/{kind}`` on route ``chat``: (body, x-modelroute-variant, x-modelroute-revision)."""
    req = urllib.request.Request(f"http://{h.ip}:{APP_PORT}/v1/{kind}", method="POST",
                                 data=json.dumps({"route": NAME, "input": text, **extra}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return dict(json.loads(r.read())), r.headers["x-modelroute-variant"], r.headers["x-modelroute-revision"]


def stream_chat(h: PodHandle, text: str) -> tuple[str, str, str]:
    """One streamed chat request on route ``chat``: (the chunks joined, x-modelroute-variant, x-modelroute-revision)."""
    req = urllib.request.Request(f"http://{h.ip}:{APP_PORT}/v1/chat/completions", method="POST",
                                 data=json.dumps({"model": NAME, "stream": True,
                                                  "messages": [{"role": "user", "content": text}]}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        lines = r.read().decode().splitlines()
        variant, revision = r.headers["x-modelroute-variant"], r.headers["x-modelroute-revision"]
    chunks = [json.loads(line[5:]) for line in lines if line.startswith("data:") and line[5:].strip() != "[DONE]"]
    return "".join((c["choices"][0].get("delta") or {}).get("content") or "" for c in chunks if c.get("choices")), variant, revision


def events(env: RolloutEnv) -> list[dict[str, Any]]:
    items = env.cluster.rest().get(f"/api/v1/namespaces/{env.ns}/events")["items"]
    mine = [e for e in items if (e.get("involvedObject") or {}).get("name") == NAME
            and (e.get("involvedObject") or {}).get("kind") == "ModelRoute"]
    return sorted(mine, key=lambda e: (e.get("firstTimestamp") or e.get("eventTime") or "", e["metadata"]["name"]))


def reasons(env: RolloutEnv) -> list[str]:
    return [str(e.get("reason")) for e in events(env)]


def served_config(h: PodHandle) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://{h.ip}:8788/config", timeout=2) as r:
        return dict(json.loads(r.read()))


def canaries(h: PodHandle) -> list[dict[str, Any]]:
    return list(served_config(h).get("canaries") or [])


def fault(env: RolloutEnv, body: dict[str, Any]) -> None:
    req = urllib.request.Request(env.emu.url + "/_emulator/faults", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        r.read()


def script(env: RolloutEnv, rules: list[dict[str, Any]]) -> None:
    req = urllib.request.Request(env.emu.url + "/_emulator/script", data=json.dumps(rules).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        r.read()


class History:
    """Everything ``status.rollout`` showed while polling: (phase, step, weights)."""

    def __init__(self, env: RolloutEnv) -> None:
        self.env = env
        self.seen: list[tuple[str, int | None, tuple[int, int, int]]] = []

    def poll(self) -> dict[str, Any]:
        ro = rollout(self.env)
        w = ro.get("weights") or {}
        item = (str(ro.get("phase")), ro.get("currentStepIndex"), (w.get("stable", 100), w.get("canary", 0), w.get("mirror", 0)))
        if not self.seen or self.seen[-1] != item:
            self.seen.append(item)
        return ro

    def until(self, what: str, pred: Callable[[dict[str, Any]], object], timeout: float = 40.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            ro = self.poll()
            return ro if ro and pred(ro) else None

        return wait_for(what, reached, timeout=timeout, interval=0.1)
