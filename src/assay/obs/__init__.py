"""Observability: structured logging setup, Prometheus metric definitions, HTML report rendering."""
