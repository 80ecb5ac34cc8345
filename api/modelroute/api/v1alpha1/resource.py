"""The ModelRoute resource and the sidecar config built from it."""


from typing import Literal

from pydantic import Field

from modelroute.api.v1alpha1.base import ApiModel, ObjectMeta
from modelroute.api.v1alpha1.spec import ModelRouteSpec
from modelroute.api.v1alpha1.status import ModelRouteStatus


class ModelRoute(ApiModel):
    """Routes one model name (`spec.route`) to an ordered chain of provider targets."""

    api_version: Literal["modelroute.dev/v1alpha1"] = Field(default="modelroute.dev/v1alpha1", description="modelroute.dev/v1alpha1")
    kind: Literal["ModelRoute"] = Field(default="ModelRoute", description="ModelRoute")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    spec: ModelRouteSpec = Field(description="What the route serves and how it falls back.")
    status: ModelRouteStatus | None = Field(default=None, description="Observed state, written by the operator.")

    @property
    def key(self) -> str:
        """namespace/name, or just name outside a cluster."""
        ns = self.metadata.namespace
        return f"{ns}/{self.metadata.name}" if ns else self.metadata.name
