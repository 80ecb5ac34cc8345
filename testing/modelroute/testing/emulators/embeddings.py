"""Emulated embeddings: OpenAI ``/v1/embeddings`` and Gemini ``:embedContent`` / ``:batchEmbedContents``.

Vectors are deterministic (a hash of model and text, unit length) and have the model's default
dimension (``ProviderSpec.embedding_models``; 8 for a model it does not know) or the one asked for.
OpenAI bodies are validated by the strict OpenAPI schema (``dialects.openai_schema``); Gemini
bodies here against the field sets of google-genai's ``EmbedContentRequest`` wire form (the
derived Gemini schema covers generateContent only). Usage: OpenAI counts tokens; Gemini reports none.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from modelroute.api.v1alpha1.providers import PROVIDERS, Provider

from .dialects.base import BadRequest
from .model import count_tokens

UNKNOWN_DIMENSION = 8
MAX_UNKNOWN = 4096  # the largest dimension asked of a model the emulator does not know
_GEMINI_ITEM = frozenset({"model", "content", "taskType", "title", "outputDimensionality", "autoTruncate"})


def dimension_of(provider: str, model: str) -> int:
    p = Provider.OPENAI if provider in ("openai", "openai-compatible") else Provider(provider)
    return PROVIDERS[p].embedding_models.get(model, UNKNOWN_DIMENSION)


def vector(model: str, text: str, dims: int) -> list[float]:
    """A deterministic unit vector of ``dims`` floats for ``text``."""
    out: list[float] = []
    block = 0
    while len(out) < dims:
        digest = hashlib.sha256(f"{model}\0{block}\0{text}".encode()).digest()
        out.extend((b - 127.5) / 127.5 for b in digest)
        block += 1
    v = out[:dims]
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [round(x / norm, 6) for x in v]


def openai_inputs(body: Any) -> tuple[list[str], int | None]:
    """Texts and dimensions of an OpenAI embeddings body (already schema-checked when strict)."""
    if not isinstance(body, dict) or "input" not in body:
        raise BadRequest("you must provide an input", param="input")
    raw = body["input"]
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        raise BadRequest("'input' must be a non-empty string or array of non-empty strings (emulator)", param="input")
    dims = body.get("dimensions")
    return texts, dims if isinstance(dims, int) else None


def gemini_inputs(body: Any, batch: bool) -> tuple[list[str], int | None]:
    """Texts and outputDimensionality of an ``embedContent`` or ``batchEmbedContents`` body."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid JSON payload received. Expected an object.")
    if batch:
        extra = sorted(set(body) - {"requests"})
        items = body.get("requests")
        if extra:
            raise BadRequest(f'Invalid JSON payload received. Unknown name "{extra[0]}": Cannot find field.')
        if not isinstance(items, list) or not items:
            raise BadRequest("* BatchEmbedContentsRequest.requests: requests is not specified")
    else:
        items = [body]
    texts: list[str] = []
    dims: set[int] = set()
    for i, item in enumerate(items):
        where = f"requests[{i}]" if batch else "EmbedContentRequest"
        if not isinstance(item, dict):
            raise BadRequest(f"Invalid JSON payload received. {where} must be an object.")
        extra = sorted(set(item) - _GEMINI_ITEM)
        if extra:
            raise BadRequest(f'Invalid JSON payload received. Unknown name "{extra[0]}" at \'{where}\': Cannot find field.')
        content = item.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            raise BadRequest(f"* {where}.content: content is not specified")
        texts.append("".join(str(p.get("text", "")) for p in parts if isinstance(p, dict)))
        d = item.get("outputDimensionality")
        if d is not None:
            if not isinstance(d, int) or isinstance(d, bool) or d < 1:
                raise BadRequest(f"* {where}.output_dimensionality: must be a positive integer")
            dims.add(d)
    return texts, (max(dims) if dims else None)


def embed_response(provider: str, model: str, texts: list[str], dims: int | None, *, gemini: bool,
                   batch: bool, encoding: str = "float") -> dict[str, Any]:
    native = dimension_of(provider, model)
    ceiling = native if native != UNKNOWN_DIMENSION else MAX_UNKNOWN
    if dims is not None and not 1 <= dims <= ceiling:  # as the real APIs: at most the model's own dimension
        raise BadRequest(f"dimensions must be between 1 and {ceiling} for {model} (emulator)",
                         param="outputDimensionality" if gemini else "dimensions")
    n = dims or native
    vectors = [vector(model, t, n) for t in texts]
    if gemini:
        values = [{"values": v} for v in vectors]
        return {"embeddings": values} if batch else {"embedding": values[0]}
    tokens = sum(count_tokens(t) for t in texts)
    data = [{"object": "embedding", "index": i, "embedding": _encoded(v, encoding)} for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _encoded(v: list[float], encoding: str) -> list[float] | str:
    return base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode() if encoding == "base64" else v
