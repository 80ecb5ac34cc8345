"""modelroute.operator."""
