"""Abuse of a real sidecar process's admin listener: huge and slow bodies, bad signatures and
headers, and replays of captured pushes across a restart (issue 14, items 5 and 8).

Requests go over raw sockets so a test controls exactly what is sent: the refusals must come
back while the body has not been sent at all, which proves the sidecar did not wait to read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from modelroute.api.config import ConfigPush, PodRef, SidecarConfig
from modelroute.api.signing import (
    SIGNATURE_HEADER,
    generate_private_key_pem,
    load_private_key,
    public_key_pem,
    sign,
)
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.testing.sidecars import route

from . import test_cli_process
from .test_cli_process import Proc, spawn

procs = test_cli_process.procs  # the fixture: kills what a test started

TOKEN = "abuse-admin-token"
POD = PodRef(namespace="team-a", name="web-1", uid="0b5c7c1e-uid-1")
PRIV = generate_private_key_pem()
KEY = load_private_key(PRIV)
BIG = int(7.5 * 1024 * 1024)
LIMIT = 64 * 1024


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> dict[str, object]:
        doc = json.loads(self.body)
        assert isinstance(doc, dict)
        return doc


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    status_line = await reader.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Reply(int(status_line.split()[1]), headers, body)


async def send_head(admin: str, method: str, path: str, headers: dict[str, str] | list[tuple[str, bytes]]
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection and send only the request head (no body byte)."""
    url = urlsplit(admin)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    items = headers.items() if isinstance(headers, dict) else headers
    head = f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\n".encode()
    for name, value in items:
        head += name.encode() + b": " + (value if isinstance(value, bytes) else value.encode()) + b"\r\n"
    writer.write(head + b"\r\n")
    await writer.drain()
    return reader, writer


async def head_only(admin: str, method: str, path: str, headers: dict[str, str] | list[tuple[str, bytes]],
                    within: float = 5) -> Reply:
    """The reply to a request whose body is announced but never sent."""
    reader, writer = await send_head(admin, method, path, headers)
    try:
        async with asyncio.timeout(within):
            return await read_reply(reader)
    finally:
        writer.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def push(config: SidecarConfig, issued: datetime, pod: PodRef = POD) -> tuple[bytes, dict[str, str]]:
    body = ConfigPush(audience=pod, issued_at=issued, config=config).model_dump_json(by_alias=True, exclude_none=True).encode()
    return body, {SIGNATURE_HEADER: sign(KEY, body), "Content-Type": "application/json"}


async def put(admin: str, body: bytes, headers: dict[str, str]) -> Reply:
    reader, writer = await send_head(admin, "PUT", "/config", {**headers, "Content-Length": str(len(body))})
    writer.write(body)
    await writer.drain()
    try:
        async with asyncio.timeout(10):
            return await read_reply(reader)
    finally:
        writer.close()


def config_of(name: str) -> SidecarConfig:
    doc = route(name, [{"name": "t", "provider": "openai", "model": "gpt-4o-mini", "baseUrl": "http://127.0.0.1:9/v1",
                        "apiKey": {"env": "KEY_OPENAI"}}])
    return SidecarConfig(routes=[ModelRoute.model_validate(doc)])


async def start(procs: list[Proc], tmp_path: Path, *extra: str, token: bool = True) -> Proc:
    (tmp_path / "operator.pub").write_bytes(public_key_pem(PRIV))
    env = {"MODELROUTE_POD_NAMESPACE": POD.namespace, "MODELROUTE_POD_NAME": POD.name, "MODELROUTE_POD_UID": str(POD.uid)}
    if token:
        env["MODELROUTE_ADMIN_TOKEN"] = TOKEN
    p = await spawn("--operator-public-key", str(tmp_path / "operator.pub"), "--state-dir", str(tmp_path / "state"),
                    "--admin-max-body-bytes", str(LIMIT), "--admin-body-seconds", "1", *extra, env=env)
    procs.append(p)
    await p.wait_listening()
    return p


async def test_oversized_bodies_are_refused_unread(tmp_path: Path, procs: list[Proc]) -> None:
    p = await start(procs, tmp_path)
    big = {"Content-Length": str(BIG), "Content-Type": "application/json"}
    # Each answer arrives although not one body byte was sent: nothing waited for (or read) the body.
    r = await head_only(p.admin, "PUT", "/config", {**big, "Authorization": "Bearer wrong"})
    assert r.status == 401 and r.json()["error"]["code"] == "invalid_token"  # type: ignore[index]
    assert r.headers.get("connection", "").lower() == "close"
    r = await head_only(p.admin, "PUT", "/config", big)
    assert r.status == 401
    r = await head_only(p.admin, "PUT", "/config", {**big, SIGNATURE_HEADER: "ed25519=AAAA"})
    assert r.status == 401 and r.json()["error"]["code"] == "invalid_signature"  # type: ignore[index]
    well_formed = sign(load_private_key(generate_private_key_pem()), b"x")  # right shape, wrong key
    r = await head_only(p.admin, "PUT", "/config", {**big, SIGNATURE_HEADER: well_formed})
    assert r.status == 413 and r.json()["error"]["code"] == "request_too_large"  # type: ignore[index]
    r = await head_only(p.admin, "PUT", "/config", {**big, "Authorization": f"Bearer {TOKEN}"})
    assert r.status == 413 and str(LIMIT) in r.json()["error"]["message"]  # type: ignore[index]
    r = await head_only(p.admin, "POST", "/eval", {**big, SIGNATURE_HEADER: well_formed})
    assert r.status == 413

    # 16 unauthenticated 7.5 MiB bodies sent in full at once: the sidecar's memory stays put.
    before = rss_kib(p.proc.pid)
    payload = b"[" + b" " * (BIG - 2) + b"]"

    async def flood() -> int:
        reader, writer = await send_head(p.admin, "PUT", "/config", {"Content-Length": str(BIG), "Authorization": "Bearer x"})
        writer.write(payload)
        with contextlib.suppress(ConnectionError):  # the sidecar closes the connection after refusing
            await writer.drain()
        try:
            return (await read_reply(reader)).status
        finally:
            writer.close()

    statuses = await asyncio.gather(*(flood() for _ in range(16)))
    assert statuses == [401] * 16
    grown = rss_kib(p.proc.pid) - before
    assert grown < 16 * 1024, f"RSS grew by {grown} KiB"  # the old listener grew ~90 MiB here

    # A chunked body (no Content-Length) from a token holder is cut off at the limit too.
    reader, writer = await send_head(p.admin, "PUT", "/config", {"Transfer-Encoding": "chunked",
                                                                 "Authorization": f"Bearer {TOKEN}"})
    chunk = b" " * 8192
    with contextlib.suppress(ConnectionError):
        for _ in range(LIMIT // len(chunk) + 2):
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
    async with asyncio.timeout(5):
        r = await read_reply(reader)
    writer.close()
    assert r.status == 413 and r.json()["error"]["code"] == "request_too_large"  # type: ignore[index]
    async with asyncio.timeout(5):
        r = await head_only(p.admin, "GET", "/healthz", {})
    assert r.status == 200


async def test_slow_body_times_out_and_bad_headers_are_4xx(tmp_path: Path, procs: list[Proc]) -> None:
    p = await start(procs, tmp_path)
    reader, writer = await send_head(p.admin, "PUT", "/config", {"Content-Length": "1000", "Authorization": f"Bearer {TOKEN}"})
    writer.write(b"[")  # then nothing more: a slowloris body
    await writer.drain()
    async with asyncio.timeout(5):  # --admin-body-seconds 1
        r = await read_reply(reader)
    writer.close()
    assert r.status == 408 and r.json()["error"]["code"] == "body_timeout"  # type: ignore[index]

    for path, method in (("/config", "PUT"), ("/config", "GET")):
        r = await head_only(p.admin, method, path, [("Authorization", "Bearer tökén".encode()), ("Content-Length", b"0")])
        assert r.status == 401, (method, r.body)
    body, headers = push(config_of("a"), datetime.now(UTC))
    forged = sign(load_private_key(generate_private_key_pem()), body)
    r = await put(p.admin, body, {SIGNATURE_HEADER: forged})
    assert r.status == 403 and r.json()["error"]["code"] == "invalid_signature"  # type: ignore[index]
    good = headers[SIGNATURE_HEADER]
    tampered = good[:20] + ("B" if good[20] == "A" else "A") + good[21:]
    r = await put(p.admin, body, {SIGNATURE_HEADER: tampered})
    assert r.status == 403
    r = await put(p.admin, body, {SIGNATURE_HEADER: good[:-4] + "AAA="})  # not 64 bytes: refused by form
    assert r.status == 401
    r = await put(p.admin, body[:-1] + b" ", headers)  # one byte changed under a valid signature
    assert r.status == 403
    async with asyncio.timeout(5):
        r = await head_only(p.admin, "GET", "/readyz", {})
    assert r.status == 503  # nothing was applied


async def test_replays_are_refused_across_a_restart(tmp_path: Path, procs: list[Proc]) -> None:
    p = await start(procs, tmp_path, token=False)
    now = datetime.now(UTC)
    first = push(config_of("a"), now - timedelta(seconds=20))
    second = push(config_of("b"), now - timedelta(seconds=10))
    other_uid = push(config_of("c"), now, pod=POD.model_copy(update={"uid": "another-pod-same-name"}))
    no_uid = push(config_of("c"), now, pod=POD.model_copy(update={"uid": None}))
    assert (await put(p.admin, *first)).status == 200
    assert (await put(p.admin, *second)).status == 200
    for captured in (other_uid, no_uid):
        r = await put(p.admin, *captured)
        assert r.status == 403 and r.json()["error"]["code"] == "wrong_audience"  # type: ignore[index]
    assert (tmp_path / "state" / "replay-floor.json").exists()

    p.proc.send_signal(signal.SIGKILL)  # a crash: nothing flushed at exit
    await p.proc.wait()
    p = await start(procs, tmp_path, token=False)
    for captured in (second, first):  # the restarted sidecar serves nothing, yet refuses both
        r = await put(p.admin, *captured)
        assert r.status == 403 and r.json()["error"]["code"] == "replayed_push", r.body  # type: ignore[index]
    fresh = push(config_of("b"), datetime.now(UTC))
    assert (await put(p.admin, *fresh)).status == 200
