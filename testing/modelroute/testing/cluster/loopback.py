"""Distinct loopback addresses for fake pods (Linux routes all of 127.0.0.0/8 to ``lo``).

Every pod gets its own 127.x.y.z, so many pod processes can listen on the same port, as
they would in a cluster. Test sessions on one machine must not hand out the same address,
so each allocator claims a whole /24 block by holding an ``flock`` on a file named after
it; the kernel drops the lock when the process dies, so a crashed session frees its block.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import threading
from pathlib import Path
from typing import IO


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LoopbackAddresses:
    """Hands out 127.a.b.1 ... 127.a.b.254 from claimed blocks (more blocks on demand)."""

    def __init__(self, lock_dir: Path | None = None) -> None:
        self._lock_dir = lock_dir or Path(tempfile.gettempdir()) / "modelroute-loopback"
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        self._locks: list[IO[str]] = []
        self._free: list[str] = []
        self._used: set[str] = set()
        self._mutex = threading.Lock()

    def _claim_block(self) -> None:
        rng = random.Random(os.getpid() ^ id(self))
        for _ in range(1000):
            a, b = rng.randint(1, 254), rng.randint(0, 255)  # never 127.0.x.x
            handle = open(self._lock_dir / f"127.{a}.{b}.lock", "w")  # noqa: SIM115 (held open)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            self._locks.append(handle)
            self._free.extend(f"127.{a}.{b}.{n}" for n in range(254, 0, -1))
            return
        raise RuntimeError("no free loopback block")

    def allocate(self) -> str:
        with self._mutex:
            if not self._free:
                self._claim_block()
            address = self._free.pop()
            self._used.add(address)
            return address

    def release(self, address: str) -> None:
        with self._mutex:
            if address in self._used:
                self._used.discard(address)
                self._free.insert(0, address)  # reused last

    def close(self) -> None:
        with self._mutex:
            for handle in self._locks:
                handle.close()
            self._locks.clear()
            self._free.clear()
