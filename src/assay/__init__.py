"""assay: a diagnostic classifier and an LLM-ensemble bias study, on Kubeflow/KServe or one laptop.

Importing this package is cheap on purpose: heavy libraries (kfp, kserve, ray, pymc, sklearn)
are imported inside the functions that need them.
"""

from importlib.metadata import version

__version__ = version("assay")
"""The installed distribution's version: pyproject.toml's ``[project] version``, written nowhere
else."""
