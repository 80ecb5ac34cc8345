"""The operator's own kopf registry (not kopf's global default), so embedding is explicit."""

import kopf

registry = kopf.OperatorRegistry()
