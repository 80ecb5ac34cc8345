"""Rollouts on the sidecar side: shadow copies, per-run evidence and the golden-dataset gate.

The variant pick itself is routing (``routing.canary``: the runtime compiles each route's
variants). ``mirror`` sends shadow copies off the request path, ``evidence`` counts per rollout
run and variant what the operator judges a canary by, ``gate`` runs the operator's golden dataset
against the canary revision (``POST /eval`` in ``server.evalgate``).
"""
