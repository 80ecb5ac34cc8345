"""Typed views of the official SDKs' response objects, for tests.

The SDKs type a content block, a delta or a tool call as a union of every kind they know;
a test knows which kind it expects. These narrow to that kind (failing with the object when
it is another), so tests read the field they mean without ``type: ignore``.
"""

from __future__ import annotations

import anthropic
from anthropic.types import TextBlock, TextDelta, ToolUseBlock
from openai.types.chat import ChatCompletionMessage, ChatCompletionMessageFunctionToolCall


def text_of(block: object) -> str:
    """The text of an Anthropic content block or delta that must be text."""
    assert isinstance(block, TextBlock | TextDelta), block
    return block.text


def tool_use_of(block: object) -> ToolUseBlock:
    """An Anthropic content block that must be a tool use."""
    assert isinstance(block, ToolUseBlock), block
    return block


def function_call(message: ChatCompletionMessage, index: int = 0) -> ChatCompletionMessageFunctionToolCall:
    """The OpenAI message's ``index``-th tool call, which must be a function call."""
    assert message.tool_calls, message
    call = message.tool_calls[index]
    assert isinstance(call, ChatCompletionMessageFunctionToolCall), call
    return call


def error_type(err: anthropic.APIStatusError) -> object:
    """``error.type`` of an Anthropic error body (the SDK types the body as ``object``)."""
    assert isinstance(err.body, dict), err.body
    return err.body["error"]["type"]
