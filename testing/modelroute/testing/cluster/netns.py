"""Reaching into the one-node cluster's network namespace from the host, on loopback only.

The node (etcd, kube-apiserver, containerd, kubelet, pods) lives in a network namespace
that has no link to the host's network. Two ways in:

* :func:`socket_in` creates a socket *inside* the namespace (a short-lived thread joins it
  with ``setns``; the socket keeps belonging to it). Tests use it to serve an emulator on
  the node address or to connect to a pod IP.
* ``python -m modelroute.testing.cluster.netns --listen PORT --netns PATH --to HOST:PORT``
  is a TCP forwarder: it listens on the host's 127.0.0.1 and connects inside the namespace,
  so kubectl, helm and the tests reach the apiserver at ``https://127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import http.client
import os
import signal
import socket
import threading
from pathlib import Path

_CLONE_NEWNET = 0x40000000


def _setns(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def socket_in(netns: Path, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A new socket created inside the network namespace ``netns`` (bind/connect it as usual)."""
    result: list[socket.socket | BaseException] = []

    def make() -> None:  # setns changes only this thread's namespace
        try:
            _setns(netns)
            result.append(socket.socket(family, kind))
        except BaseException as exc:  # handed to the caller
            result.append(exc)

    thread = threading.Thread(target=make, name="netns-socket")
    thread.start()
    thread.join()
    made = result[0]
    if isinstance(made, BaseException):
        raise made
    return made


def listen_in(netns: Path, host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` inside ``netns`` (port 0: any free one)."""
    sock = socket_in(netns)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def http_status(netns: Path, host: str, port: int, path: str, timeout: float = 2.0) -> int | None:
    """``GET http://host:port/path`` inside ``netns``: the status code, None if unreachable."""
    try:
        with socket_in(netns) as sock:
            sock.settimeout(timeout)
            sock.connect((host, port))
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
            head = sock.recv(64).split(b" ", 2)
            return int(head[1]) if len(head) > 1 and head[0].startswith(b"HTTP/") else None
    except (OSError, ValueError):
        return None


def http_get(netns: Path, host: str, port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """``GET http://host:port/path`` inside ``netns`` (e.g. a pod IP): (status, body)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    sock = socket_in(netns)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    conn.sock = sock
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _forward(listen_port: int, netns: Path, host: str, port: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = socket_in(netns)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except OSError:
            sock.close()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(sock=sock)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="forward 127.0.0.1:PORT into a network namespace")
    parser.add_argument("--listen", type=int, required=True, help="port on the host's 127.0.0.1")
    parser.add_argument("--netns", type=Path, required=True, help="network namespace file")
    parser.add_argument("--to", required=True, help="HOST:PORT inside the namespace")
    args = parser.parse_args(argv)
    host, _, port = args.to.rpartition(":")
    asyncio.run(_forward(args.listen, args.netns, host, int(port)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
