"""kopf handlers: one module per event kind, each handler one line that marks a namespace dirty.

Importing this package registers every handler in ``registry``.
"""

from modelroute.operator.handlers import evals, lifecycle, modelroutes, pods, providerquotas
from modelroute.operator.handlers.registry import registry

__all__ = ["evals", "lifecycle", "modelroutes", "pods", "providerquotas", "registry"]
