"""Routing: which variant and which target answer a request, with retries, backoff, breakers and one deadline.

``runtime`` is the one compile step: a config into frozen routes (targets, adapters, breakers,
canary variants, each route's chain of stages from the ``Pipeline`` it is given) and the atomic
swap; ``call`` is a request's bookkeeping and the ``Stage``/``Step`` protocols the pipeline's
stages implement; ``router`` holds the entry points and the attempt loop over a route's targets,
written once for both kinds of request (``stream``: a live stream after its first chunk);
``backoff`` and ``breaker`` are its pure policies; ``canary`` picks the variant (stable or canary)
per request; ``observer`` is the seam through which whatever records (stats, telemetry, cost,
rollout evidence) hears about attempts and finished requests. No aiohttp here: the network is
behind the adapters (``providers``).
"""
