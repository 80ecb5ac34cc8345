"""modelroute.testing."""
