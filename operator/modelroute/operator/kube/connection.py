"""Where the apiserver is and how to authenticate: kubeconfig file or in-cluster service account.

The official ``kubernetes`` package parses kubeconfigs (all auth forms); the result feeds
both kopf (its login handler returns ``ConnectionInfo``) and the operator's own aiohttp client.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import kopf
import kubernetes.client
import kubernetes.config


@dataclass
class KubeConnection:
    server: str
    config: kubernetes.client.Configuration

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        ctx = ssl.create_default_context(cafile=self.config.ssl_ca_cert or None)
        if not self.config.verify_ssl:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.config.cert_file:
            ctx.load_cert_chain(self.config.cert_file, self.config.key_file or None)
        return ctx

    def auth_header(self) -> str | None:
        """``Bearer <token>`` (re-read each time: projected tokens rotate) or None for cert auth."""
        header: str | None = self.config.get_api_key_with_prefix("BearerToken") or self.config.get_api_key_with_prefix(
            "authorization"
        )
        return header or None

    def kopf_info(self) -> kopf.ConnectionInfo:
        header = self.auth_header()
        scheme: str | None = None
        token: str | None = header
        if header and " " in header:
            scheme, token = header.split(" ", 1)
        return kopf.ConnectionInfo(
            server=self.server,
            ca_path=self.config.ssl_ca_cert,
            insecure=not self.config.verify_ssl,
            username=self.config.username or None,
            password=self.config.password or None,
            scheme=scheme,
            token=token or None,
            certificate_path=self.config.cert_file,
            private_key_path=self.config.key_file,
        )


def load(kubeconfig: str | None = None) -> KubeConnection:
    """From ``kubeconfig`` if given, else in-cluster, else the default kubeconfig ($KUBECONFIG)."""
    cfg = kubernetes.client.Configuration()
    if kubeconfig:
        kubernetes.config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)  # type: ignore[no-untyped-call]
    else:
        try:
            kubernetes.config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    return KubeConnection(server=cfg.host.rstrip("/"), config=cfg)
