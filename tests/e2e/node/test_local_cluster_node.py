"""Issue 10 interfaces: ``hack/local-cluster up --node`` (idempotent, last stdout line the
admin kubeconfig, node Ready), ``images`` (last line the modelroute image), ``down`` (nothing
left: processes, mounts, the network namespace and its veths, cgroups), and down-then-up."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .node_harness import REPO

pytestmark = pytest.mark.e2e


def _cli(state: Path, *args: str, timeout: float = 600) -> list[str]:
    env = {**os.environ, "MODELROUTE_CLUSTER_DIR": str(state)}
    out = subprocess.run([sys.executable, str(REPO / "hack" / "local-cluster"), *args], env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout.splitlines()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A state directory short enough for the kubelet's unix sockets (pytest's tmp_path may not be)."""
    path = Path(tempfile.mkdtemp(prefix="mr-up-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _leftovers(state: Path, netns: Path) -> list[str]:
    found = []
    if netns.exists():
        found.append(f"netns {netns}")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(state) in cmdline:
                found.append(f"process {entry.name}: {cmdline[:120]}")
    found += [f"mount {line}" for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(state) in line]
    found += [f"cgroup {p}" for p in Path("/sys/fs/cgroup").glob(f"*/**/{netns.name}")]
    # The kubelet's and containerd's default paths: at most empty mount points on the host
    # (another node may still be running); their content lived in the state directory.
    from modelroute.testing.cluster.node import DEFAULT_PATHS

    found += [f"written on the host: {d}" for d in DEFAULT_PATHS if Path(d).is_dir() and any(Path(d).iterdir())]
    return found


def _kubectl(state: Path, kubeconfig: str, *args: str) -> str:
    from modelroute.testing.cluster.binaries import binary_paths

    return subprocess.run([str(binary_paths().kubectl), f"--kubeconfig={kubeconfig}", *args],
                          capture_output=True, text=True, timeout=60, check=True).stdout


def test_up_images_down_then_up_again_leaves_nothing(short_dir: Path) -> None:
    from modelroute.testing.cluster.node import NodeCluster

    state = short_dir / "cluster"
    netns = Path("/run/netns") / NodeCluster.netns_name_for(state)
    try:
        kubeconfig = _cli(state, "up", "--node")[-1]
        assert kubeconfig == str(state / "admin.kubeconfig")
        assert _cli(state, "up", "--node")[-1] == kubeconfig  # idempotent: already up
        ready = _kubectl(state, kubeconfig, "get", "node", "-o",
                         "jsonpath={.items[0].status.conditions[?(@.type=='Ready')].status}")
        assert ready == "True"
        image = _cli(state, "images", timeout=1200)[-1]
        assert image.startswith("localhost/modelroute:"), image
        listed = subprocess.run(["ctr", f"--address={state / 'node' / 'containerd' / 'c.sock'}", "-n", "k8s.io",
                                 "images", "list", "-q"], capture_output=True, text=True, check=True).stdout.split()
        assert image in listed
        _cli(state, "down")
        assert _leftovers(state, netns) == []
        assert _cli(state, "up", "--node")[-1] == kubeconfig  # down then up works
    finally:
        _cli(state, "down")
    assert _leftovers(state, netns) == []
