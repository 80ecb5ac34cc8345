"""modelroute.cli."""
