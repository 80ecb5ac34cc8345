"""Scripted replies: rules that override the default answer for matching requests.

A rule matches on provider, model and a substring of the last user message; the first
matching rule in insertion order wins. A rule with `times` is used up after that many
hits, so `enqueue()` (times=1) gives a FIFO queue of replies per provider/model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import Prompt, Reply


@dataclass
class Rule:
    reply: Reply
    provider: str | None = None
    model: str | None = None
    contains: str | None = None
    times: int | None = None

    def matches(self, prompt: Prompt) -> bool:
        return (
            (self.provider is None or self.provider == prompt.provider)
            and (self.model is None or self.model == prompt.model)
            and (self.contains is None or self.contains in prompt.last_user_text)
        )

    @staticmethod
    def from_json(data: dict[str, Any]) -> Rule:
        reply = data.get("reply")
        if not isinstance(reply, dict):
            raise ValueError("a script rule needs a 'reply' object")
        return Rule(
            reply=Reply.from_json(reply),
            provider=data.get("provider"),
            model=data.get("model"),
            contains=data.get("contains"),
            times=data.get("times"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "reply": self.reply.to_json(),
            "provider": self.provider,
            "model": self.model,
            "contains": self.contains,
            "times": self.times,
        }


class Script:
    """The scripted replies of one emulator."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []

    def when(
        self,
        reply: Reply | str,
        *,
        contains: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        times: int | None = None,
    ) -> Rule:
        """Reply `reply` (a Reply or plain text) to matching requests."""
        r = Rule(Reply(text=reply) if isinstance(reply, str) else reply, provider, model, contains, times)
        self._rules.append(r)
        return r

    def enqueue(self, *replies: Reply | str, provider: str | None = None, model: str | None = None) -> None:
        """Queue replies, each used once, in order, by requests for provider/model."""
        for reply in replies:
            self.when(reply, provider=provider, model=model, times=1)

    def add(self, rule: Rule) -> Rule:
        self._rules.append(rule)
        return rule

    def clear(self) -> None:
        self._rules = []

    def rules(self) -> list[Rule]:
        return list(self._rules)

    def reply_for(self, prompt: Prompt) -> Reply | None:
        if not self._rules:
            return None
        for i, rule in enumerate(self._rules):
            if rule.matches(prompt):
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        del self._rules[i]
                return rule.reply
        return None
