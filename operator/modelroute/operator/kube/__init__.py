"""The operator's own small async Kubernetes REST client (kopf owns watching; this owns writes)."""
