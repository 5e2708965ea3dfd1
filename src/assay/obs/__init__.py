"""Observability: structured logging setup and Prometheus metric definitions."""
