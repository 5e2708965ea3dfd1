"""Entry points of the KServe model servers: ``python -m serving.classifier`` and
``python -m serving.bias_scorer``. The servers themselves live in :mod:`assay.serving`."""
