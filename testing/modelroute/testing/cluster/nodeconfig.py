"""The one-node cluster's configuration files, rendered by pure functions.

Each setting here was needed on this kind of machine (see issue 10's spike); the comments
say what breaks without it. :mod:`node` writes these files and starts the processes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

NODE_NAME = "modelroute-node"
NODE_IP = "10.213.0.2"
POD_CIDR = "10.244.0.0/24"
PAUSE_IMAGE = "localhost/modelroute/pause:1.0.0"
CNI_BIN_DIR = Path("/usr/lib/cni")


def containerd_config(node_dir: Path, socket: Path) -> str:
    """containerd's own config: root, state and sockets under ``node_dir``, never a system one."""
    base = node_dir / "containerd"
    # restrict_oom_score_adj: without it every sandbox fails with "runc create failed: ... can't
    # get final child's PID from pipe: EOF" (lowering oom_score_adj needs CAP_SYS_RESOURCE).
    # SystemdCgroup = false: no systemd here; cgroupfs like the kubelet.
    # netns_mounts_under_state_dir: pod network namespaces under the state dir, not /var/run/netns.
    return f"""version = 2
root = "{base / 'root'}"
state = "{base / 'state'}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{node_dir / 'cni' / 'net.d'}"
"""


def cni_config(node_dir: Path) -> dict[str, Any]:
    """A bridge (``cni0``, the pods' gateway) with host-local IPAM; no masquerade: pod
    traffic has nowhere to go but the node."""
    return {
        "cniVersion": "1.0.0",
        "name": "modelroute",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(node_dir / "cni" / "ipam"),
                },
            }
        ],
    }


def kubelet_config(ca_cert: Path, cgroup_root: str) -> dict[str, Any]:
    """KubeletConfiguration for cgroup v1 without systemd, swap on, nofile 20000 (never raised)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "failSwapOn": False,
        "maxOpenFiles": 20000,
        "makeIPTablesUtilChains": False,
        "address": NODE_IP,
        "healthzBindAddress": "127.0.0.1",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        # Only clients with a certificate from the cluster CA get in (the apiserver).
        "authorization": {"mode": "AlwaysAllow"},
        # Loose thresholds: a shared build machine's disk and memory must not evict test pods.
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "imageMinimumGCAge": "876000h",  # images are built here and cannot be pulled again
        "resolvConf": "",
        "podPidsLimit": -1,
        "serializeImagePulls": False,
        "containerLogMaxSize": "10Mi",
        "registerNode": True,
        "syncFrequency": "10s",  # mounted Secret/ConfigMap updates reach pods within seconds
        "protectKernelDefaults": False,  # it writes sysctls: bind-mounted private files (node.py)
    }
