"""Building the repository's images with buildah and importing them into the node.

No container registry is reachable here, so every image is built on this machine:

1. a base image from Debian packages with mmdebstrap (python3.11, ``python``, pip, venv,
   passwd), standing in for the Dockerfile's default ``python:3.11-slim-bookworm``;
2. the repository's ``Dockerfile`` with ``--build-arg BASE_IMAGE=<that base>`` (pip inside
   the build installs from the package registry as usual);
3. a small app image (``examples/openai-app``): the real ``openai`` SDK, base URL from the
   injected environment.

buildah runs daemonless with chroot isolation and overlay storage in the cache
(``$MODELROUTE_CACHE/buildah``); images are exported as docker archives and imported into
the node's containerd with ``ctr``. Each step is skipped when its output is up to date
(keyed by the inputs' content), so a second ``hack/local-cluster images`` takes seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from modelroute.testing.cluster.binaries import Log, _file_lock, cache_dir, repo_root, stderr_log

if TYPE_CHECKING:
    from modelroute.testing.cluster.node import NodeCluster

BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "passwd", "ca-certificates")
BASE_SUITE = "bookworm"
IMAGE_REPOSITORY = "localhost/modelroute"
APP_REPOSITORY = "localhost/modelroute-openai-app"
SOURCES = ("Dockerfile", "requirements.lock", "pyproject.toml", "README.md", "api", "cli", "sidecar", "operator", "testing")


class ImageBuildError(RuntimeError):
    """A build step failed; the message carries the command's output tail."""


def _buildah_dirs() -> list[str]:
    root = cache_dir() / "buildah"
    return [f"--root={root / 'storage'}", f"--runroot={root / 'run'}", "--storage-driver=overlay"]


def _run(argv: list[str], log: Log, what: str, log_path: Path | None = None, cwd: Path | None = None) -> str:
    started = time.monotonic()
    log(f"{what} ...")
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_text(f"$ {' '.join(argv)}\n{result.stdout}\n{result.stderr}")
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise ImageBuildError(f"{what} failed (exit {result.returncode}): {' '.join(argv[:4])} ...\n{tail}")
    log(f"{what}: done in {time.monotonic() - started:.0f}s")
    return result.stdout


def _host_pip_config() -> list[str]:
    """RUN steps see this machine's pip config and CA bundle (a TLS-inspecting proxy's CA
    lives there), mounted read-only for the build only: nothing of it lands in an image."""
    mounts = []
    for path in ("/etc/pip.conf", "/etc/ssl/certs/ca-certificates.crt"):
        if Path(path).is_file():
            mounts.append(f"--volume={path}:{path}:ro")
    return mounts


def _buildah(*args: str) -> list[str]:
    return ["buildah", *_buildah_dirs(), *args]


def _image_exists(ref: str) -> bool:
    return subprocess.run(_buildah("inspect", "--type=image", ref), capture_output=True).returncode == 0


def _digest_of(paths: list[Path], extra: str = "") -> str:
    """A content hash of files/trees (sorted, .pyc and caches skipped)."""
    h = hashlib.sha256(extra.encode())
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            h.update(str(f.relative_to(root.parent)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def ensure_base_image(log: Log = stderr_log) -> str:
    """The Debian python base (mmdebstrap), once per machine; returns its reference."""
    ref = f"{IMAGE_REPOSITORY}/python:3.11-{BASE_SUITE}-debian"
    if _image_exists(ref):
        return ref
    work = cache_dir() / "images"
    work.mkdir(parents=True, exist_ok=True)
    rootfs = work / f"base-{BASE_SUITE}.tar"
    if not rootfs.is_file():
        tmp = rootfs.with_suffix(".tmp.tar")
        # The host's own apt sources: the same mirror (and snapshot) apt-get uses here.
        sources = Path("/etc/apt/sources.list.d/debian.sources")
        mirror = [str(sources)] if sources.exists() else []
        _run(
            ["mmdebstrap", "--variant=minbase", "--mode=root", f"--include={','.join(BASE_PACKAGES)}",
             # the upstream image's pip may install into the system python; Debian's refuses (PEP 668)
             '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
             "--customize-hook=rm -rf \"$1\"/var/lib/apt/lists/* \"$1\"/var/cache/apt/*",
             BASE_SUITE, str(tmp), *mirror],
            log, f"building the Debian {BASE_SUITE} python base with mmdebstrap", work / "mmdebstrap.log",
        )
        os.replace(tmp, rootfs)
    container = _run(_buildah("from", "scratch"), log, "creating the base image").strip()
    try:
        _run(_buildah("add", container, str(rootfs), "/"), log, "adding the root filesystem")
        _run(_buildah("config", "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                      "--env", "LANG=C.UTF-8", "--cmd", "python3", container), log, "configuring the base")
        _run(_buildah("commit", "--rm", container, ref), log, f"committing {ref}")
    except ImageBuildError:
        subprocess.run(_buildah("rm", container), capture_output=True)
        raise
    return ref


def build_modelroute_image(base: str, log: Log = stderr_log) -> str:
    """The repository's Dockerfile built with buildah; tag = content hash of its inputs."""
    repo = repo_root()
    tag = _digest_of([repo / s for s in SOURCES], extra=base)
    ref = f"{IMAGE_REPOSITORY}:{tag}"
    if _image_exists(ref):
        return ref
    _run(
        _buildah("bud", "--isolation=chroot", "--network=host", "--layers", *_host_pip_config(), f"--build-arg=BASE_IMAGE={base}",
                 "-f", str(repo / "Dockerfile"), "-t", ref, str(repo)),
        log, f"building {ref} from the Dockerfile with buildah (pip installs from the package registry)",
        cache_dir() / "logs" / "build-modelroute-image.log",
    )
    return ref


def build_app_image(base: str, log: Log = stderr_log) -> str:
    """The demo app (examples/openai-app): the real openai SDK, at the locked version."""
    repo = repo_root()
    context = repo / "examples" / "openai-app"
    openai_pin = next(
        line.split("==", 1)[1].split()[0]
        for line in (repo / "requirements.lock").read_text().splitlines()
        if line.startswith("openai==")
    )
    tag = _digest_of([context], extra=base + openai_pin)
    ref = f"{APP_REPOSITORY}:{tag}"
    if _image_exists(ref):
        return ref
    _run(
        _buildah("bud", "--isolation=chroot", "--network=host", "--layers", *_host_pip_config(), f"--build-arg=BASE_IMAGE={base}",
                 f"--build-arg=OPENAI_VERSION={openai_pin}", "-t", ref, str(context)),
        log, f"building {ref}", cache_dir() / "logs" / "build-openai-app-image.log",
    )
    return ref


def import_into_node(node: NodeCluster, ref: str, log: Log = stderr_log) -> None:
    """Export ``ref`` from buildah's storage and import it into the node's containerd."""
    listed = node._ctr("images", "list", "-q", check=False).stdout.split()
    if ref in listed:
        return
    work = cache_dir() / "images"
    archive = work / (ref.replace("/", "_").replace(":", "_") + ".tar")
    archive.unlink(missing_ok=True)
    _run(_buildah("push", ref, f"docker-archive:{archive}:{ref}"), log, f"exporting {ref}")
    try:
        node.import_image(archive)
    finally:
        archive.unlink(missing_ok=True)
    log(f"imported {ref} into the node's containerd")


def build_images(log: Log = stderr_log) -> tuple[str, str]:
    """The base, the modelroute image and the app image (cached); (image, app image) refs."""
    if shutil.which("buildah") is None or shutil.which("mmdebstrap") is None:
        raise ImageBuildError("buildah and mmdebstrap are needed (hack/node-deps installs them)")
    with _file_lock(cache_dir(), "images"):  # parallel sessions build each image once
        base = ensure_base_image(log)
        return build_modelroute_image(base, log), build_app_image(base, log)


def build_and_import(node: NodeCluster, log: Log = stderr_log) -> str:
    """Everything ``hack/local-cluster images`` does; returns the modelroute image reference."""
    image, app = build_images(log)
    for ref in (image, app):
        import_into_node(node, ref, log)
    (node.node_dir / "images.env").write_text(f"MODELROUTE_IMAGE={image}\nAPP_IMAGE={app}\n")
    return image
