"""Embeddings: the OpenAI and Gemini wire formats <-> the canonical embeddings request and answer.

Why a module of its own: an embeddings request is a second kind of request, with its own
pivot. The pivot is OpenAI's (as for chat):

* request: ``{"model": route, "input": [text, ...], "dimensions": int?}`` (``input`` always a
  non-empty list of strings; token-id arrays are refused: not every provider takes them);
* answer: ``{"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [float]}],
  "model": provider model, "usage": {"prompt_tokens", "total_tokens"}}`` (floats, always).

Pure functions: the inbound APIs (``server/embeddings.py``) and the adapters
(``providers/openai.py``, ``gemini.py``) call them. Gemini's embedding API reports no token
usage, so ``gemini_to_embeddings`` estimates it (4 characters per token) for cost and stats.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

from modelroute.sidecar.translate.errors import TranslationError
from modelroute.sidecar.translate.gemini_inbound import route_of
from modelroute.sidecar.translate.shape import array, at, kind, obj

Json = dict[str, Any]

MAX_INPUTS = 2048  # OpenAI's own limit on inputs per request
MAX_DIMENSIONS = 65536  # far above any model's; the target's own limit is the provider's to enforce

_OPENAI_FIELDS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
_GEMINI_FIELDS = frozenset({"model", "content", "taskType", "task_type", "title", "outputDimensionality",
                            "output_dimensionality"})


def openai_to_embeddings_request(body: Any) -> tuple[Json, str]:
    """An OpenAI ``POST /v1/embeddings`` body -> (canonical request, ``encoding_format``)."""
    body = obj(body, "the request body")
    unknown = sorted(set(body) - _OPENAI_FIELDS)
    if unknown:
        raise TranslationError(f"unknown field {unknown[0]!r} in an embeddings request", param=unknown[0])
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise TranslationError("field 'model' must be a non-empty string (the route name)", param="model")
    raw = body.get("input")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise TranslationError("field 'input' must be a non-empty string or array of strings", param="input")
    if len(raw) > MAX_INPUTS:
        raise TranslationError(f"field 'input' has {len(raw)} items; at most {MAX_INPUTS} are allowed", param="input")
    for i, item in enumerate(raw):
        if not isinstance(item, str):
            raise TranslationError(f"input[{i}] must be a string, not {kind(item)} (token-id arrays are not supported: "
                                   "send the text)", param=f"input[{i}]")
        if not item:
            raise TranslationError(f"input[{i}] must not be empty", param=f"input[{i}]")
    fmt = body.get("encoding_format", "float")
    if fmt not in ("float", "base64"):
        raise TranslationError("field 'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    out: Json = {"model": model, "input": list(raw)}
    dims = body.get("dimensions")
    if dims is not None:
        out["dimensions"] = _dimensions(dims, "dimensions")
    return out, fmt


def _dimensions(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSIONS:
        raise TranslationError(f"field {where!r} must be an integer from 1 to {MAX_DIMENSIONS}", param=where)
    return value


def embeddings_to_openai(answer: Json, encoding_format: str) -> Json:
    """The canonical answer in the OpenAI wire, vectors as float lists or base64 little-endian float32."""
    if encoding_format != "base64":
        return answer
    data = [{**d, "embedding": encode_base64(d["embedding"])} for d in answer["data"]]
    return {**answer, "data": data}


def encode_base64(vector: list[float]) -> str:
    """OpenAI's ``encoding_format: base64``: the little-endian float32 bytes, base64."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def decode_base64(value: str) -> list[float]:
    raw = base64.b64decode(value)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def embeddings_answer(vectors: list[list[float]], *, model: str, prompt_tokens: int) -> Json:
    """The canonical answer."""
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


# ---- outbound: OpenAI(-compatible) targets ------------------------------------------------------


def embeddings_to_openai_request(request: Json, *, model: str, dimensions: int | None) -> Json:
    """The canonical request for an OpenAI(-compatible) target (floats asked for: the answer is read as is)."""
    out: Json = {"model": model, "input": request["input"], "encoding_format": "float"}
    dims = request.get("dimensions", dimensions)
    if dims is not None:
        out["dimensions"] = dims
    return out


def openai_to_embeddings(data: Json, *, model: str, count: int) -> Json:
    """An OpenAI(-compatible) 200 body -> the canonical answer (``ValueError`` on a wrong shape)."""
    items = data.get("data")
    if not isinstance(items, list) or len(items) != count:
        raise ValueError(f"expected {count} embeddings in 'data'")
    vectors: list[list[float]] = [[] for _ in range(count)]
    for pos, item in enumerate(items):
        index = item.get("index", pos) if isinstance(item, dict) else None
        emb = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count:
            raise ValueError("an embedding has no valid index")
        vectors[index] = decode_base64(emb) if isinstance(emb, str) else _floats(emb)
    usage = data.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return embeddings_answer(vectors, model=str(data.get("model") or model),
                             prompt_tokens=tokens if isinstance(tokens, int) else 0)


def _floats(value: Any) -> list[float]:
    if not isinstance(value, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
        raise ValueError("an embedding is not an array of numbers")
    return [float(x) for x in value]


# ---- outbound: Gemini targets -------------------------------------------------------------------


def gemini_to_embeddings(data: Json, *, model: str, inputs: list[str]) -> Json:
    """A Gemini ``batchEmbedContents`` 200 body -> the canonical answer (usage estimated)."""
    items = data.get("embeddings")
    if not isinstance(items, list) or len(items) != len(inputs):
        raise ValueError(f"expected {len(inputs)} embeddings")
    vectors = [_floats(e.get("values") if isinstance(e, dict) else None) for e in items]
    return embeddings_answer(vectors, model=model, prompt_tokens=estimate_tokens(inputs))


def estimate_tokens(inputs: list[str]) -> int:
    """Tokens of texts whose provider does not count them: 4 characters a token, at least 1 each."""
    return sum(max(1, (len(t) + 3) // 4) for t in inputs)


# ---- inbound: Gemini embedContent / batchEmbedContents ------------------------------------------


def gemini_embed_to_request(body: Any, *, route: str) -> Json:
    """A Gemini ``:embedContent`` body -> the canonical request."""
    return _gemini_requests([body], ["the request body"], route)


def gemini_batch_to_request(body: Any, *, route: str) -> Json:
    """A Gemini ``:batchEmbedContents`` body -> the canonical request (every item's model must be the route)."""
    body = obj(body, "the request body")
    unknown = sorted(set(body) - {"requests"})
    if unknown:
        raise TranslationError(f"Invalid JSON payload received. Unknown name {unknown[0]!r}: Cannot find field.",
                               param=unknown[0])
    items = array(body.get("requests"), "requests")
    if not items:
        raise TranslationError("requests must not be empty", param="requests")
    for i, item in enumerate(items):
        m = item.get("model") if isinstance(item, dict) else None
        if m is not None and (not isinstance(m, str) or route_of(m) != route):
            raise TranslationError(f"requests[{i}].model must be models/{route} (the route of the URL)",
                                   param=f"requests[{i}].model")
    return _gemini_requests(items, [at("requests", i) for i in range(len(items))], route)


def _gemini_requests(items: list[Any], wheres: list[str], route: str) -> Json:
    texts: list[str] = []
    dims: set[int] = set()
    for item, where in zip(items, wheres, strict=True):
        item = obj(item, where)
        unknown = sorted(set(item) - _GEMINI_FIELDS)
        if unknown:
            raise TranslationError(f"Invalid JSON payload received. Unknown name {unknown[0]!r} at {where!r}: "
                                   "Cannot find field.", param=unknown[0])
        content = obj(item.get("content"), at(where, "content"))
        parts = array(content.get("parts"), at(at(where, "content"), "parts"))
        text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
        if not text or any(not isinstance(p, dict) or set(p) != {"text"} for p in parts):
            raise TranslationError(f"{at(where, 'content')} must hold text parts only, with some text",
                                   param=at(where, "content"))
        texts.append(text)
        d = item.get("outputDimensionality", item.get("output_dimensionality"))
        if d is not None:
            dims.add(_dimensions(d, at(where, "outputDimensionality")))
    if len(dims) > 1:
        raise TranslationError("every request must ask for the same outputDimensionality", param="outputDimensionality")
    out: Json = {"model": route, "input": texts}
    if dims:
        out["dimensions"] = dims.pop()
    return out


def embeddings_to_gemini(answer: Json, *, batch: bool) -> Json:
    """The canonical answer as a Gemini ``embedContent`` (one) or ``batchEmbedContents`` body."""
    values = [{"values": d["embedding"]} for d in answer["data"]]
    return {"embeddings": values} if batch else {"embedding": values[0]}
