"""Server-sent events, read from the bytes of a streaming answer (``transport.Transport.stream``).

Every provider streams SSE; the adapters want each event's ``data`` (one ``json.loads``
each, in ``build_send``), not the SDKs' per-event pydantic objects. The parser works on
whatever one socket read delivered (often one whole event, under load several): no per-line
reads, and one call per read, not per event or line.
"""

from __future__ import annotations


class SseReader:
    """Incremental SSE parser: ``feed`` the bytes of each read, get the ``data`` of every event it completed.

    Multi-line data is joined with ``\\n``; comments and ``event:``/``id:``/``retry:`` fields are
    skipped (every provider repeats the event type inside its JSON). Lines may end in ``\\n``,
    ``\\r\\n`` or ``\\r``. ``end`` yields a final event that came without its blank line.
    Data is decoded as UTF-8 (``UnicodeDecodeError`` otherwise).
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[str]:
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:
            held = buf.endswith(b"\r")  # maybe the first half of a \r\n split across two reads
            buf = (buf[:-1] if held else buf).replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if held:
                buf += b"\r"
        if b"\n\n" not in buf:
            self._buf = buf
            return []
        try:  # the whole read as text at once (splitting at "\n\n" never cuts a UTF-8 character)
            *texts, rest = buf.decode("utf-8").split("\n\n")
        except UnicodeDecodeError:  # a character cut at the end of the read, or bytes no data line holds
            *events, self._buf = buf.split(b"\n\n")
            return [value for value in map(_data, events) if value is not None]
        self._buf = rest.encode() if rest else b""
        out: list[str] = []
        for ev in texts:
            if ev.startswith("data: ") and "\n" not in ev:  # the common shape: one data line
                out.append(ev[6:])
            else:
                parts = [line[6:] if line.startswith("data: ") else line[5:] for line in ev.split("\n") if line.startswith("data:")]
                if parts:  # ``_data``'s reading, on the text
                    out.append(parts[0] if len(parts) == 1 else "\n".join(parts))
        return out

    def end(self) -> list[str]:
        """The data of an event the stream ended without terminating (none: ``[]``)."""
        rest, self._buf = self._buf.replace(b"\r", b"\n"), b""
        out: list[str] = []
        for ev in rest.split(b"\n\n"):
            value = _data(ev)
            if value is not None:
                out.append(value)
        return out


def _data(event: bytes) -> str | None:
    """The ``data`` of one event's lines (None: the event has no data field)."""
    if event.startswith(b"data: ") and b"\n" not in event:  # the common shape: one data line
        return event[6:].decode("utf-8")
    parts: list[bytes] = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            parts.append(line[6:] if line.startswith(b"data: ") else line[5:])
    if not parts:
        return None
    return (parts[0] if len(parts) == 1 else b"\n".join(parts)).decode("utf-8")
