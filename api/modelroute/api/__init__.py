"""modelroute.api."""
