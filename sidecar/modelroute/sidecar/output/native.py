"""Asking each provider for the route's output format: natively where it can, else in the prompt.

The chat request carries the contract as ``response_format`` and the provider translators
map it to the native mechanism:

* OpenAI: ``response_format: json_schema`` with ``strict: true`` when the schema meets
  strict mode's rules (every object closed with ``additionalProperties: false`` and all
  properties required), else ``strict: false``;
* Anthropic: ``output_config.format`` when the adapter passes ``native_json_schema=True``
  to ``chat_to_anthropic_request`` (``anthropic_native_schema(model)`` says which models
  support it), else the translator turns it into a system-prompt instruction;
* Gemini: ``response_mime_type`` + ``response_json_schema`` (the translator does it);
* providers whose spec says ``native_output=False`` (openai-compatible servers: support for
  ``response_format`` varies): the schema goes into a system message, and the answer is
  validated either way.

Label sets have no portable native form: they are always stated in the prompt.
"""

from __future__ import annotations

from typing import Any

from modelroute.api.v1alpha1.providers import Provider, spec_of
from modelroute.sidecar.output.contract import Mode, OutputContract

Json = dict[str, Any]

# Claude models with structured outputs (output_config.format); prefixes of model ids.
ANTHROPIC_STRUCTURED = ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1", "claude-opus-4-5",
                        "claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-5", "claude-sonnet-5", "claude-opus-5")


def anthropic_native_schema(model: str) -> bool:
    """True when the Claude model accepts ``output_config.format`` (pass ``native_json_schema=True``)."""
    return model.startswith(ANTHROPIC_STRUCTURED)


def strict_compatible(schema: Any) -> bool:
    """True when OpenAI strict mode accepts the schema: every object closed and fully required."""
    if isinstance(schema, list):
        return all(strict_compatible(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    props = schema.get("properties")
    if schema.get("type") == "object" or isinstance(props, dict):
        if schema.get("additionalProperties") is not False:
            return False
        if isinstance(props, dict) and set(schema.get("required") or ()) != set(props):
            return False
    return all(strict_compatible(v) for k, v in schema.items() if k not in ("enum", "const", "default", "examples"))


def response_format(contract: OutputContract, *, name: str = "output") -> Json | None:
    """The OpenAI ``response_format`` that asks for the contract's format (None for text)."""
    if contract.mode is Mode.SCHEMA and contract.schema is not None:
        return {"type": "json_schema", "json_schema": {"name": name, "schema": contract.schema,
                                                       "strict": strict_compatible(contract.schema)}}
    if contract.mode is Mode.JSON:
        return {"type": "json_object"}
    return None


def apply_contract(request: Json, contract: OutputContract, provider: Provider) -> Json:
    """The chat request with the contract's format requested the best way for ``provider`` (a copy).

    The contract replaces any ``response_format`` the app set. Labels (and schemas for
    providers without native output) become a system message after the app's own system messages.
    """
    if not contract.constrains:
        return request
    out = dict(request)
    fmt = response_format(contract)
    in_prompt = contract.labels is not None and contract.mode is Mode.TEXT
    if fmt is not None:
        if not spec_of(provider).native_output:
            out.pop("response_format", None)
            in_prompt = True
        else:
            out["response_format"] = fmt
    if in_prompt:
        out["messages"] = _with_system(request.get("messages") or [], contract.expectation())
    return out


def _with_system(messages: list[Json], text: str) -> list[Json]:
    """``messages`` with a system message inserted after the leading system messages."""
    i = 0
    while i < len(messages) and messages[i].get("role") in ("system", "developer"):
        i += 1
    return [*messages[:i], {"role": "system", "content": text}, *messages[i:]]
