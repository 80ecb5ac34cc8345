"""Drop the params a target cannot take, before its request is translated.

``modelroute.api.v1alpha1.capabilities`` says what each (provider, API version, model)
refuses. A ``ParamFilter`` is compiled once per target and its effective params (when the
config is compiled): route params the target refuses (only possible with
``unsupportedParams: drop``; otherwise the config was refused) are removed from the params
then, so the request path only looks at the few keys the app sent. A target without rules
gets no filter at all (``param_filter`` returns None): no per-request cost.

``strip`` is what the adapter sends; ``dropped`` is the same answer for the inbound
handler's ``x-modelroute-dropped-params`` header (both pure, so they agree).
"""

from __future__ import annotations

from typing import Any

from modelroute.api.v1alpha1.capabilities import RULED, ParamRules, param_values, rules_for, rules_of
from modelroute.api.v1alpha1.spec import Params, Provider, Target

Json = dict[str, Any]

DROPPED_HEADER = "x-modelroute-dropped-params"

_CLEAR = {"temperature": "temperature", "top_p": "top_p", "stop": "stop", "max_tokens": "max_tokens"}


class ParamFilter:
    """One target's rules with one set of effective params."""

    __slots__ = ("_app", "_route", "params", "route_dropped", "rules")

    def __init__(self, rules: ParamRules, params: Params | None) -> None:
        self.rules = rules
        values = param_values(params)
        self._route = frozenset(values)
        self.route_dropped = tuple(u.param for u in rules.unsupported(values, keep=values))
        if self.route_dropped and params is not None:
            params = params.model_copy(update=dict.fromkeys((_CLEAR[p] for p in self.route_dropped), None))
        self.params = params
        # The app's keys that can matter: those the rules name (refused, one value only, or
        # exclusive) that the route does not set. Most targets name one or two (OpenAI: top_k),
        # so a request without them costs a dict lookup or two.
        named = {*rules.rejected, *rules.only, *rules.exclusive}
        self._app = tuple(p for p in RULED if p in named and p not in self._route)

    def dropped(self, request: Json) -> tuple[str, ...]:
        """The params (route's and app's) not sent to this target for ``request``, in table order."""
        for p in self._app:
            if request.get(p) is not None:
                break
        else:
            return self.route_dropped
        values = param_values(self.params)
        for p in self._app:
            if request.get(p) is not None:
                values[p] = request[p]
        app = tuple(u.param for u in self.rules.unsupported(values, keep=self._route))
        return tuple(p for p in RULED if p in self.route_dropped or p in app)

    def strip(self, request: Json) -> tuple[Json, Params | None]:
        """``request`` without the app params this target refuses, and the params to apply to it."""
        drop = [p for p in self.dropped(request) if p in request]
        if not drop:
            return request, self.params
        return {k: v for k, v in request.items() if k not in drop}, self.params


def param_filter(target: Target, params: Params | None) -> ParamFilter | None:
    """The filter for a target with these effective params; None when the target has no rules."""
    rules = rules_of(target)
    return ParamFilter(rules, params) if rules else None


def default_filter(provider: Provider, api_version: str | None, model: str, params: Params | None) -> ParamFilter | None:
    """``param_filter`` from the parts (for translators called without a compiled filter)."""
    rules = rules_for(provider, api_version, model)
    return ParamFilter(rules, params) if rules else None
