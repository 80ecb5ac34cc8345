"""modelroute.dev/v1alpha1: the API types, single source of truth for CRD, sidecar and operator."""

from modelroute.api.v1alpha1.base import (
    API_VERSION,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    VERSION,
    ApiModel,
    LabelSelector,
    LabelSelectorRequirement,
    ObjectMeta,
    SelectorOperator,
)
from modelroute.api.v1alpha1.resource import ModelRoute
from modelroute.api.v1alpha1.spec import (
    ApiKey,
    Backoff,
    CircuitBreaker,
    ModelRouteSpec,
    Params,
    Prompt,
    Provider,
    Retry,
    SecretKeyRef,
    Target,
    UnsupportedParams,
)
from modelroute.api.v1alpha1.status import (
    Condition,
    ConditionStatus,
    ModelRouteStatus,
    Phase,
    PodCounts,
    PodFailure,
)

__all__ = [
    "API_VERSION", "GROUP", "KIND", "PLURAL", "SHORT_NAMES", "SINGULAR", "VERSION",
    "ApiKey", "ApiModel", "Backoff", "CircuitBreaker", "Condition", "ConditionStatus",
    "LabelSelector", "LabelSelectorRequirement", "ModelRoute", "ModelRouteSpec", "ModelRouteStatus",
    "ObjectMeta", "Params", "Phase", "PodCounts", "PodFailure", "Prompt", "Provider", "Retry",
    "SecretKeyRef", "SelectorOperator", "Target", "UnsupportedParams",
]
