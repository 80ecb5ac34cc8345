"""The ModelRouteEval resource: a request to compare a proposed ModelRoute with the live one, in the cluster.

Why a resource: ``kubectl modelroute eval NAME --candidate proposed.yaml --dataset golden.jsonl``
runs the comparison through a sidecar that already holds the provider keys, with the signed
``POST /eval``. Only the operator holds the signing key, and the person running the command must
not get it, so the command writes this object (candidate spec and cases) and the operator acts on
it: it picks a ready pod of the route, signs the request, and writes the answer (the document
``modelroute eval --json`` prints, ``modelroute.api.evaluation.RevisionComparison``) into the
status. Who may ask for an eval is ordinary RBAC on this resource, apart from who may edit routes.

One object is one run: the operator acts on it once (phase Succeeded or Failed); to run again,
create a new one. A finished object is deleted by the operator ``spec.ttlSecondsAfterFinished``
after it finished (a day by default, like a Job's field of that name), so requests whose creator
did not delete them (``--keep``, an interrupted command, a plain ``kubectl create``) do not pile up. The dataset travels in the object, so its size is bounded (``MAX_EVAL_CASES``
cases, ``MAX_EVAL_BYTES`` of JSON: the apiserver stores objects up to about 1.5 MiB).
"""


from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, WithJsonSchema

from modelroute.api.evaluation import RevisionComparison
from modelroute.api.v1alpha1.base import ApiModel
from modelroute.api.v1alpha1.output import JsonObject

EVAL_KIND = "ModelRouteEval"
EVAL_PLURAL = "modelrouteevals"
EVAL_SINGULAR = "modelrouteeval"
EVAL_SHORT_NAMES = ("mreval",)
MAX_EVAL_CASES = 500
"""Cases one ModelRouteEval may carry (each runs through both revisions)."""
MAX_EVAL_BYTES = 512 * 1024
"""Largest JSON of the spec's cases (the object, its result and its history must fit in etcd)."""
DEFAULT_EVAL_TTL_SECONDS = 86_400
"""How long a finished ModelRouteEval stays when its spec does not say (one day)."""
MAX_EVAL_TTL_SECONDS = 2**31 - 1
"""The largest ``ttlSecondsAfterFinished`` (an int32, as on a Job)."""


class EvalPhase(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ModelRouteEvalSpec(ApiModel):
    """What to compare: the live revision of a ModelRoute against a candidate spec, on a dataset."""

    model_route: str = Field(min_length=1, max_length=253,
                             description="The ModelRoute (in this namespace) whose live stable revision is the baseline.")
    candidate: JsonObject = Field(description="The proposed ModelRoute's spec (as in its YAML); checked by the operator "
                                              "and the sidecar like any ModelRoute spec.")
    candidate_source: str = Field(default="candidate", max_length=1024,
                                  description="Where the candidate came from (e.g. the file path), shown in the result.")
    dataset: str = Field(default="dataset", max_length=1024, description="The dataset's name (e.g. its file path), shown in the result.")
    cases: list[JsonObject] = Field(min_length=1, max_length=MAX_EVAL_CASES,
                                    description="Golden-dataset cases as in a JSONL file (input, expected, optional id and schema).")
    confidence: float = Field(default=0.95, gt=0, lt=1, description="Confidence level of the intervals.")
    min_cases: int = Field(default=20, ge=1, le=MAX_EVAL_CASES, description="Scored pairs needed before a winner is named.")
    ttl_seconds_after_finished: int = Field(
        default=DEFAULT_EVAL_TTL_SECONDS, ge=0, le=MAX_EVAL_TTL_SECONDS,
        description="Seconds after the run finished (Succeeded or Failed, status.finishedAt) when the operator deletes "
                    "this object, like a Job's field of that name; 0 deletes it as soon as it finished. Default 86400 "
                    "(one day). `kubectl modelroute eval` deletes its own object once it has the result, unless --keep.")


ComparisonObject = Annotated[
    RevisionComparison,
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                    "description": "The comparison, as `modelroute eval --json` prints it (docs/eval-comparison.schema.json)."}),
]


class ModelRouteEvalStatus(ApiModel):
    """Observed state, written by the operator."""

    phase: EvalPhase | None = Field(default=None, description="Running, then Succeeded (result set) or Failed (message says why).")
    message: str = Field(default="", max_length=4096, description="What happened, in a sentence (the reason when Failed).")
    pod: str | None = Field(default=None, description="The sidecar pod that ran the cases.")
    baseline_revision: str | None = Field(default=None, description="The live stable revision compared.")
    candidate_revision: str | None = Field(default=None, description="The candidate's revision id.")
    verdict: str | None = Field(default=None, description="The comparison's verdict (better, worse, no significant difference, too few cases).")
    finished_at: datetime | None = Field(default=None, description="When the run ended.")
    result: ComparisonObject | None = Field(default=None, description="The comparison (Succeeded only).")

