"""A real one-node Kubernetes cluster in a network namespace of its own.

``NodeCluster`` = the control plane of :mod:`controlplane` plus kube-controller-manager,
kube-scheduler, containerd and a kubelet (all v1.34.4 from the same pinned go.mod), with
pods on a CNI bridge. Layout inside the state directory (``<state>/node/``)::

    netns            ip netns ``mr-<hash>``: lo (+ 10.96.0.1, the kubernetes Service IP),
                     veth ``mrnode`` 10.213.0.2 (the node IP), bridge ``cni0`` 10.244.0.0/24
    mount namespace  held by a pause process (``holder.pid``); containerd and the kubelet
                     run in it, with the VM-wide sysctls the kubelet writes bind-mounted to
                     private files and its default paths (/var/lib/kubelet, /var/log/pods,
                     /var/lib/cni, /run/containerd) bind-mounted from the state directory
    containerd/      containerd's config, root, state and sockets (never a system one)
    kubelet/         --root-dir; pki/ --cert-dir

Choices:

* No pod traffic leaves the namespace: it has no link to the host, only blackhole routes
  for everything that is not on the node. The host reaches the apiserver through a
  loopback forwarder (:mod:`netns`); tests reach pods via ``kubectl`` (logs, exec,
  port-forward) or sockets created in the namespace.
* No kube-proxy: the apiserver runs with ``--enable-aggregator-routing`` (it dials a
  webhook Service's endpoints itself), and listens on 443 in the namespace with the
  kubernetes Service IP 10.96.0.1 on lo, so pods' in-cluster config reaches it directly.
  Other Services' ClusterIPs are not routed.
* Pods' cgroups live under this process's own memory cgroup (``cgroupRoot``), removed on
  ``down``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from modelroute.testing.cluster import pki
from modelroute.testing.cluster.binaries import Binaries, Log, stderr_log
from modelroute.testing.cluster.controlplane import ControlPlane, ControlPlaneError, Ports
from modelroute.testing.cluster.kubeconfig import render_kubeconfig, write_private
from modelroute.testing.cluster.loopback import free_port
from modelroute.testing.cluster.netns import http_status
from modelroute.testing.cluster.nodeconfig import (
    NODE_IP,
    NODE_NAME,
    PAUSE_IMAGE,
    POD_CIDR,
    cni_config,
    containerd_config,
    kubelet_config,
)
from modelroute.testing.cluster.processes import log_tail, pid_runs, read_pid, spawn, stop_pid

NODE_GATEWAY = "10.213.0.1"  # on no interface: the default route the kubelet wants leads nowhere
KUBERNETES_SERVICE_IP = "10.96.0.1"
APISERVER_PORT = 443
# The kubelet sets these machine-wide; in its mount namespace they are private files.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Default paths the kubelet, containerd and CNI write to whatever their flags say.
DEFAULT_PATHS = ("/var/lib/kubelet", "/var/log/pods", "/var/log/containers", "/var/lib/cni", "/run/containerd")
CGROUP_ROOT = Path("/sys/fs/cgroup")
STOP_SECONDS = 15.0


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True)
    if check and result.returncode != 0:
        raise ControlPlaneError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


MAX_SOCKET_PATH = 107  # sockaddr_un.sun_path is 108 bytes with the terminating NUL

class NodeCluster(ControlPlane):
    """The control plane in a network namespace, plus the node components."""

    def __init__(
        self,
        state_dir: Path,
        binaries: Binaries,
        node_binaries: dict[str, Path],
        *,
        name: str = "modelroute-node",
        tie_to_parent: bool = True,
        log: Log = stderr_log,
    ) -> None:
        super().__init__(state_dir, binaries, name=name, tie_to_parent=tie_to_parent, log=log)
        self.node_binaries = node_binaries
        self.node_dir = self.state_dir / "node"
        self.netns_name = self.netns_name_for(self.state_dir)
        self.netns = Path("/run/netns") / self.netns_name

    @staticmethod
    def netns_name_for(state_dir: Path) -> str:
        """``mr-<hash of the state directory>``: one namespace per cluster, found again by ``down``."""
        return "mr-" + hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]

    # -- addresses ---------------------------------------------------------------------

    def _pick_ports(self, reuse: bool) -> Ports:
        """etcd's ports are inside the namespace (fixed); ``apiserver`` is the host forwarder's."""
        previous = self.ports
        if reuse and previous is not None and _host_port_free(previous.apiserver):
            return previous
        return Ports(etcd_client=2379, etcd_peer=2380, apiserver=free_port())

    @property
    def containerd_socket(self) -> Path:
        return self.node_dir / "containerd" / "c.sock"

    @property
    def cgroup_parent(self) -> str:
        """``cgroupRoot`` of the kubelet: under this process's memory cgroup."""
        memory = "/"
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                memory = path
        base = memory.rstrip("/")
        if base.endswith(f"/{self.netns_name}"):  # started from inside our own cgroup
            base = base.rsplit("/", 1)[0]
        return f"{base}/{self.netns_name}"

    # -- processes ---------------------------------------------------------------------

    def _spawn(self, component: str, argv: list[str]) -> subprocess.Popen[bytes]:  # type: ignore[override]
        """Every component runs inside the namespace; containerd and kubelet also in the mount one."""
        prefix = ["nsenter", f"--net={self.netns}", "--"]
        if component == "forwarder":  # listens on the host's loopback, connects inside
            prefix = []
        elif component in ("containerd", "kubelet"):
            holder = read_pid(self.node_dir / "holder.pid")
            prefix = ["nsenter", "-t", str(holder), "--mount", "--net", "--"]
        log_path = self._path(f"{component}.log")
        with open(log_path, "ab") as log:
            log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {component}\n".encode())
        proc = spawn(
            [*prefix, *argv],
            log_path=log_path,
            pid_path=self._path(f"{component}.pid"),
            tie_to_parent=self.tie_to_parent,
        )
        _wait_exec(proc, Path(argv[0]))
        return proc

    def _components(self) -> list[tuple[str, Path]]:
        """(name, executable) of every long-running process, in stop order."""
        nb = self.node_binaries
        return [
            ("kubelet", nb["kubelet"]),
            ("kube-scheduler", nb["kube-scheduler"]),
            ("kube-controller-manager", nb["kube-controller-manager"]),
            ("containerd", Path(shutil.which("containerd") or "/usr/bin/containerd")),
            ("apiserver", self.binaries.kube_apiserver),
            ("etcd", self.binaries.etcd),
            ("forwarder", Path(sys.executable)),
        ]

    def _running(self, component: str, executable: Path) -> bool:
        pid = read_pid(self._path(f"{component}.pid"))
        return pid is not None and pid_runs(pid, executable)

    def _start_etcd(self) -> tuple[subprocess.Popen[bytes], Callable[[], bool]]:
        proc, _ = super()._start_etcd()
        assert self.ports is not None
        port = self.ports.etcd_client
        return proc, lambda: http_status(self.netns, "127.0.0.1", port, "/health") == 200

    def apiserver_args(self) -> list[str]:
        args = [
            a
            for a in super().apiserver_args()
            if not a.startswith(
                ("--bind-address", "--advertise-address", "--secure-port", "--authorization-mode", "--endpoint-reconciler")
            )
        ]
        return [
            *args,
            "--bind-address=0.0.0.0",
            f"--advertise-address={NODE_IP}",
            f"--secure-port={APISERVER_PORT}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={self.node_dir / 'pki' / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={self.node_dir / 'pki' / 'apiserver-kubelet-client.key'}",
            "--enable-aggregator-routing=true",  # webhooks dialled at their endpoints: no kube-proxy
        ]

    # -- lifecycle ---------------------------------------------------------------------

    def is_healthy(self) -> bool:
        if not all(self._running(c, exe) for c, exe in self._components()):
            return False
        return self.is_ready() and self.node_ready()

    def node_ready(self) -> bool:
        result = self.kubectl(
            "get", "node", NODE_NAME, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False, timeout=10,
        )
        return result.returncode == 0 and result.stdout.strip() == "True"

    def up(self, timeout: float = 180.0) -> float:
        """Start everything unless healthy; wait for the node to be Ready. Idempotent."""
        if self.is_healthy():
            return 0.0
        # the kubelet binds unix sockets under its root (pod-resources/<10 digits>): sun_path holds 107 bytes
        longest = len(str((self.node_dir / "kubelet" / "pod-resources" / ("0" * 10)).resolve()))
        if longest > MAX_SOCKET_PATH:
            raise ControlPlaneError(f"the state directory {self.state_dir} is too long for the kubelet's unix sockets "
                                    f"({longest} > {MAX_SOCKET_PATH} bytes): choose a shorter --state-dir or MODELROUTE_CLUSTER_DIR")
        started = time.monotonic()
        self.down()
        self.node_dir.mkdir(parents=True, exist_ok=True)
        self._network()
        self._mount_namespace()
        pki.write_pki(self.pki.directory)
        self.ports = self._pick_ports(reuse=True)
        self._save_state()
        self._write_admin_kubeconfig()
        self._write_node_pki()
        deadline = started + timeout
        self._spawn("forwarder", [
            sys.executable, "-m", "modelroute.testing.cluster.netns", f"--listen={self.ports.apiserver}",
            f"--netns={self.netns}", f"--to=127.0.0.1:{APISERVER_PORT}",
        ])
        self._start(deadline)
        self._start_containerd(deadline)
        self._import_pause()
        self._spawn("kube-controller-manager", self._controller_manager_args())
        self._spawn("kube-scheduler", self._scheduler_args())
        self._write_kubelet_config()
        self._spawn("kubelet", self._kubelet_args())
        self._wait_node(deadline)
        elapsed = time.monotonic() - started
        self.log(f"one-node cluster {self.name} ready at {self.server} in {elapsed:.1f}s")
        return elapsed

    def down(self, *, wipe: bool = False) -> None:
        """Stop pods, components, mounts, the namespace and the pods' cgroups."""
        components = self._components()
        for component, exe in components[:1]:  # the kubelet first: it would restart pods
            self._stop(component, exe)
        self._remove_containers()
        for component, exe in components[1:]:
            self._stop(component, exe)
        for pid in _pids_with_arg(str(self.node_dir)):  # anything left that runs off our state
            stop_pid(pid, timeout=5)
        holder = read_pid(self.node_dir / "holder.pid")
        if holder is not None:
            stop_pid(holder, executable=self.node_binaries["pause"])
            (self.node_dir / "holder.pid").unlink(missing_ok=True)
        if self.netns.exists():
            _run("ip", "netns", "delete", self.netns_name, check=False)
        self._remove_cgroups()
        if wipe and self.state_dir.exists():
            shutil.rmtree(self.state_dir)
            self.ports = None

    def _stop(self, component: str, exe: Path) -> None:
        pid_path = self._path(f"{component}.pid")
        pid = read_pid(pid_path)
        if pid is not None:
            stop_pid(pid, executable=exe, timeout=STOP_SECONDS)  # the apiserver's SIGTERM can hang
            pid_path.unlink(missing_ok=True)

    # -- network and mounts ------------------------------------------------------------

    def _network(self) -> None:
        self.log(f"creating network namespace {self.netns_name} (node IP {NODE_IP}, pods {POD_CIDR})")
        _run("ip", "netns", "add", self.netns_name)
        script = f"""
            set -e
            ip link set lo up
            ip addr add {KUBERNETES_SERVICE_IP}/32 dev lo
            ip link add mrnode type veth peer name mrgw
            ip addr add {NODE_IP}/24 dev mrnode
            ip link set mrnode up
            ip link set mrgw up
            ip route add default via {NODE_GATEWAY} dev mrnode onlink
            ip route add blackhole 0.0.0.0/1
            ip route add blackhole 128.0.0.0/1
        """
        _run("nsenter", f"--net={self.netns}", "--", "sh", "-c", script)

    def _mount_namespace(self) -> None:
        """Start the holder of the node's mount namespace and set its private mounts up."""
        holder = spawn(
            ["nsenter", f"--net={self.netns}", "--", "unshare", "--mount", "--propagation", "private", "--",
             str(self.node_binaries["pause"])],
            log_path=self.node_dir / "holder.log",
            tie_to_parent=self.tie_to_parent,
        )
        _wait_exec(holder, self.node_binaries["pause"])  # unshare execs it once the namespace exists
        (self.node_dir / "holder.pid").write_text(f"{holder.pid}\n")
        lines = ["set -e"]
        sysctl_dir = self.node_dir / "sysctl"
        sysctl_dir.mkdir(exist_ok=True)
        for name in KUBELET_SYSCTLS:
            source = Path("/proc/sys") / name
            if not source.exists():
                continue
            private = sysctl_dir / name.replace("/", ".")
            private.write_text(source.read_text())
            lines.append(f"mount --bind {private} {source}")
        for default in DEFAULT_PATHS:
            private = self.node_dir / "default-paths" / default.strip("/").replace("/", "-")
            private.mkdir(parents=True, exist_ok=True)
            if not Path(default).exists():  # a mount point on the host: created once, removed by the last down
                Path(default).mkdir(parents=True)
                with _created_paths_registry().open("a") as registry:
                    registry.write(default + "\n")
            lines.append(f"mount --bind {private} {default}")
        _run("nsenter", "-t", str(holder.pid), "--mount", "--", "sh", "-c", "\n".join(lines))

    def _remove_cgroups(self) -> None:
        parent = self.cgroup_parent.lstrip("/")
        for hierarchy in CGROUP_ROOT.iterdir():
            root = hierarchy / parent
            if not root.is_dir():
                continue
            _kill_cgroup(root)
            for path in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                _rmdir(path)
            _rmdir(root)
        # Mount points this project created on the host: removed (if empty) by the last node to
        # go down. While another node runs they stay: its mounts on them must not be detached.
        registry = _created_paths_registry()
        others = [p for p in Path("/run/netns").glob("mr-*") if p.name != self.netns_name]
        if registry.exists() and not others:
            for default in registry.read_text().split():
                with contextlib.suppress(OSError):
                    Path(default).rmdir()  # only if empty: nothing else used it
            registry.unlink()

    def _make_cgroups(self) -> None:
        parent = self.cgroup_parent.lstrip("/")
        for hierarchy in CGROUP_ROOT.iterdir():
            if not (hierarchy / "cgroup.procs").exists():
                continue
            path = hierarchy / parent
            path.mkdir(parents=True, exist_ok=True)
            if hierarchy.name == "cpuset":  # a new cpuset has no cpus until given its parent's
                for cg in [*reversed(path.relative_to(hierarchy).parents), path.relative_to(hierarchy)]:
                    here = hierarchy / cg
                    for knob in ("cpuset.cpus", "cpuset.mems"):
                        if here != hierarchy and not (here / knob).read_text().strip():
                            (here / knob).write_text((here.parent / knob).read_text())

    # -- containerd --------------------------------------------------------------------

    def _start_containerd(self, deadline: float) -> None:
        base = self.node_dir / "containerd"
        cni_conf = self.node_dir / "cni" / "net.d"
        cni_conf.mkdir(parents=True, exist_ok=True)
        base.mkdir(parents=True, exist_ok=True)
        (cni_conf / "10-modelroute.conflist").write_text(json.dumps(cni_config(self.node_dir), indent=2))
        (base / "config.toml").write_text(containerd_config(self.node_dir, self.containerd_socket))
        self.log("starting containerd (own config, root, state and sockets under the state directory)")
        proc = self._spawn("containerd", [str(self._components()[3][1]), "--config", str(base / "config.toml")])
        self._wait("containerd", proc, lambda: self._ctr("version", check=False).returncode == 0, deadline,
                   self._path("containerd.log"))

    def _ctr(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run("ctr", f"--address={self.containerd_socket}", "--namespace=k8s.io", *args, check=check)

    def _import_pause(self) -> None:
        from modelroute.testing.cluster.images import pause_image_archive

        archive = pause_image_archive(self.node_dir / "pause.tar", self.node_binaries["pause"], PAUSE_IMAGE)
        self.import_image(archive)

    def import_image(self, archive: Path) -> None:
        """Import an OCI or docker image archive into the node's containerd (k8s.io namespace)."""
        self._ctr("images", "import", str(archive))

    def _remove_containers(self) -> None:
        """Kill every container of this node, then its shims (containerd may be gone already)."""
        if self._running("containerd", self._components()[3][1]):
            tasks = self._ctr("tasks", "list", "-q", check=False).stdout.split()
            for task in tasks:
                self._ctr("tasks", "kill", "-s", "SIGKILL", "--all", task, check=False)
            for task in tasks:
                self._ctr("tasks", "delete", "-f", task, check=False)
        _kill_cgroup_tree(self.cgroup_parent)
        for pid in _pids_with_arg(str(self.containerd_socket)):
            stop_pid(pid, timeout=5)

    # -- control-plane clients ---------------------------------------------------------

    def _write_node_pki(self) -> None:
        directory = self.node_dir / "pki"
        directory.mkdir(parents=True, exist_ok=True)
        ca = pki.load_ca(self.pki)
        identities = {
            "kubelet": (f"system:node:{NODE_NAME}", ("system:nodes",)),
            "kube-controller-manager": ("system:kube-controller-manager", ()),
            "kube-scheduler": ("system:kube-scheduler", ()),
            "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ("system:masters",)),
        }
        for name, (user, groups) in identities.items():
            if (directory / f"{name}.crt").exists() and (directory / f"{name}.kubeconfig").exists():
                continue
            cert = pki.issue_cert(ca, user, organizations=groups, client=True)
            (directory / f"{name}.crt").write_bytes(cert.cert_pem)
            write_private(directory / f"{name}.key", cert.key_pem.decode())
            write_private(
                directory / f"{name}.kubeconfig",
                render_kubeconfig(
                    cluster_name=self.name,
                    server=f"https://127.0.0.1:{APISERVER_PORT}",  # inside the namespace
                    ca_pem=self.pki.ca_cert.read_bytes(),
                    user=user,
                    client_cert_pem=cert.cert_pem,
                    client_key_pem=cert.key_pem,
                ),
            )

    def _controller_manager_args(self) -> list[str]:
        return self._control_loop_args(
            "kube-controller-manager",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.pki.service_account_key}",
            f"--root-ca-file={self.pki.ca_cert}",
            f"--cluster-signing-cert-file={self.pki.ca_cert}",
            f"--cluster-signing-key-file={self.pki.ca_key}",
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
        )

    def _scheduler_args(self) -> list[str]:
        return self._control_loop_args("kube-scheduler")

    def _control_loop_args(self, component: str, *extra: str) -> list[str]:
        """The command line of a control loop that talks to the API server with its own kubeconfig."""
        kubeconfig = self.node_dir / "pki" / f"{component}.kubeconfig"
        return [
            str(self.node_binaries[component]),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            *extra,
            "--v=0",
        ]

    # -- kubelet -----------------------------------------------------------------------

    def _write_kubelet_config(self) -> None:
        self._make_cgroups()
        config = kubelet_config(self.pki.ca_cert, self.cgroup_parent)
        path = self.node_dir / "kubelet-config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))

    def _kubelet_args(self) -> list[str]:
        return [
            str(self.node_binaries["kubelet"]),
            f"--config={self.node_dir / 'kubelet-config.yaml'}",
            f"--kubeconfig={self.node_dir / 'pki' / 'kubelet.kubeconfig'}",
            f"--root-dir={self.node_dir / 'kubelet'}",
            f"--cert-dir={self.node_dir / 'kubelet-pki'}",
            f"--node-ip={NODE_IP}",
            f"--hostname-override={NODE_NAME}",
            f"--container-runtime-endpoint=unix://{self.containerd_socket}",
            "--v=1",
        ]

    def _wait_node(self, deadline: float) -> None:
        self.log(f"waiting for node {NODE_NAME} to be Ready")
        while time.monotonic() < deadline:
            for component, exe in self._components():
                if not self._running(component, exe):
                    log_path = self._path(f"{component}.log")
                    raise ControlPlaneError(f"{component} exited; last log lines ({log_path}):\n{log_tail(log_path)}")
            if self.node_ready():
                return
            time.sleep(1)
        log_path = self._path("kubelet.log")
        raise ControlPlaneError(f"node not Ready in time; last kubelet log lines ({log_path}):\n{log_tail(log_path)}")

    def status(self) -> dict[str, Any]:
        out = super().status()
        for component, exe in self._components():
            out[component] = {"pid": read_pid(self._path(f"{component}.pid")), "running": self._running(component, exe)}
        out["netns"] = str(self.netns)
        out["nodeReady"] = out["ready"] and self.node_ready()
        out["ready"] = out["nodeReady"]
        return out


def _created_paths_registry() -> Path:
    from modelroute.testing.cluster.binaries import cache_dir

    return cache_dir() / "node-created-paths"


def _wait_exec(proc: subprocess.Popen[bytes], executable: Path) -> None:
    """Wait until nsenter/unshare has exec'ed ``executable`` (pid checks compare the command)."""
    for _ in range(500):
        if pid_runs(proc.pid, executable) or proc.poll() is not None:
            return
        time.sleep(0.01)


def _host_port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _kill_cgroup(root: Path) -> None:
    for procs in root.rglob("cgroup.procs"):
        try:
            pids = [int(p) for p in procs.read_text().split()]
        except OSError:
            continue
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)


def _kill_cgroup_tree(parent: str) -> None:
    """SIGKILL every process in the pods' cgroups (any hierarchy), then wait for them to go."""
    for _ in range(50):
        alive = False
        for hierarchy in CGROUP_ROOT.iterdir():
            root = hierarchy / parent.lstrip("/")
            if root.is_dir():
                _kill_cgroup(root)
                alive = alive or any(p.read_text().strip() for p in root.rglob("cgroup.procs"))
        if not alive:
            return
        time.sleep(0.1)


def _rmdir(path: Path) -> None:
    for _ in range(20):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


def _pids_with_arg(needle: str) -> list[int]:
    """Processes whose command line contains ``needle`` (the node's containerd-shims)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found
