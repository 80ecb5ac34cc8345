"""The sidecar admin API's answers that the operator reads: the error envelope and ``PUT /config``'s answer.

The sidecar writes them (``modelroute.sidecar.server.guard.admin_error``, ``server.admin``) and the
operator reads them (``modelroute.operator.push.client``, ``rollout.gate_runner``) with these
models. Readers ignore fields they do not know, so a newer sidecar may say more.
"""


from pydantic import ConfigDict, Field, ValidationError

from modelroute.api.v1alpha1 import ApiModel


class AdminErrorDetail(ApiModel):
    """What went wrong, for people (``message``, ``problems``) and programs (``code``)."""

    model_config = ConfigDict(extra="ignore")

    message: str = Field(description="What was refused and why, in a sentence.")
    code: str = Field(description="Machine-readable reason, e.g. invalid_config, wrong_audience, revision_not_served.")
    problems: list[str] = Field(default_factory=lambda: [], description="One line per problem found (field path: message), when there are several.")
    served: str | None = Field(default=None, description="POST /eval 409: the canary revision this sidecar serves instead (null: none).")
    mode: str | None = Field(default=None, description="PUT /config 401/403: how this sidecar accepts config writes (token, operator or disabled).")

    def summary(self) -> str:
        """The message and its problems on one line."""
        return self.message + (": " + "; ".join(self.problems) if self.problems else "")


class AdminError(ApiModel):
    """The body of every 4xx/5xx answer of the sidecar's admin listener."""

    model_config = ConfigDict(extra="ignore")

    error: AdminErrorDetail = Field(description="The error.")

    def json_body(self) -> str:
        """The JSON text, with only the fields that were set (``served`` may be an explicit null)."""
        return self.model_dump_json(by_alias=True, exclude_unset=True)


def error_summary(text: str, limit: int = 300) -> str:
    """One line from an admin answer's body: its error's summary, else the start of the text (not an envelope)."""
    try:
        return AdminError.model_validate_json(text).error.summary() or text[:limit]
    except ValidationError:
        return text[:limit]


class ConfigApplied(ApiModel):
    """The answer to a successful ``PUT /config``."""

    model_config = ConfigDict(extra="ignore")

    version: str = Field(description="The hash of the config now served (``SidecarConfig.hash``).")
    changed: bool = Field(description="Whether the push changed what is served (false: it was already served).")
    warnings: list[str] = Field(
        default_factory=lambda: [],
        description="Bearer-token PUT /config: one line per model that a route or canary names and whose provider has "
                    "announced a shutdown still ahead (where, the model, the date); the config was applied. Empty for "
                    "signed pushes (the operator reports them in the ModelRoute's status).",
    )


class ServedConfig(ApiModel):
    """What the operator reads of ``GET /config``: which config the sidecar serves, and where it came from.

    The sidecar's answer is ``SidecarConfig.redacted()`` (routes with key references only) plus these
    provenance fields; the rest is for people.
    """

    model_config = ConfigDict(extra="ignore")

    version: str | None = Field(description="The hash of the config served (``SidecarConfig.hash``); null before any config loaded.")
    source: str | None = Field(default=None, description="Where it came from: file, bundle, push or admin; null before any config loaded.")
    issued_at: str | None = Field(default=None, description="When the operator signed it (ISO 8601), for signed configs.")
    loaded_at: float | None = Field(default=None, description="When this sidecar loaded it (Unix seconds).")
