"""Server-sent events, read from the lines of a streaming answer (``transport.Transport.stream``).

Every provider streams SSE; the adapters want each event's ``data`` (one ``json.loads``
each, in ``build_send.json_events``), not the SDKs' per-event pydantic objects.
"""

from __future__ import annotations

from collections.abc import AsyncIterator


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The ``data`` of each event (multi-line data joined with ``\\n``); comments and
    ``event:``/``id:``/``retry:`` fields are skipped (every provider repeats the event
    type inside its JSON). A final event without its blank line is still yielded."""
    buf: list[str] = []
    async for line in lines:
        if not line:
            if buf:
                yield buf[0] if len(buf) == 1 else "\n".join(buf)
                buf = []
            continue
        if line.startswith("data:"):
            buf.append(line[6:] if line.startswith("data: ") else line[5:])
    if buf:
        yield buf[0] if len(buf) == 1 else "\n".join(buf)
