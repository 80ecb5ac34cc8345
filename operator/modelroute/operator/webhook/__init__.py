"""The sidecar-injection admission webhook, served over HTTPS by the operator process.

Entry point for the operator CLI: :func:`run_webhook` (or :func:`start_from_args` with the
options from :func:`add_arguments`).
"""

from modelroute.operator.webhook.server import WebhookServer, build_app, run_webhook
from modelroute.operator.webhook.tls import FileTls, ManagedTls, TlsSource

__all__ = ["FileTls", "ManagedTls", "TlsSource", "WebhookServer", "build_app", "run_webhook"]
