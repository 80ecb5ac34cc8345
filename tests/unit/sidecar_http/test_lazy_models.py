"""API models a sidecar needs only after ``/readyz`` are not built at start (issue 15 goal 1), and work when used.

A real ``modelroute sidecar`` start from a signed bundle (with a ProviderQuota's terms), in a fresh
interpreter: at ``/readyz`` 200 none of the lazy modules is imported; then ``/stats``, a refused
``PUT /leases`` and a refused ``PUT /config`` import them and answer as before. Nor does the start
scan the installed distributions for pydantic plugins (``modelroute.sidecar.prelude``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from modelroute.api.config import RouteBundle
from modelroute.api.signing import generate_private_key_pem, load_private_key, public_key_pem, sign
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.quotaterms import QuotaTerms
from modelroute.testing.cluster.loopback import free_port

LAZY = (
    "modelroute.api.stats",                   # /stats bodies (rollout evidence, limiter and quota reports)
    "modelroute.api.leases",                  # PUT /leases
    "modelroute.api.admin",                   # admin answers: errors, config applied
    "modelroute.api.v1alpha1.providerquota",  # the ProviderQuota resource (a pod needs only QuotaTerms)
    "modelroute.api.evaluation",
    "modelroute.api.evalgate",
)

CHECK = textwrap.dedent("""
    import json, os, signal, sys, threading, time, urllib.error, urllib.request
    from modelroute.cli.main import main

    LAZY, ADMIN = {lazy!r}, "http://127.0.0.1:{admin}"

    def call(method, path):
        req = urllib.request.Request(ADMIN + path, method=method, data=b"{{}}" if method == "PUT" else None)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except OSError:
            return None, None

    def check():
        while call("GET", "/readyz")[0] != 200:
            time.sleep(0.02)  # polling a port another thread opens: there is no event to wait on
        out = {{"at_ready": sorted(m for m in LAZY if m in sys.modules)}}
        out["plugins_scanned"] = sys.modules["pydantic.plugin._loader"]._plugins is not None  # None: never scanned
        out["stats"] = call("GET", "/stats")
        out["leases"] = call("PUT", "/leases")
        out["config"] = call("PUT", "/config")
        out["after"] = sorted(m for m in LAZY if m in sys.modules)
        print(json.dumps(out), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=check, daemon=True).start()
    sys.exit(main(["sidecar", "--bundle-dir", {bundle!r}, "--operator-public-key", {key!r},
                   "--pod-namespace", "team", "--pod-name", "web-1", "--listen", "127.0.0.1:{port}",
                   "--admin-listen", "127.0.0.1:{admin}", "--grace-seconds", "0"]))
""")


def test_start_builds_no_model_it_does_not_need(tmp_path: Path) -> None:
    pem = generate_private_key_pem()
    route = ModelRoute.model_validate({
        "metadata": {"name": "chat", "namespace": "team"},
        "spec": {"route": "chat", "targets": [{"name": "a", "provider": "openai", "model": "gpt-4o-mini",
                                              "baseUrl": "http://127.0.0.1:9", "apiKey": {"env": "LAZY_TEST_KEY"}}]}})
    quota = QuotaTerms.model_validate({"quota": "team/openai", "provider": "openai", "apiKey": {"env": "LAZY_TEST_KEY"},
                                       "requestsPerMinute": 600, "podCount": 3})
    bundle = RouteBundle(namespace="team", issued_at=datetime.now(UTC), routes=[route], quotas=[quota])
    body = json.dumps(bundle.model_dump(mode="json", by_alias=True, exclude_none=True)).encode()
    (tmp_path / "bundle.json").write_bytes(body)
    (tmp_path / "bundle.sig").write_text(sign(load_private_key(pem), body) + "\n")
    (tmp_path / "key.pem").write_bytes(public_key_pem(pem))
    code = CHECK.format(lazy=LAZY, admin=free_port(), port=free_port(), bundle=str(tmp_path), key=str(tmp_path / "key.pem"))
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}  # as a pod's (an in-process start sets it here)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False,
                          env={**env, "LAZY_TEST_KEY": "sk-lazy"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["at_ready"] == []
    assert out["plugins_scanned"] is False  # the prelude's PYDANTIC_DISABLE_PLUGINS
    status, stats = out["stats"]
    assert status == 200
    assert stats["quotas"]["team/openai"]["state"] == "joining"  # no lease yet (the join wait)
    assert out["leases"][0] == 401 and out["leases"][1]["error"]["code"]
    assert out["config"][0] == 401 and out["config"][1]["error"]["message"]
    assert out["after"] == ["modelroute.api.admin", "modelroute.api.leases", "modelroute.api.stats"]
