"""``modelroute eval``: run a golden dataset through each target of a route and compare them.

``dataset`` reads the JSONL cases, ``runner`` sends them through the sidecar's own routing
engine (``Runtime.build`` + ``router.complete``, each target as its own single-target
route), ``scoring`` and ``prices`` turn answers into numbers (pure), ``report`` renders the
table, JSON and the self-contained HTML report, ``cli`` is the subcommand. The same pieces
serve the rollout gate (the dataset against one revision through one sidecar).
"""
