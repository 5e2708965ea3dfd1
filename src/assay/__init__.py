"""assay: a diagnostic classifier and an LLM-ensemble bias study, on Kubeflow/KServe or one laptop.

Importing this package is cheap on purpose: heavy libraries (kfp, kserve, ray, pymc, sklearn)
are imported inside the functions that need them.
"""

__version__ = "0.1.0"
