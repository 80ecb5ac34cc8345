"""Issue 3, e2e 6: only the operator can reconfigure a sidecar.

An unsigned push gets 401, a push signed with another key gets 403, and a correctly signed
push meant for another pod gets 403; the sidecar keeps serving what the operator pushed.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelroute.api import signing
from modelroute.api.config import ConfigPush, PodRef, SidecarConfig
from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from .operator_harness import (
    ADMIN_PORT,
    Keys,
    OperatorProcess,
    apply,
    emulator,
    install_crd,
    modelroute,
    served_routes,
    served_version,
    start_sidecar_pod,
    wait_for,
)

pytestmark = pytest.mark.e2e


def put(url: str, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_unauthenticated_and_forged_pushes_are_refused(
    cluster: ControlPlane, namespace: str, kubelet: KubeletPlayer, tmp_path: Path
) -> None:
    install_crd(cluster)
    keys = Keys(tmp_path / "keys")
    op = OperatorProcess(cluster, namespace, keys, tmp_path)
    with emulator(tmp_path) as emu:
        op.start()
        try:
            victim = start_sidecar_pod(kubelet, namespace, "victim", {"app": "web"}, keys)
            apply(cluster, namespace, modelroute("support", emu))
            wait_for("victim serves the route", lambda: served_routes(victim) == ["chat"], timeout=60)
            version = served_version(victim)

            url = f"http://{victim.ip}:{ADMIN_PORT}/config"
            empty = ConfigPush(audience=PodRef(namespace=namespace, name="victim"), issued_at=datetime.now(UTC),
                               config=SidecarConfig(routes=[]))
            body = empty.model_dump_json(by_alias=True).encode()
            assert put(url, body, {}) == 401
            attacker = signing.load_private_key(signing.generate_private_key_pem())
            assert put(url, body, {signing.SIGNATURE_HEADER: signing.sign(attacker, body)}) == 403
            operator_key = signing.load_private_key(keys.private.read_bytes())
            other_pod = ConfigPush(audience=PodRef(namespace=namespace, name="someone-else"),
                                   issued_at=datetime.now(UTC), config=SidecarConfig(routes=[])).model_dump_json(by_alias=True).encode()
            assert put(url, other_pod, {signing.SIGNATURE_HEADER: signing.sign(operator_key, other_pod)}) == 403
            assert served_version(victim) == version and served_routes(victim) == ["chat"]
        finally:
            op.stop()
