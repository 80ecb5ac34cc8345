"""The sidecar config document: the set of ModelRoutes one sidecar serves, and its hash.

Both the standalone YAML loader and the operator's renderer produce a ``SidecarConfig``;
the hash is over a canonical form so the same routes always give the same hash.
"""


import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelroute.api.v1alpha1 import ApiModel, ModelRoute, ModelRouteSpec
from modelroute.api.v1alpha1.quotaterms import QuotaTerms
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.api.v1alpha1.strategy import served_wire


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def route_hash(route: ModelRoute) -> str:
    """Hash of what a sidecar serves for one route (its spec without ``NOT_SERVED``: selector and strategy)."""
    spec = served_wire(route.spec)
    return "sha256:" + hashlib.sha256(canonical_json({"name": route.metadata.name, "spec": spec})).hexdigest()[:16]


class CanaryServing(ApiModel):
    """A second revision of one route, served beside the stable one while a rollout runs.

    ``routes`` in the config hold each route's stable revision; a canary entry adds the new
    revision's spec, the share of live traffic it answers (``weight``) and the share copied
    to it off the request path (``mirror``: answers compared with stable, never returned).
    """

    route: str = Field(description="Route name (spec.route) this canary belongs to.")
    revision: str = Field(description="Revision id of the canary spec.")
    run_id: str = Field(description="Id of this rollout run; sidecars keep evidence counters per run.")
    spec: ModelRouteSpec = Field(description="The canary revision's spec (targets, params, prompt).")
    weight: int = Field(default=0, ge=0, le=100, description="Percent of live requests answered by the canary.")
    mirror: int = Field(default=0, ge=0, le=100, description="Percent of live requests copied to the canary for comparison.")
    sticky_header: str | None = Field(default=None, description="Request header whose value pins a caller to one revision on every pod.")


class SidecarConfig(ApiModel):
    """What one sidecar serves: a list of ModelRoutes with distinct route names, plus canaries."""

    routes: list[ModelRoute] = Field(default_factory=lambda: [], description="The routes (stable revisions), in any order.")
    canaries: list[CanaryServing] = Field(default_factory=lambda: [], description="Rollouts in progress: at most one per route.")
    model_registry: ModelRegistry | None = Field(
        default=None,
        description="Model ids targets may name, checked when the config is validated. Unset: the built-in registry. "
                    "Not part of the hash (it changes what is accepted, not what is served) unless it sets context windows "
                    "or drops the built-in ones (``includeDefaults: false``).",
    )

    def registry(self) -> ModelRegistry:
        """The registry this config is validated against (the built-in one when none is given)."""
        return self.model_registry if self.model_registry is not None else ModelRegistry()

    @property
    def hash(self) -> str:
        """Content hash of the config, independent of route order and selectors."""
        parts = sorted(f"{r.spec.route}={route_hash(r)}" for r in self.routes)
        parts += sorted("canary:" + hashlib.sha256(canonical_json(c.wire())).hexdigest() for c in self.canaries)
        reg = self.model_registry
        if reg is not None and (reg.windows or not reg.include_defaults):  # windows change what is served
            parts.append("windows:" + hashlib.sha256(canonical_json(reg.wire())).hexdigest())
        return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def redacted(self) -> dict[str, Any]:
        """The config as JSON (key *references* only; keys themselves never live in the config)."""
        out: dict[str, Any] = {"version": self.hash, "routes": [r.wire() for r in self.routes]}
        if self.canaries:
            out["canaries"] = [c.wire() for c in self.canaries]
        if self.model_registry is not None:
            out["modelRegistry"] = self.model_registry.wire()
        return out


class PodRef(ApiModel):
    namespace: str = Field(description="Namespace of the pod.")
    name: str = Field(description="Name of the pod.")
    uid: str | None = Field(default=None, description="UID of the pod (metadata.uid). A sidecar that knows its UID "
                                                      "(downward API) refuses pushes for any other, so a push cannot be "
                                                      "replayed to a later pod of the same name.")


class SignedRequest(ApiModel):
    """What every body the operator signs for one sidecar starts with (``modelroute.api.signing``)."""

    audience: PodRef = Field(description="The only pod this body is valid for.")
    issued_at: datetime = Field(description="When the operator signed it; bodies outside the sidecar's clock-skew window "
                                            "(and pushes not newer than the last one) are refused.")


class ConfigPush(SignedRequest):
    """The body of a signed ``PUT /config`` from the operator to one pod's sidecar."""

    config: SidecarConfig = Field(description="The config to serve.")


class RouteBundle(ApiModel):
    """All accepted ModelRoutes of one namespace, persisted by the operator in a ConfigMap.

    A sidecar that starts while the operator is down selects its routes from this bundle
    with its own pod labels, using the same selection function as the operator.
    """

    namespace: str = Field(description="Namespace the bundle belongs to.")
    issued_at: datetime = Field(description="When the operator signed the bundle.")
    routes: list[ModelRoute] = Field(default_factory=lambda: [], description="Last accepted version of every ModelRoute in the namespace.")
    quotas: list[QuotaTerms] = Field(default_factory=lambda: [], description="The namespace's ProviderQuotas with the pod count last seen: "
                                                                       "a pod without a lease takes limit / podCount of each.")
    model_registry: ModelRegistry | None = Field(
        default=None,
        description="The operator's model registry (``--model-registry``), carried into every config rendered from the "
                    "bundle. Unset: the built-in registry.",
    )


BUNDLE_CONFIGMAP = "modelroute-routes"
"""The ConfigMap, one per namespace, in which the operator keeps the signed ``RouteBundle``."""
BUNDLE_KEY = "bundle.json"
"""Its key (and the file name where it is mounted into a sidecar) holding the bundle's JSON."""
SIGNATURE_KEY = "bundle.sig"
"""Its key (and file name) holding the signature of that JSON."""


class BundleData(BaseModel):
    """The ``data`` of ConfigMap ``BUNDLE_CONFIGMAP``: written by the operator, read back by it and, as
    two mounted files, by sidecars that start while the operator is down."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    bundle: str = Field(alias=BUNDLE_KEY, description="The RouteBundle as compact JSON with sorted keys: the exact text that is signed.")
    signature: str = Field(alias=SIGNATURE_KEY, description="``ed25519=<base64>`` over the UTF-8 bytes of the bundle text (modelroute.api.signing).")

    def data(self) -> dict[str, str]:
        """As ConfigMap ``data``."""
        return self.model_dump(by_alias=True)
