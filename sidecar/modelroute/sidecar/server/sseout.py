"""The app's side of a relayed stream: a ``StreamResponse`` whose writes after the first cost one call, not two coroutines.

``StreamResponse.write`` goes through two coroutines (``StreamResponse.write``,
``StreamWriter.write``), the chunk-size line built and joined in ``_writelines``, then
``transport.write``; at one upstream read per chunk (a quiet host) that is a fixed cost per
chunk. Once the headers are out, ``send`` frames the data itself (``<size hex>\\r\\n<data>\\r\\n``,
the same bytes) and hands it to the transport in one call.

Backpressure: ``send`` says when the app's transport has paused writing (asyncio pauses it once
its buffer passes the high-water mark, 64 KiB by default); the relay then awaits ``drain``
(``drained``) before reading upstream again. So the buffer for a slow app holds at most the high-water mark
plus one batch (one upstream read's chunks): no worse than ``StreamResponse.write``, which
looks at the pause only every 64 KiB written.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError
from aiohttp.http_writer import StreamWriter


class SseResponse(web.StreamResponse):
    """A streamed answer whose headers go out with its first bytes, in one send, and whose later writes are ``send``s.

    aiohttp's ``StreamResponse`` sends its headers alone at ``prepare`` (its ``Response`` holds
    them for the body); a stream is prepared only once its first chunk is here, which is written
    right after, so a separate send only costs the app a wake-up before its first token.
    """

    _send_headers_immediately = False
    _direct: StreamWriter | None = None

    def direct(self) -> bool:
        """Whether ``send`` may be used: the headers are out and the body is plainly chunked
        (no compression, declared length or write callbacks, which only ``write`` honours)."""
        if self._direct is None:
            w = self._payload_writer
            # aiohttp's private fields, read with defaults: a release that renames them falls back to ``write``.
            if type(w) is StreamWriter and getattr(w, "chunked", False) and getattr(w, "_headers_written", False) \
                    and getattr(w, "_compress", True) is None and getattr(w, "length", 0) is None \
                    and getattr(w, "_on_chunk_sent", True) is None and getattr(w, "on_body_write", True) is None \
                    and hasattr(w, "output_size") and hasattr(getattr(w, "protocol", None), "writing_paused"):
                self._direct = w
        return self._direct is not None

    def send(self, data: bytes) -> bool:
        """Write ``data`` (non-empty) as one HTTP chunk; True when the app's transport paused
        writing (await ``drained`` before producing more). Only after ``direct()`` said True."""
        w = self._direct
        assert w is not None and data
        framed = b"%x\r\n%b\r\n" % (len(data), data)
        w.output_size += len(framed)
        protocol = w.protocol
        transport = protocol.transport
        if transport is None or transport.is_closing():
            raise ClientConnectionResetError("Cannot write to closing transport")
        transport.write(framed)
        return protocol.writing_paused

    async def drained(self) -> None:
        """Wait until the app's transport takes more (after ``send`` returned True)."""
        assert self._direct is not None
        await self._direct.drain()
