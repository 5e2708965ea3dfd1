"""KServe model servers: ``python -m serving.classifier`` and ``python -m serving.bias_scorer``.

Shared pieces (request validation, adaptive batching, request logs, HTTP extras) live in
``serving._shared``; metric definitions in ``assay.obs.metrics_serving``.
"""
