"""Prompt-cache breakpoints (Anthropic's ``cache_control``) carried through the chat pivot.

Marks travel in-band, where LiteLLM, OpenRouter and Portkey put them in OpenAI-shaped requests:
a ``cache_control`` object on a content part (system, user, assistant or tool message), on a
tool, on a tool call, or top-level (Anthropic's automatic caching: the last cacheable block).
The Anthropic inbound puts an app's marks there; ``mark`` adds them where the
``x-modelroute-prompt-cache`` header asks (docs/prompt-caching.md).

Anthropic targets keep them (``anthropic.py``). OpenAI chat targets get them removed
(``strip``): OpenAI caches prompt prefixes by itself and takes no marks. The Gemini and
Responses-API builders copy only the fields they know, so marks never reach those wires.
"""

from __future__ import annotations

from typing import Any

from modelroute.sidecar.translate.errors import TranslationError

Json = dict[str, Any]

MARK = "cache_control"
HEADER = "x-modelroute-prompt-cache"
PLACES = ("system", "tools", "messages")
MAX_BREAKPOINTS = 4  # Anthropic refuses more blocks with cache_control in one request
TTLS = ("5m", "1h")


def marked(obj: Any) -> bool:
    """Whether a part, tool, tool call or message carries a mark."""
    return isinstance(obj, dict) and MARK in obj


def _any_marked(items: Any) -> bool:
    if items.__class__ is not list:
        return False
    return any(t.__class__ is dict and MARK in t for t in items)


def _messages_marked(messages: list[Any]) -> bool:
    for m in messages:  # a plain loop: this runs on every OpenAI chat request
        if m.__class__ is not dict:
            continue
        content = m.get("content")
        if content.__class__ is list:
            for p in content:
                if p.__class__ is dict and MARK in p:
                    return True
        calls = m.get("tool_calls")
        if calls.__class__ is list:
            for c in calls:
                if c.__class__ is dict and MARK in c:
                    return True
    return False


def strip(body: Json) -> Json:
    """``body`` without marks (a shallow copy only when it has some: OpenAI chat targets).

    The scan is a plain loop of dict lookups (about a microsecond for a dozen messages, on the
    openai hot path); requests without marks are returned as they are."""
    messages = body.get("messages")
    tools = body.get("tools")
    dirty_messages = messages.__class__ is list and _messages_marked(messages)
    dirty_tools = _any_marked(tools)
    if not (dirty_messages or dirty_tools or MARK in body):
        return body
    out = {k: v for k, v in body.items() if k != MARK}
    if dirty_messages:
        out["messages"] = [_strip_message(m) for m in messages]  # type: ignore[union-attr]
    if dirty_tools:
        out["tools"] = [_without(t) for t in tools]  # type: ignore[union-attr]
    return out


def _without(obj: Any) -> Any:
    return {k: v for k, v in obj.items() if k != MARK} if marked(obj) else obj


def _strip_message(m: Any) -> Any:
    """A message without marks (itself when it has none)."""
    if m.__class__ is not dict:
        return m
    content = m.get("content")
    if not (_any_marked(content) or _any_marked(m.get("tool_calls"))):
        return m
    out = dict(m)
    if isinstance(content, list):
        parts = [_without(p) for p in content]
        # one marked text part (what ``mark`` makes of a string) goes back to the string: the same prompt prefix
        single = len(parts) == 1 and marked(content[0]) and parts[0].get("type") == "text" and set(parts[0]) == {"type", "text"}
        out["content"] = parts[0]["text"] if single else parts
    if m.get("tool_calls"):
        out["tool_calls"] = [_without(c) for c in m["tool_calls"]]
    return out


def count(body: Json) -> int:
    """Breakpoints in a request (the top-level mark counts as one)."""
    n = int(MARK in body)
    for m in body.get("messages") or ():
        if isinstance(m, dict):
            content = m.get("content")
            n += sum(marked(p) for p in content) if isinstance(content, list) else 0
            n += sum(marked(c) for c in m.get("tool_calls") or ())
    return n + sum(marked(t) for t in body.get("tools") or ())


# ---- x-modelroute-prompt-cache --------------------------------------------------------


def parse_header(value: str) -> tuple[tuple[str, ...], str | None]:
    """``system,tools,messages[,ttl=1h]`` -> (places, ttl); ``all`` is every place.

    Raises ``TranslationError`` (a 400 naming the header) for anything else."""
    places: list[str] = []
    ttl: str | None = None
    for token in (t.strip().lower() for t in value.split(",")):
        if token == "all":
            places.extend(PLACES)
        elif token in PLACES:
            places.append(token)
        elif token.startswith("ttl=") and token[4:] in TTLS:
            ttl = token[4:]
        elif token:
            raise TranslationError(f"{HEADER}: unknown value {token!r}; expected a comma-separated list of "
                                   f"{', '.join(PLACES)} or all, and optionally ttl=5m or ttl=1h", param=HEADER)
    if not places:
        raise TranslationError(f"{HEADER}: name at least one of {', '.join(PLACES)} (or all)", param=HEADER)
    return tuple(dict.fromkeys(places)), ttl


def mark(request: Json, places: tuple[str, ...], ttl: str | None = None) -> Json:
    """``request`` (not mutated) with a breakpoint on each place asked for.

    ``system``: the last part of the app's last system/developer message; ``tools``: the last
    tool; ``messages``: the last part of the last user or tool message (the turn that grows the
    prefix). A place the request does not have is skipped. Raises ``TranslationError`` when the
    request would carry more than Anthropic's 4 breakpoints."""
    mark_obj: Json = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    out = dict(request)
    messages = request.get("messages")
    if isinstance(messages, list):
        new = list(messages)
        for place, roles in (("system", ("system", "developer")), ("messages", ("user", "tool"))):
            if place in places:
                at = next((i for i in range(len(new) - 1, -1, -1)
                           if isinstance(new[i], dict) and new[i].get("role") in roles), None)
                if at is not None:
                    new[at] = _mark_last_part(new[at], mark_obj)
        out["messages"] = new
    tools = request.get("tools")
    if "tools" in places and isinstance(tools, list) and tools and isinstance(tools[-1], dict):
        out["tools"] = [*tools[:-1], {**tools[-1], MARK: mark_obj}]
    if count(out) > MAX_BREAKPOINTS:
        raise TranslationError(f"{HEADER}: the request would carry {count(out)} cache breakpoints; "
                               f"Anthropic takes at most {MAX_BREAKPOINTS}", param=HEADER)
    return out


def _mark_last_part(m: Json, mark_obj: Json) -> Json:
    content = m.get("content")
    if isinstance(content, str):
        if not content:
            return m
        return {**m, "content": [{"type": "text", "text": content, MARK: mark_obj}]}
    if isinstance(content, list) and content and isinstance(content[-1], dict):
        return {**m, "content": [*content[:-1], {**content[-1], MARK: mark_obj}]}
    return m
