"""How a benchmark starts a sidecar: as the injector deploys it (signed route bundle) or from a config file.

The injected container (``modelroute.operator.injection.sidecar.container``) gets no config file:
it reads the operator's signed RouteBundle ConfigMap (``bundle.json`` + ``bundle.sig``) mounted as
a directory, verifies it with the operator's public key and selects its routes with the pod's
downward-API labels; its keys come from mounted Secrets. ``bundle_launch`` rebuilds that on local
files: the bundle written by the operator's own code (``modelroute.operator.bundle``), the
container's own args and env with the in-pod paths mapped onto a scratch directory and the
``fieldRef`` env (pod name, namespace, uid) filled in. Only what needs a cluster is left out: the
admin port is bound on loopback instead of ``0.0.0.0``, there are no probes, and the process runs
as ``python -m modelroute.cli`` (the image's ``modelroute`` entry point) of the given interpreter.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import harness
from modelroute.api import signing
from modelroute.api.lifecycledate import ENV_LIFECYCLE_DATE
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.operator import bundle
from modelroute.operator.injection import names
from modelroute.operator.injection.settings import InjectionSettings
from modelroute.operator.injection.sidecar import container

NAMESPACE = "bench"
POD = "bench-app-0"
SECRET = "bench-llm-keys"
PROVIDERS_LABEL = "bench.modelroute.dev/providers"
SOURCES = ("bundle", "config")


class Launch(NamedTuple):
    argv: list[str]   # after the interpreter
    env: dict[str, str]


def config_launch(work: Path, upstream: str, routes: list[str], port: int, admin: int) -> Launch:
    """``modelroute sidecar --config routes.yaml`` with the keys in the env (the standalone way)."""
    cfg = work / "routes.yaml"
    cfg.write_text(harness.config_yaml(upstream, routes))
    return Launch(["-m", "modelroute.cli", "sidecar", "--config", str(cfg), "--listen", f"127.0.0.1:{port}",
                   "--admin-listen", f"127.0.0.1:{admin}", "--log-level", "warning"],
                  {**harness.KEYS, "PYTHONOPTIMIZE": "2"})


def namespace_bundle(upstream: str, private_pem: bytes) -> dict[str, str]:
    """The namespace's ConfigMap ``data``: every bench route, signed. The openai route selects every
    bench pod; the anthropic and gemini routes only pods labelled for three providers."""
    routes = []
    for doc in harness.route_docs(upstream, harness.ROUTES, secret=SECRET):
        if doc["spec"]["route"] != "chat":
            doc["spec"]["selector"] = {"matchLabels": {PROVIDERS_LABEL: "3"}}
        doc["metadata"].update(namespace=NAMESPACE, creationTimestamp="2026-01-01T00:00:00Z")
        routes.append(ModelRoute.model_validate(doc))
    made = bundle.make_bundle(NAMESPACE, routes, datetime.now(UTC))
    return bundle.encode(made, signing.load_private_key(private_pem))


def labels_file(routes: list[str]) -> str:
    """The downward-API ``labels`` file of a pod that selects ``routes`` (1 or 3 providers)."""
    labels = {"app": "bench", PROVIDERS_LABEL: str(len(routes))}
    return "\n".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "\n"


def bundle_launch(work: Path, upstream: str, routes: list[str], port: int, admin: int, private_pem: bytes) -> Launch:
    """The injected container's args and env, its mounts (bundle, pod info, Secret, state) under ``work``."""
    if routes not in (["chat"], list(harness.ROUTES)):
        raise ValueError(f"the bench bundle selects the openai route or all three, not {routes}")
    public_pem = signing.public_key_pem(private_pem).decode()
    mounts = {names.BUNDLE_DIR: work / "bundle", names.PODINFO_DIR: work / "pod", names.SECRETS_DIR: work / "secrets",
              names.STATE_DIR: work / "state"}
    for d in mounts.values():
        d.mkdir(parents=True, exist_ok=True)
    for key, text in namespace_bundle(upstream, private_pem).items():
        (mounts[names.BUNDLE_DIR] / key).write_text(text)
    (mounts[names.PODINFO_DIR] / "labels").write_text(labels_file(routes))
    (mounts[names.PODINFO_DIR] / "operator-public-key").write_text(public_pem)
    (mounts[names.SECRETS_DIR] / SECRET).mkdir(exist_ok=True)
    for provider, env_name in harness.KEY_ENV.items():
        (mounts[names.SECRETS_DIR] / SECRET / provider).write_text(harness.KEYS[env_name])

    settings = InjectionSettings(image="modelroute:bench", operator_public_key_pem=public_pem, operator_namespace="modelroute")
    c = container(settings, listen=port, admin=admin, res={}, secrets=[SECRET])

    def local(value: str) -> str:
        for inside, outside in mounts.items():
            if value == inside or value.startswith(inside + "/"):
                return str(outside) + value[len(inside):]
        return value.replace("0.0.0.0:", "127.0.0.1:")   # the admin listener: loopback only here

    fields = {"metadata.name": POD, "metadata.namespace": NAMESPACE, "metadata.uid": str(uuid.uuid4())}
    env = {e["name"]: local(e["value"]) if "value" in e else fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
           for e in c["env"]}
    return Launch(["-m", "modelroute.cli", *(local(a) for a in c["args"])], env)


def launch(source: str, work: Path, upstream: str, routes: list[str], port: int, admin: int, private_pem: bytes) -> Launch:
    work.mkdir(parents=True, exist_ok=True)
    if source == "bundle":
        return bundle_launch(work, upstream, routes, port, admin, private_pem)
    return config_launch(work, upstream, routes, port, admin)


HOST_ONLY = ("SSL_CERT_FILE", "SSL_CERT_DIR")
"""Set on some hosts (this one), never in the image or the injected container: with them the sidecar
would keep parsing the whole CA bundle at start (``modelroute.sidecar.trustdir``), as no pod does."""


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's env (PATH, HOME...) without any key or pod variable of ours or ``HOST_ONLY``, plus ``extra``.

    The lifecycle pin (``MODELROUTE_LIFECYCLE_DATE``, set by ``harness``) is kept: a config file naming a
    model with a shutdown date must load the same on any day the bench is run.
    """
    ours = set(harness.KEYS) | set(HOST_ONLY) | {n for n in os.environ if n.startswith("MODELROUTE_")}
    ours.discard(ENV_LIFECYCLE_DATE)
    return {**{k: v for k, v in os.environ.items() if k not in ours}, **extra}
