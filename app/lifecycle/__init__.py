"""Provisioning: each registry's Kubernetes footprint, and the operations that create and delete it."""
