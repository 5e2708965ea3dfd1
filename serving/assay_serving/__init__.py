"""Entry points of the KServe model servers: ``python -m assay_serving.classifier`` and
``python -m assay_serving.bias_scorer``. The servers themselves live in :mod:`assay.serving`."""
