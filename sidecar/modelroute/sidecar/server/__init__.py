"""The sidecar's HTTP surface: the inbound app (OpenAI API, plus the Anthropic and Gemini APIs) and the admin app.

``Sidecar`` (``modelroute.sidecar.server.sidecar``) wires them to the config state and runs
both listeners; the CLI and the tests start the sidecar through it.

  envelope.py  OpenAI error bodies; routing outcome -> HTTP status
  wire.py      answers, errors and stream framing in the app's protocol
  inbound.py   POST /v1/chat/completions, GET /v1/models; ``serve`` (the shared routing path)
  native.py    POST /v1/messages (Anthropic), POST /v1{,beta}/models/{route}:generateContent (Gemini)
  admin.py     /healthz /readyz /config (GET, PUT) /stats /metrics
  auth.py      who may PUT /config: signed operator pushes or a bearer token
  bundle.py    start-up from the signed route bundle mounted from the cluster
  state.py     the served config (RuntimeHolder) and the one place configs are swapped
  sidecar.py   both listeners + the bundle watcher, startable in-process
"""
