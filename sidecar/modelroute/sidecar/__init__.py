"""modelroute.sidecar."""
