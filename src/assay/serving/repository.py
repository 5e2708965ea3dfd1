"""The v2 model-repository extension (``/v2/repository/models/<name>/load|unload``), guarded.

Without an admin token (``--admin-token-file`` / ``ASSAY_ADMIN_TOKEN_FILE``) the repository
endpoints are off (403). With one, a REST call needs ``Authorization: Bearer <token>``: the HTTP
layer (:class:`assay.serving.http.RepositoryGuard`) checks it with ``hmac.compare_digest`` and
marks the request as the admin's; :class:`GuardedRepositoryExtension` refuses any call not so
marked, so the gRPC repository RPCs (which carry no token here) are refused with
PERMISSION_DENIED. Reload also works without the endpoints: SIGHUP or ``--reload-interval``.

``unload`` keeps the model registered but not ready: its readiness, the server's readiness and
every inference answer 503 until ``load`` brings it back.
"""

from __future__ import annotations

import asyncio
import contextvars
from pathlib import Path
from typing import Any

from grpc_interceptor.exceptions import PermissionDenied
from kserve.errors import ModelNotFound
from kserve.model_repository import ModelRepository
from kserve.protocol.model_repository_extension import ModelRepositoryExtension

from assay.errors import ConfigError
from assay.obs.logging import get_logger

log = get_logger("serving.repository")

admin_request: contextvars.ContextVar[bool] = contextvars.ContextVar("admin_request", default=False)
"""True while the HTTP layer handles a request that carried the admin token."""


class RepositoryDenied(PermissionDenied):
    """A repository call without the admin's credentials: 403 over REST, PERMISSION_DENIED."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = message


def read_admin_token(path: str | None) -> str | None:
    """The admin token in ``path`` (read once, at start-up); None when no file is configured."""
    if path is None:
        return None
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"--admin-token-file {path}: cannot read it ({exc})") from None
    if len(token) < 16:
        raise ConfigError(f"--admin-token-file {path}: the token needs at least 16 characters")
    return token


class ServingRepository(ModelRepository):
    """KServe's model repository where ``load`` (re)loads a registered model in place."""

    async def load(self, name: str) -> bool:
        model = self._model(name)
        await asyncio.to_thread(model.load)
        return True

    def mark_unloaded(self, name: str) -> None:
        self._model(name).ready = False

    def _model(self, name: str) -> Any:
        model = self.get_model(name)
        if model is None:
            raise ModelNotFound(name)
        return model


class GuardedRepositoryExtension(ModelRepositoryExtension):
    """The repository extension that only the admin (a marked REST request) may use."""

    def __init__(self, repository: ServingRepository) -> None:
        super().__init__(repository)
        self.repository = repository

    async def load(self, model_name: str) -> None:
        self._check("load", model_name)
        await super().load(model_name)
        log.warning("repository_load", model=model_name)

    async def unload(self, model_name: str) -> None:
        self._check("unload", model_name)
        self.repository.mark_unloaded(model_name)
        log.warning("repository_unload", model=model_name)

    def _check(self, action: str, model_name: str) -> None:
        if not admin_request.get():
            log.warning("repository_call_refused", action=action, model=model_name)
            raise RepositoryDenied(
                f"{action} refused: the repository calls need the admin token over REST "
                "(Authorization: Bearer); over gRPC they are disabled"
            )
