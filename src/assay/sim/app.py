"""The simulated endpoint as a Starlette app: OpenAI, Anthropic and Together wire formats.

Routes (the paths the real SDKs call, so they work unchanged through ``base_url``):
  POST /v1/chat/completions  OpenAI (base_url <root>/v1) and Together (base_url <root>)
  POST /v1/messages          Anthropic (base_url <root>)
  GET  /v1/models            the simulated models
  GET  /sim/stats            per-model counts, violations, faults, per-second timeline
  POST /sim/reset            zero the statistics, rate windows and attempt counts
  GET  /health

Determinism: every answer, refusal, malformed answer, injected fault and latency jitter is a
pure function of (seed, model, passage text, attempt number) - never of arrival order,
concurrency, the client's worker count or the clock. The rating itself depends on (seed, model,
passage) only (``rater.rate``); the fault, the jitter and the malformed variant of a request come
from one ``random.Random`` seeded with sha256 of (seed, model, passage key, attempt), where the
passage key is ``text_key`` of the passage between the prompt's markers (a repair prompt repeats
the passage, so a repair is the next attempt of the same passage) and the attempt number is how
many requests for that (model, passage key) were admitted before (``SimState.next_attempt``;
requests the rpm window rejects do not count, since that depends on the clock).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from assay.bias.prompt import extract_passage
from assay.sim.config import SimConfig, SimModelConfig, text_key
from assay.sim.rater import SIMULATION_NOTICE, count_tokens, malformed_answer, rate
from assay.sim.state import SimState

SIM_HEADERS = {"x-assay-simulated": "true"}
_ERROR_TYPES = {
    "openai": {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "invalid_request_error",
        429: "rate_limit_exceeded",
        500: "server_error",
        503: "server_error",
    },
    "anthropic": {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "not_found_error",
        429: "rate_limit_error",
        500: "api_error",
        503: "overloaded_error",
    },
}


class SimHTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class ChatCall:
    """What the simulator needs from a request, whatever its wire format."""

    model: SimModelConfig
    system: str
    user: str
    max_tokens: int

    @property
    def passage(self) -> str:
        """The passage being rated (the whole user message when it has no passage markers)."""
        return extract_passage(self.user)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _seconds(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


class SimEndpoint:
    """Request handling shared by the wire formats; ``app()`` builds the Starlette app."""

    def __init__(self, config: SimConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.truth = config.truth_table()
        self.state = SimState({m.name: m.rpm for m in config.models}, config.rate_window_s, clock)
        self._key = config.api_key.get_secret_value() if config.api_key else None

    # --- request -> ChatCall -------------------------------------------------------------------

    def _check_key(self, request: Request, wire: str) -> None:
        if self._key is None:
            return
        bearer = request.headers.get("authorization", "")
        presented = request.headers.get("x-api-key") if wire == "anthropic" else None
        presented = presented or (bearer[7:] if bearer.lower().startswith("bearer ") else None)
        if presented != self._key:
            raise SimHTTPError(401, "Invalid API key for the assay simulator.")

    async def _json_body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await self._bounded_body(request))
        except RecursionError:
            raise SimHTTPError(400, "Request body nests JSON too deeply.") from None
        except ValueError:
            raise SimHTTPError(400, "Request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise SimHTTPError(400, "Request body must be a JSON object.")
        return body

    async def _bounded_body(self, request: Request) -> bytes:
        """The body, read only up to ``max_body_bytes`` (413 beyond, by its declared length
        first, then while it streams)."""
        limit = self.config.max_body_bytes
        too_large = SimHTTPError(413, f"Request body is over this simulator's {limit} bytes.")
        declared = request.headers.get("content-length", "")
        if declared and not (declared.isascii() and declared.isdigit()):
            raise SimHTTPError(400, "Content-Length must be a whole number of bytes.")
        if declared and int(declared) > limit:
            raise too_large
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise too_large
            chunks.append(chunk)
        return b"".join(chunks)

    def _model(self, body: dict[str, Any]) -> SimModelConfig:
        name = body.get("model")
        model = self.config.model(name) if isinstance(name, str) else None
        if model is None:
            known = ", ".join(m.name for m in self.config.models)
            raise SimHTTPError(404, f"The model {name!r} does not exist here (simulated: {known}).")
        return model

    @staticmethod
    def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise SimHTTPError(400, "messages: must be a non-empty list.")
        if not all(isinstance(m, dict) for m in messages):
            raise SimHTTPError(400, "messages: every message must be an object.")
        return messages

    @staticmethod
    def _max_tokens(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SimHTTPError(400, "max_tokens: must be a positive integer.")
        return value

    def _openai_call(self, body: dict[str, Any]) -> ChatCall:
        messages = self._messages(body)
        system = "\n".join(
            _content_text(m.get("content")) for m in messages if m.get("role") == "system"
        )
        users = [_content_text(m.get("content")) for m in messages if m.get("role") == "user"]
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 4096
        model = self._model(body)
        return ChatCall(model, system, users[-1] if users else "", self._max_tokens(max_tokens))

    def _anthropic_call(self, request: Request, body: dict[str, Any]) -> ChatCall:
        if "anthropic-version" not in request.headers:
            raise SimHTTPError(400, "The anthropic-version header is required.")
        messages = self._messages(body)
        max_tokens = self._max_tokens(body.get("max_tokens"))
        users = [_content_text(m.get("content")) for m in messages if m.get("role") == "user"]
        system = _content_text(body.get("system", ""))
        return ChatCall(self._model(body), system, users[-1] if users else "", max_tokens)

    # --- simulation ----------------------------------------------------------------------------

    def _limit_headers(self, model: str, wire: str) -> dict[str, str]:
        config = self.config.model(model)
        info = self.state.limit_headers(model) if config and config.limit_headers else {}
        if not info:
            return {}
        if wire == "anthropic":
            reset = datetime.fromtimestamp(time.time() + info["reset_s"], UTC)
            return {
                "anthropic-ratelimit-requests-limit": str(info["limit"]),
                "anthropic-ratelimit-requests-remaining": str(info["remaining"]),
                "anthropic-ratelimit-requests-reset": reset.isoformat().replace("+00:00", "Z"),
            }
        return {
            "x-ratelimit-limit-requests": str(info["limit"]),
            "x-ratelimit-remaining-requests": str(info["remaining"]),
            "x-ratelimit-reset-requests": _seconds(info["reset_s"]) + "s",
        }

    def _admit(self, call: ChatCall) -> None:
        wait = self.state.receive(call.model.name)
        if wait is not None:
            raise SimHTTPError(
                429,
                f"Rate limit of {call.model.rpm} requests per {self.state.window_s:g} s exceeded "
                f"for {call.model.name}.",
                {
                    "retry-after": str(math.ceil(wait)),
                    "retry-after-ms": str(math.ceil(wait * 1000)),
                },
            )

    def request_rng(self, model: str, passage: str, attempt: int) -> random.Random:
        """The random source of one request: the same (seed, model, passage, attempt) always
        gives the same fault, latency jitter and malformed variant."""
        material = f"{self.config.seed}|{model}|{text_key(passage)}|{attempt}"
        return random.Random(hashlib.sha256(material.encode()).digest())

    @staticmethod
    def _draw_fault(model: SimModelConfig, rng: random.Random) -> str | None:
        draw = rng.random()
        for kind, probability in model.faults.model_dump().items():
            if draw < probability:
                return str(kind)
            draw -= probability
        return None

    @staticmethod
    async def _service_delay(model: SimModelConfig, rng: random.Random) -> None:
        jitter = rng.uniform(-model.latency_jitter_s, model.latency_jitter_s)
        delay = max(0.0, model.latency_s + jitter)
        if delay:
            await asyncio.sleep(delay)

    async def _simulate(
        self, call: ChatCall, fault: str | None, rng: random.Random
    ) -> tuple[str, int, int, str]:
        """(answer text, input tokens, output tokens, finish) for an admitted call; ``rng`` is
        the request's own (``request_rng``), already used for the fault draw."""
        stats = self.state.models[call.model.name]
        if fault is not None:
            stats.faults[fault] += 1
        if fault == "rate_limit":
            retry = _seconds(call.model.retry_after_s)
            raise SimHTTPError(
                429, "Simulated rate limit (injected fault).", {"retry-after": retry}
            )
        if fault in ("server_error", "unavailable"):
            status = 500 if fault == "server_error" else 503
            raise SimHTTPError(status, f"Simulated HTTP {status} (injected fault).")
        if fault == "timeout":
            await asyncio.sleep(self.config.timeout_delay_s)
        await self._service_delay(call.model, rng)
        answer = rate(call.model, self.config.seed, call.passage, self.truth)
        text = answer.text
        if answer.refused:
            stats.refusals += 1
        elif fault == "malformed":
            text = malformed_answer(text, rng)
        tokens_in = count_tokens(call.system) + count_tokens(call.user) + 8
        tokens_out = count_tokens(text)
        finish = "stop"
        if tokens_out > call.max_tokens:
            text, tokens_out, finish = text[: call.max_tokens * 4], call.max_tokens, "length"
        stats.input_tokens += tokens_in
        stats.output_tokens += tokens_out
        return text, tokens_in, tokens_out, finish

    # --- wire formats --------------------------------------------------------------------------

    def _error(self, wire: str, exc: SimHTTPError, model: str | None) -> Response:
        kind = _ERROR_TYPES[wire].get(exc.status, "api_error")
        if wire == "anthropic":
            body: dict[str, Any] = {
                "type": "error",
                "error": {"type": kind, "message": exc.message},
            }
        else:
            body = {"error": {"message": exc.message, "type": kind, "param": None, "code": kind}}
        headers = {**SIM_HEADERS, **exc.headers}
        if model is not None:
            headers.update(self._limit_headers(model, wire))
            self.state.models[model].statuses[exc.status] += 1
        return JSONResponse(body, status_code=exc.status, headers=headers)

    def _bad_body(self) -> Response:
        return Response(
            '{"id": "sim-broken", "choices": [{"message": {"content": "{\\"sco',
            media_type="application/json",
            headers=SIM_HEADERS,
        )

    async def _handle(self, request: Request, wire: str) -> Response:
        model_name: str | None = None
        try:
            self._check_key(request, wire)
            body = await self._json_body(request)
            call = (
                self._anthropic_call(request, body)
                if wire == "anthropic"
                else self._openai_call(body)
            )
            model_name = call.model.name
            self._admit(call)
            attempt = self.state.next_attempt(model_name, text_key(call.passage))
            rng = self.request_rng(model_name, call.passage, attempt)
            fault = self._draw_fault(call.model, rng)
            result = await self._simulate(call, fault, rng)
        except SimHTTPError as exc:
            return self._error(wire, exc, model_name)
        stats = self.state.models[call.model.name]
        stats.statuses[200] += 1
        if fault == "bad_body":
            return self._bad_body()
        stats.answered += 1
        headers = {**SIM_HEADERS, **self._limit_headers(call.model.name, wire)}
        build = _anthropic_body if wire == "anthropic" else _openai_body
        return JSONResponse(build(call.model.name, *result), headers=headers)

    async def chat_completions(self, request: Request) -> Response:
        return await self._handle(request, "openai")

    async def messages(self, request: Request) -> Response:
        return await self._handle(request, "anthropic")

    async def list_models(self, request: Request) -> Response:
        data = [
            {
                "id": m.name,
                "object": "model",
                "owned_by": "assay-sim",
                "description": SIMULATION_NOTICE,
            }
            for m in self.config.models
        ]
        return JSONResponse({"object": "list", "data": data}, headers=SIM_HEADERS)

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.snapshot(), headers=SIM_HEADERS)

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"reset": True}, headers=SIM_HEADERS)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "simulated": True}, headers=SIM_HEADERS)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
                Route("/v1/messages", self.messages, methods=["POST"]),
                Route("/v1/models", self.list_models, methods=["GET"]),
                Route("/sim/stats", self.stats, methods=["GET"]),
                Route("/sim/reset", self.reset, methods=["POST"]),
                Route("/health", self.health, methods=["GET"]),
            ]
        )


def _openai_body(
    model: str, text: str, tokens_in: int, tokens_out: int, finish: str
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-sim-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "assay-sim",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        },
    }


def _anthropic_body(
    model: str, text: str, tokens_in: int, tokens_out: int, finish: str
) -> dict[str, Any]:
    return {
        "id": f"msg_sim_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "max_tokens" if finish == "length" else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }
