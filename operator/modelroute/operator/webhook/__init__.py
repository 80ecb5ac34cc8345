"""The sidecar-injection admission webhook, served over HTTPS by its own process.

Entry point: ``modelroute webhook`` (:mod:`modelroute.operator.webhook.cli`), which the
chart runs as a Deployment of its own, apart from the operator. Embedding: :class:`WebhookServer`.
"""

from modelroute.operator.webhook.server import WebhookServer, build_app, run_webhook
from modelroute.operator.webhook.tls import FileTls, ManagedTls, TlsSource

__all__ = ["FileTls", "ManagedTls", "TlsSource", "WebhookServer", "build_app", "run_webhook"]
