"""OpenAI's ``obfuscation`` padding on streamed events, as the real API sends it (reproducibly here).

OpenAI adds ``"obfuscation": "<random [A-Za-z0-9]>"`` to stream events "to normalize payload sizes
as a mitigation to certain side-channel attacks", unless the request sets
``stream_options.include_obfuscation: false`` (openai-python ``ChatCompletionChunk.obfuscation``,
``ChatCompletionStreamOptionsParam``; the OpenAPI spec's ``ChatCompletionStreamOptions`` and
``ResponseStreamOptions``). Recorded streams show where and how long:

* Chat Completions: the last field of *every* chunk (role, content, finish and usage chunk), padding
  the chunk's JSON text to 1 (mod 16) characters (code points, not bytes): 1 to 16 characters.
* Responses: the last field of the delta events (``response.output_text.delta``,
  ``response.function_call_arguments.delta``), padding the delta string to 0 (mod 16) characters.

The real characters are random; here they are cut from a fixed pseudo-random pool at a place
given by the request's sequence number and the frame's index, so a stream's bytes are the same
on every run and in ``bench/streamload``'s Go emulator (``obfuscation.go``, the same pool).
"""

from __future__ import annotations

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
POOL_SIZE = 1024
_MASK = (1 << 64) - 1


def _pool() -> str:
    """``POOL_SIZE`` characters of ``ALPHABET`` drawn with splitmix64 from 0 (and the first 16 again, for slices that wrap)."""
    out = []
    x = 0
    for _ in range(POOL_SIZE):
        x = (x + 0x9E3779B97F4A7C15) & _MASK
        z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        out.append(ALPHABET[(z ^ (z >> 31)) % len(ALPHABET)])
    return "".join(out + out[:16])


_POOL = _pool()


def padding(length: int, seq: int, index: int) -> str:
    """``length`` (1-16) characters for frame ``index`` of the stream answering request ``seq``."""
    start = (seq * 977 + index * 61) % POOL_SIZE
    return _POOL[start:start + length]


def _chars(data: bytes) -> int:
    return len(data) if data.isascii() else len(data.decode())


def chat_chunk(body: bytes, seq: int, index: int) -> bytes:
    """A chunk's JSON ``body`` (an object) with its ``obfuscation`` field last: ``,"obfuscation":"`` is 16
    characters and ``"}`` 2, so a padding of 16 - len(body) % 16 makes the text 1 (mod 16) long."""
    pad = padding(16 - _chars(body) % 16, seq, index)
    return body[:-1] + b',"obfuscation":"' + pad.encode() + b'"}'


def delta_padding(delta: str, seq: int, index: int) -> str:
    """The ``obfuscation`` of a Responses delta event carrying ``delta``."""
    return padding(16 - len(delta) % 16, seq, index)
