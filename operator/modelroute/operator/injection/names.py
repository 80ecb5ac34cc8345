"""The names the injector writes and reads: annotations, labels, container, volumes, paths.

One module so the webhook, the chart documentation and the tests all spell them the same way.
"""

from __future__ import annotations

from modelroute.api import config

PREFIX = "modelroute.dev/"

# --- pod annotations set by users ---------------------------------------------------------
INJECT = PREFIX + "inject"                    # "true" opts a pod in, "false" opts it out
INJECT_ENV = PREFIX + "inject-env"            # "true": set *_BASE_URL env in app containers
CREDENTIALS = PREFIX + "credentials"          # Secret name(s), comma-separated, for the sidecar only
RESOURCE_ANNOTATIONS = {                      # per-pod overrides of the sidecar's resources
    ("requests", "cpu"): PREFIX + "sidecar-cpu-request",
    ("requests", "memory"): PREFIX + "sidecar-memory-request",
    ("limits", "cpu"): PREFIX + "sidecar-cpu-limit",
    ("limits", "memory"): PREFIX + "sidecar-memory-limit",
}
LISTEN_PORT = PREFIX + "port"                 # inbound (app-facing) loopback port of the sidecar

# --- set by the injector (and read by the operator) ---------------------------------------
ADMIN_PORT = PREFIX + "admin-port"            # the operator pushes config to <podIP>:<admin-port>
OPERATOR_PUBLIC_KEY = PREFIX + "operator-public-key"  # PEM; reaches the sidecar via the downward API
SIDECAR_LABEL = PREFIX + "sidecar"            # label "true": the operator watches only these pods

# --- namespace label ------------------------------------------------------------------------
NAMESPACE_INJECT = PREFIX + "inject"          # value "enabled": every pod is injected unless opted out
NAMESPACE_INJECT_ENABLED = "enabled"

# --- the injected objects -------------------------------------------------------------------
CONTAINER = "modelroute-sidecar"
VOLUME_PODINFO = "modelroute-podinfo"
VOLUME_BUNDLE = config.BUNDLE_CONFIGMAP
VOLUME_TMP = "modelroute-tmp"
VOLUME_NO_SA_TOKEN = "modelroute-no-sa-token"
VOLUME_CREDENTIALS_PREFIX = "modelroute-credentials-"
ADMIN_PORT_NAME = "mr-admin"

BUNDLE_CONFIGMAP = config.BUNDLE_CONFIGMAP     # written by the operator, one per namespace

# --- paths inside the sidecar container -----------------------------------------------------
PODINFO_DIR = "/etc/modelroute/pod"
LABELS_FILE = PODINFO_DIR + "/labels"
PUBLIC_KEY_FILE = PODINFO_DIR + "/operator-public-key"
BUNDLE_DIR = "/etc/modelroute/bundle"
SECRETS_DIR = "/var/run/secrets/modelroute"
TMP_DIR = "/tmp"
STATE_DIR = TMP_DIR + "/state"                # the replay floor of pushes: kept across container restarts
SA_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"

# --- environment ------------------------------------------------------------------------------
ENV_POD_NAME = "MODELROUTE_POD_NAME"
ENV_POD_NAMESPACE = "MODELROUTE_POD_NAMESPACE"
ENV_POD_UID = "MODELROUTE_POD_UID"            # pushes are bound to the pod's UID
ENV_STATE_DIR = "MODELROUTE_STATE_DIR"
ENV_SECRETS_DIR = "MODELROUTE_SECRETS_DIR"

# Namespaces never injected, whatever their labels say (plus the operator's own namespace).
SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})


def base_url_env(port: int) -> dict[str, str]:
    """The env an unmodified SDK reads to find its endpoint, pointed at the sidecar.

    OpenAI and Anthropic: ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` (read by their clients).
    google-genai 3.x: ``GOOGLE_GEMINI_BASE_URL`` (``google/genai/_base_url.py``).
    """
    root = f"http://127.0.0.1:{port}"
    return {
        "OPENAI_BASE_URL": root + "/v1",
        "ANTHROPIC_BASE_URL": root,
        "GOOGLE_GEMINI_BASE_URL": root,
    }
