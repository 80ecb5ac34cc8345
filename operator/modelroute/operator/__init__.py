"""modelroute.operator: the kopf control plane that pushes ModelRoutes into per-pod sidecars.

Layout: ``handlers/`` (thin kopf handlers, one file per event kind) only mark a namespace
dirty; ``reconciler`` does the work for one namespace with plain, unit-tested modules
(``pods``, ``validation``, ``acceptance``, ``bundle``, ``push.plan``, ``status``, ``events``,
``rollout/``) and the I/O edges (``kube/``, ``push.client``, ``rollout.gate_runner``,
``metrics``, ``leader``).
"""
