"""Berth: a managed, multi-tenant OCI container registry."""

__version__ = "0.1.0"
