"""Pushing config to the sidecars: what each pod should serve (``plan``, pure) and the client that sends it (``client``)."""
