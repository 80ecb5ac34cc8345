"""``hack/local-cluster``: a long-lived local control plane for development and the demo.

    hack/local-cluster build [--node]            build/install the binaries into the cache (once per machine)
    hack/local-cluster up [--state-dir DIR]      start (idempotent); last stdout line: kubeconfig path
    hack/local-cluster up --node                 the same plus a real node (kubelet, containerd, pods)
    hack/local-cluster images                    build the images, import them into the node;
                                                 last stdout line: the modelroute image reference
    hack/local-cluster down [--wipe]             stop (the node too); --wipe also deletes certificates and etcd data
    hack/local-cluster status                    JSON summary; exit 1 when not ready
    hack/local-cluster env                       `eval "$(hack/local-cluster env)"` sets KUBECONFIG, PATH
    hack/local-cluster kubeconfig                print the admin kubeconfig path

State lives in ``$MODELROUTE_CLUSTER_DIR`` or ``$MODELROUTE_CACHE/local-cluster`` (tests
use their own temporary directories, so they never touch this cluster). Progress goes to
stderr; stdout carries only results.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import sys
from pathlib import Path

from modelroute.testing.cluster.binaries import (
    binary_paths,
    cache_dir,
    ensure_binaries,
    ensure_node_binaries,
    node_binary_paths,
)
from modelroute.testing.cluster.controlplane import ControlPlane, ControlPlaneError
from modelroute.testing.cluster.node import NodeCluster


def default_state_dir() -> Path:
    env = os.environ.get("MODELROUTE_CLUSTER_DIR")
    return Path(env) if env else cache_dir() / "local-cluster"


def _control_plane(state_dir: Path, build: bool, node: bool = False) -> ControlPlane:
    binaries = ensure_binaries() if build else binary_paths()
    if node or (state_dir / "node").is_dir():
        node_binaries = ensure_node_binaries() if build else node_binary_paths()
        return NodeCluster(state_dir, binaries, node_binaries, name="modelroute-local", tie_to_parent=False)
    return ControlPlane(state_dir, binaries, name="modelroute-local", tie_to_parent=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hack/local-cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=None, help="cluster state directory")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build/install kube-apiserver, etcd, kubectl and helm into the cache")
    build.add_argument("--node", action="store_true", help="also kubelet, controller-manager, scheduler, pause")
    up = sub.add_parser("up", help="start etcd + kube-apiserver (idempotent)")
    up.add_argument("--node", action="store_true", help="a real one-node cluster (see node.py)")
    sub.add_parser("images", help="build the images and import them into the node's containerd")
    down = sub.add_parser("down", help="stop the control plane")
    down.add_argument("--wipe", action="store_true", help="also delete certificates and etcd data")
    sub.add_parser("status", help="print a JSON status")
    sub.add_parser("env", help="print shell exports for KUBECONFIG and PATH")
    sub.add_parser("kubeconfig", help="print the admin kubeconfig path")
    args = parser.parse_args(argv)
    if args.command == "build":
        binaries = ensure_binaries()
        for path in (binaries.kube_apiserver, binaries.etcd, binaries.kubectl, binaries.helm):
            print(path)
        if args.node:
            for path in ensure_node_binaries().values():
                print(path)
        return 0
    state_dir: Path = (args.state_dir or default_state_dir()).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)

    with open(state_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one up/down at a time per cluster
        if args.command == "images":
            from modelroute.testing.cluster.imagebuild import build_and_import

            plane = _control_plane(state_dir, build=False)
            if not isinstance(plane, NodeCluster) or not plane.is_healthy():
                print("local-cluster: no node running: `hack/local-cluster up --node` first", file=sys.stderr)
                return 1
            print(build_and_import(plane))
            return 0
        if args.command == "up":
            plane = _control_plane(state_dir, build=True, node=args.node)
            try:
                plane.up()
            except ControlPlaneError as exc:
                print(f"local-cluster: {exc}", file=sys.stderr)
                return 1
            print(plane.kubeconfig)
            return 0
        plane = _control_plane(state_dir, build=False)
        if args.command == "down":
            plane.down(wipe=args.wipe)
            print(f"stopped{' and wiped' if args.wipe else ''}: {state_dir}", file=sys.stderr)
            return 0
        if args.command == "status":
            status = plane.status()
            print(json.dumps(status, indent=2))
            return 0 if status["ready"] else 1
        if args.command == "env":
            print(f"export KUBECONFIG={shlex.quote(str(plane.kubeconfig))}")
            print(f'export PATH={shlex.quote(str(plane.binaries.tools_dir))}:"$PATH"')
            return 0
        print(plane.kubeconfig)
        return 0


if __name__ == "__main__":
    sys.exit(main())
