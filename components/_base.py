"""What every assay component shares: the project image (built from images/Dockerfile).

The image already holds kfp and assay (installed from requirements.lock), so components do not
pip-install anything at start-up (``install_kfp_package=False``, no ``packages_to_install``).
"""

BASE_IMAGE = "ghcr.io/assay-ml/assay:0.1.0"

COMPONENT_OPTIONS = {"base_image": BASE_IMAGE, "install_kfp_package": False}
