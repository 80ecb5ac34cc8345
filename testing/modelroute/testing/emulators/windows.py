"""Context windows, enforced as the real APIs enforce them, with the model registry's table.

A request whose input (the emulator's word count, ``Prompt.input_tokens``) plus requested
output does not fit its model's window gets the 400 the real API sends, in its body shape and
wording (OpenAI ``context_length_exceeded``; Anthropic ``invalid_request_error`` "prompt is too
long" or "input length and `max_tokens` exceed context limit"; Gemini ``INVALID_ARGUMENT``
"exceeds the maximum number of tokens", input only). A model the registry has no window for is
not checked, as in the sidecar.
"""

from __future__ import annotations

from modelroute.api.v1alpha1.providers import Provider
from modelroute.api.v1alpha1.registry import ModelRegistry

from .dialects import BadRequest
from .model import Prompt


def too_long(registry: ModelRegistry, prompt: Prompt, responses: bool = False) -> BadRequest | None:
    """The real API's 400 for a prompt beyond its model's window, or None when it fits (or is unknown)."""
    window = registry.window(Provider(prompt.provider), prompt.model)
    if window is None:
        return None
    tokens, out, limit = prompt.input_tokens, prompt.max_tokens or 0, window.context
    if prompt.provider == "gemini":
        if tokens > limit:
            return BadRequest(f"The input token count ({tokens}) exceeds the maximum number of tokens allowed ({limit}).")
        return None
    if tokens + out <= limit:
        return None
    if prompt.provider == "anthropic":
        if tokens > limit:
            return BadRequest(f"prompt is too long: {tokens} tokens > {limit} maximum")
        return BadRequest(f"input length and `max_tokens` exceed context limit: {tokens} + {out} > {limit}, "
                          "decrease input length or `max_tokens` and try again")
    if responses:
        return BadRequest("Your input exceeds the context window of this model. Please adjust your input and try again.", param="input", code="context_length_exceeded")
    return BadRequest(f"This model's maximum context length is {limit} tokens. However, you requested {tokens + out} "
                      f"tokens ({tokens} in the messages, {out} in the completion). Please reduce the length of the "
                      "messages or completion.", param="messages", code="context_length_exceeded")
