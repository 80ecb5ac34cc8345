"""Fixtures for end-to-end tests on a real control plane (kube-apiserver + etcd, no kubelet).

* ``cluster`` (session): a :class:`ControlPlane` started once per test session in its own
  temporary state directory (never the ``hack/local-cluster`` one). Use ``cluster.kubeconfig``
  (admin kubeconfig path), ``cluster.server`` (apiserver URL), ``cluster.kubectl(*args)``,
  ``cluster.helm(*args)``, ``cluster.binaries.helm`` / ``.kubectl`` (paths), ``cluster.env()``,
  ``cluster.rest()``, ``cluster.api_client()``, ``cluster.create_namespace(name)``,
  ``cluster.install_crds(path)``, ``cluster.kubeconfig_for_user(user, groups)``,
  ``cluster.kubeconfig_for_service_account(ns, name)``.
  Missing binaries are built when collection finds e2e tests, before the first one runs
  (minutes, once per machine, progress shown live, outside the per-test timeout).
  Nothing is skipped: if the control plane cannot start, the tests fail.
* ``namespace`` (function): a fresh namespace (with its ``default`` ServiceAccount).
* ``kubelet`` (function): a :class:`KubeletPlayer` with its background sync running; every
  process it started is stopped at the end of the test.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelroute.testing.cluster.binaries import ensure_binaries
from modelroute.testing.cluster.controlplane import ControlPlane
from modelroute.testing.cluster.kubelet import KubeletPlayer

from .progress import uncaptured


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build missing binaries before the first e2e test, outside any test's timeout.

    A first build takes minutes (kube-apiserver); its progress is shown live.
    """
    if not any(item.get_closest_marker("e2e") for item in session.items):
        return
    with uncaptured(session.config):
        try:
            ensure_binaries()
        except Exception as exc:  # the `cluster` fixture retries and fails the e2e tests with it
            print(f"\n[modelroute cluster] building the control plane failed: {exc}", flush=True)


@pytest.fixture(scope="session")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    state_dir: Path = tmp_path_factory.mktemp("cluster")
    with uncaptured(request.config):
        binaries = ensure_binaries()  # normally done at collection time already
        plane = ControlPlane(state_dir, binaries, name="modelroute-e2e", tie_to_parent=True)
        plane.up()
    try:
        yield plane
    finally:
        plane.down()
        shutil.rmtree(state_dir / "etcd-data", ignore_errors=True)  # logs stay for debugging


@pytest.fixture
def namespace(cluster: ControlPlane) -> str:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    cluster.create_namespace(name)
    return name  # no namespace controller runs here, so it is not deleted afterwards


@pytest.fixture
def kubelet(cluster: ControlPlane, tmp_path: Path) -> Iterator[KubeletPlayer]:
    player = KubeletPlayer(cluster.rest(), tmp_path / "pods")
    player.start_background_sync()
    try:
        yield player
    finally:
        player.close()
