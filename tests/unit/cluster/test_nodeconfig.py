"""The one-node cluster's config files carry what issue 10's spike found necessary here."""

from __future__ import annotations

import tomllib
from pathlib import Path

from modelroute.testing.cluster.nodeconfig import (
    NODE_IP,
    PAUSE_IMAGE,
    POD_CIDR,
    cni_config,
    containerd_config,
    kubelet_config,
)


def test_containerd_is_private_and_cannot_lower_oom_scores(tmp_path: Path) -> None:
    config = tomllib.loads(containerd_config(tmp_path, tmp_path / "c.sock"))
    assert config["root"].startswith(str(tmp_path)) and config["state"].startswith(str(tmp_path))
    assert config["grpc"]["address"] == str(tmp_path / "c.sock")
    assert config["ttrpc"]["address"] == f"{tmp_path / 'c.sock'}.ttrpc"
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # else: "can't get final child's PID from pipe: EOF"
    assert cri["netns_mounts_under_state_dir"] is True
    assert cri["sandbox_image"] == PAUSE_IMAGE
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["cni"]["conf_dir"].startswith(str(tmp_path))


def test_pods_get_a_bridge_without_masquerade(tmp_path: Path) -> None:
    (bridge,) = cni_config(tmp_path)["plugins"]
    assert bridge["type"] == "bridge" and bridge["ipMasq"] is False and bridge["isGateway"] is True
    assert bridge["ipam"]["ranges"] == [[{"subnet": POD_CIDR}]]
    assert bridge["ipam"]["dataDir"].startswith(str(tmp_path))


def test_kubelet_runs_on_cgroup_v1_without_raising_limits(tmp_path: Path) -> None:
    config = kubelet_config(tmp_path / "ca.crt", "/sandbox/mr-1234")
    assert config["failCgroupV1"] is False and config["cgroupDriver"] == "cgroupfs"
    assert config["maxOpenFiles"] == 20000  # the hard limit here: never raised
    assert config["failSwapOn"] is False and config["makeIPTablesUtilChains"] is False
    assert config["cgroupRoot"] == "/sandbox/mr-1234"
    assert config["address"] == NODE_IP
    assert config["authentication"]["anonymous"]["enabled"] is False
    assert config["authentication"]["x509"]["clientCAFile"] == str(tmp_path / "ca.crt")
