"""Routing: which variant and which target answer a request, with retries, backoff, breakers and one deadline.

``runtime`` compiles a config into what the hot path reads (routes, targets, adapters, breakers,
canary variants) and swaps it atomically; ``router`` is the attempt loop over a route's targets;
``backoff`` and ``breaker`` are its pure policies; ``canary`` picks the variant (stable or canary)
per request; ``observer`` is the seam through which whatever records (stats, telemetry, cost,
rollout evidence) hears about attempts and finished requests. No aiohttp here: the network is
behind the adapters (``providers``).
"""
