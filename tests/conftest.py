"""Shared pytest configuration for the whole suite."""

from modelroute.testing import lifecyclepin

# Model retirement checks read MODELROUTE_LIFECYCLE_DATE: one day for the whole session, set before any test
# starts a process (operator, sidecars, demo, chart release on the real node), which inherit it.
lifecyclepin.pin()
