"""The request pipeline's stages around the attempt loop: response cache, local limits, output contract, cost.

``compiler`` compiles each route's chain of stages (a plain route gets none and pays nothing);
``stages`` are the stages and attempt steps; ``cache``, ``limits`` and ``cost`` are their own
logic; ``counters`` are
what the stages count (cost, output checks, cache, limits) for ``/stats`` and ``/metrics``.
The output contract itself (parsing, JSON Schema, repair) is the pure ``modelroute.sidecar.output``.
"""
