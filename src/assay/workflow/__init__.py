"""Glue between the KFP pipelines and the library.

* ``steps``: the one function each training component calls (artifacts are duck-typed, so the
  steps are testable without kfp);
* ``local``: run a pipeline through ``kfp.local`` and collect its outputs into a run folder;
* ``remote``: compile and submit a pipeline to a Kubeflow Pipelines endpoint.

kfp is imported inside functions only.
"""
