"""The request pipeline's stages around the attempt loop: response cache, local limits, output contract, cost.

``plan`` compiles one ``RoutePlan`` per route (None for plain routes, which pay nothing) and
runs the stages; ``cache``, ``limits`` and ``cost`` are the stages' own logic; ``counters`` are
what the stages count (cost, output checks, cache, limits) for ``/stats`` and ``/metrics``.
The output contract itself (parsing, JSON Schema, repair) is the pure ``modelroute.sidecar.output``.
"""
