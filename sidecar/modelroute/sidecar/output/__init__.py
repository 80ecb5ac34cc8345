"""Output contracts: answers that parse, validate and, when they do not, get repaired.

Pure code, no I/O. The pieces, in the order a request meets them:

* ``OutputContract.build(...)`` / ``.from_api(route.output)``: compiled once per route
  (JSON Schema validators are cached by schema, ``schema.SchemaCache``);
* ``apply_contract(request, contract, provider)``: ask the target for the format, natively
  where the provider has structured outputs, else in the prompt (``native.py``);
* ``contract.check(text)`` / ``contract.check_completion(completion)``: tolerant parsing
  (``parse.py``: fences, prose around JSON, trailing commas, label spelling) then
  validation; ``OutputError`` carries a message fit to feed back;
* ``repair_request(request, bad_answer, error, contract=)``: the repair turn;
  ``complete_valid(complete, request, contract)`` runs call/check/repair on one target
  and raises ``InvalidOutput`` (a fallback reason) when the repairs are spent;
* ``tasks.py``: ``POST /v1/classify`` and ``POST /v1/extract`` request parsing, chat
  request builders and response shapes.
"""

from modelroute.sidecar.output.contract import Mode, OutputContract, repair_request
from modelroute.sidecar.output.enforce import InvalidOutput, Valid, add_usage, complete_valid
from modelroute.sidecar.output.native import (
    anthropic_native_schema,
    apply_contract,
    response_format,
    strict_compatible,
)
from modelroute.sidecar.output.parse import LabelSet, OutputError, extract_json, normalize_label, strip_fences
from modelroute.sidecar.output.schema import (
    DEFAULT_CACHE,
    InvalidSchema,
    SchemaCache,
    compile_validator,
    schema_errors,
)
from modelroute.sidecar.output.tasks import (
    Task,
    TaskError,
    classify_chat_request,
    classify_response,
    extract_chat_request,
    extract_response,
    invalid_output_body,
    parse_classify,
    parse_extract,
    render,
    task_contract,
    template_variables,
)

__all__ = [
    "DEFAULT_CACHE",
    "InvalidOutput",
    "InvalidSchema",
    "LabelSet",
    "Mode",
    "OutputContract",
    "OutputError",
    "SchemaCache",
    "Task",
    "TaskError",
    "Valid",
    "add_usage",
    "anthropic_native_schema",
    "apply_contract",
    "classify_chat_request",
    "classify_response",
    "compile_validator",
    "complete_valid",
    "extract_chat_request",
    "extract_json",
    "extract_response",
    "invalid_output_body",
    "normalize_label",
    "parse_classify",
    "parse_extract",
    "render",
    "repair_request",
    "response_format",
    "schema_errors",
    "strict_compatible",
    "strip_fences",
    "task_contract",
    "template_variables",
]
