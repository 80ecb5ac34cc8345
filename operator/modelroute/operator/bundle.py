"""The signed RouteBundle in ConfigMap ``modelroute-routes``: encode, decode, compare.

The ConfigMap's name and keys are ``modelroute.api.config``'s (``BundleData``), shared with the
sidecar's reader (``modelroute.sidecar.server.bundle``). The ConfigMap is the cluster-side record of the last accepted version of every route in a
namespace (read back when the operator starts) and what a sidecar reads when it starts while
the operator is down. ``bundle.sig`` is the signature header value (``ed25519=<base64>``)
over the exact UTF-8 bytes of ``bundle.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.signing import VerifyKey
from pydantic import ValidationError

from modelroute.api import signing
from modelroute.api.config import BUNDLE_CONFIGMAP, BundleData, RouteBundle
from modelroute.api.config import BUNDLE_KEY as BUNDLE_KEY
from modelroute.api.config import SIGNATURE_KEY as SIGNATURE_KEY
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.providerquota import QuotaTerms
from modelroute.api.v1alpha1.registry import ModelRegistry

CONFIGMAP_NAME = BUNDLE_CONFIGMAP


class BundleError(ValueError):
    """The ConfigMap does not hold a bundle this operator signed."""


def make_bundle(namespace: str, routes: Iterable[ModelRoute], issued_at: datetime,
                quotas: Iterable[QuotaTerms] = (), registry: ModelRegistry | None = None) -> RouteBundle:
    ordered = sorted(routes, key=lambda r: r.key)
    return RouteBundle(namespace=namespace, issued_at=issued_at, routes=ordered, quotas=list(quotas), model_registry=registry)


def encode(bundle: RouteBundle, key: Ed25519PrivateKey) -> dict[str, str]:
    """ConfigMap ``data`` for the bundle: the JSON text and its signature."""
    text = json.dumps(bundle.wire(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return BundleData(bundle=text, signature=signing.sign(key, text.encode())).data()


def decode(data: Mapping[str, str], key: VerifyKey) -> RouteBundle:
    """The bundle in ConfigMap ``data``; raises BundleError unless the signature verifies."""
    text = data.get(BUNDLE_KEY)
    if text is None:
        raise BundleError(f"no {BUNDLE_KEY} in the ConfigMap")
    if not signing.verify(key, text.encode(), data.get(SIGNATURE_KEY)):
        raise BundleError(f"{SIGNATURE_KEY} is not a valid signature of {BUNDLE_KEY} by this operator's key")
    try:
        return RouteBundle.model_validate_json(text)
    except ValidationError as e:
        raise BundleError(f"{BUNDLE_KEY} is not a RouteBundle: {e.error_count()} errors") from e


def same_routes(a: Iterable[ModelRoute], b: Iterable[ModelRoute]) -> bool:
    """Whether two route sets are identical (issue time and order do not matter)."""
    def norm(rs: Iterable[ModelRoute]) -> list[dict[str, object]]:
        return sorted((r.wire() for r in rs), key=lambda w: json.dumps(w, sort_keys=True))
    return norm(a) == norm(b)
