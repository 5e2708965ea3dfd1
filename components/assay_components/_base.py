"""What every assay component shares: the project image (images/Dockerfile, target ``pipeline``).

The image already holds kfp and assay (installed from images/locks/pipeline.lock), so components
do not pip-install anything at start-up (``install_kfp_package=False``, no ``packages_to_install``).
"""

from assay.config import PIPELINE_IMAGE

BASE_IMAGE = PIPELINE_IMAGE
"""The default; ``assay compile --image`` / ``ASSAY_IMAGE`` rewrite it in the compiled IR."""

COMPONENT_OPTIONS = {"base_image": BASE_IMAGE, "install_kfp_package": False}
