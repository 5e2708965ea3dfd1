"""One task asked of one rater: build the request, retry the call, parse, repair once.

The transport knows no prompt: the caller hands it a :class:`Task` (the messages, how to parse
the answer, and the message that asks for a corrected answer) and gets the parsed value back,
with every call, token, cost and retry it took added to a :class:`Spent`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol, TypeVar

from assay.llm.cache import cache_key
from assay.llm.clock import Clock, MonotonicClock
from assay.llm.ensemble import Ensemble, RaterConfig, Resilience, endpoints_of
from assay.llm.errors import ResponseParseError
from assay.llm.ratelimit import Limiter
from assay.llm.retry import RetryPolicy, call_with_retries
from assay.llm.router import ProviderFactory, RaterRouter, sdk_provider
from assay.llm.types import CompletionRequest, CompletionResponse
from assay.llm.usage import cost_usd, estimate_tokens
from assay.obs.metrics_llm import LLMMetrics

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class Task(Protocol[T_co]):
    """What to ask and how to read the answer; ``version`` is part of every cache key."""

    @property
    def version(self) -> str: ...

    @property
    def system(self) -> str: ...

    @property
    def prompt(self) -> str: ...

    def parse(self, answer: str) -> T_co:
        """The parsed answer, or ``ResponseParseError`` saying what is wrong with it."""
        ...

    def repair(self, answer: str, problem: str) -> str:
        """The user message that asks again after ``answer`` failed to parse with ``problem``."""
        ...


@dataclass
class Spent:
    """What answering one task took: calls (repairs included), tokens, cost, latency, retries."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency: float = 0.0
    retries: int = 0


def task_cache_key(config: RaterConfig, task: Task[object]) -> str:
    """The cache key of a rater's answer to ``task``."""
    return cache_key(
        provider=config.provider,
        model=config.model,
        prompt_version=task.version,
        system=task.system,
        prompt=task.prompt,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
    )


class TaskRunner:
    """One rater in one process: its router (endpoints, breakers, limiter) and retry policy."""

    def __init__(
        self,
        name: str,
        config: RaterConfig,
        router: RaterRouter,
        *,
        policy: RetryPolicy,
        metrics: LLMMetrics,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.router = router
        self.policy = policy
        self.metrics = metrics
        self.clock = clock or MonotonicClock()

    def request_for(self, task: Task[object]) -> CompletionRequest:
        return CompletionRequest(
            model=self.config.model,
            prompt=task.prompt,
            system=task.system,
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
            timeout_s=self.config.timeout_s,
        )

    async def ask(self, task: Task[T], spent: Spent) -> tuple[T, str]:
        """The parsed answer to ``task`` and the model that gave it; an answer that does not
        parse is sent back once with the task's repair message."""
        request = self.request_for(task)
        response = await self.complete(request, spent)
        try:
            value = task.parse(response.text)
        except ResponseParseError as first:
            repair = dataclasses.replace(request, prompt=task.repair(response.text, str(first)))
            response = await self.complete(repair, spent)
            try:
                value = task.parse(response.text)
            except ResponseParseError as second:
                raise ResponseParseError(f"after one repair retry: {second}") from None
        return value, response.model or self.config.model

    async def complete(self, request: CompletionRequest, spent: Spent) -> CompletionResponse:
        """One call with retries (the policy's), accounted in ``spent`` and the metrics."""
        est = estimate_tokens(request.system, request.prompt) + request.max_tokens

        def on_retry(exc: BaseException) -> None:
            spent.retries += 1
            self.metrics.retry(self.name, getattr(exc, "endpoint_label", "all"))

        tries = 0

        async def attempt() -> CompletionResponse:
            nonlocal tries
            tries += 1
            return await self.router.attempt(request, est, priority=tries - 1)

        response = await call_with_retries(
            attempt,
            self.policy,
            clock=self.clock,
            on_retry=on_retry,
        )
        spent.calls += 1
        spent.input_tokens += response.input_tokens
        spent.output_tokens += response.output_tokens
        spent.latency += response.latency_s
        cost = cost_usd(self.config, response.input_tokens, response.output_tokens)
        spent.cost += cost
        self.metrics.tokens(self.name, "input", response.input_tokens)
        self.metrics.tokens(self.name, "output", response.output_tokens)
        self.metrics.cost(self.name, cost)
        return response

    async def aclose(self) -> None:
        await self.router.aclose()


def retry_policy_for(resilience: Resilience) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=resilience.max_attempts,
        initial_s=resilience.backoff_initial_s,
        max_s=resilience.backoff_max_s,
    )


def router_for(
    ensemble: Ensemble,
    name: str,
    limiter: Limiter,
    *,
    metrics: LLMMetrics,
    clock: Clock | None = None,
    provider_factory: ProviderFactory = sdk_provider,
) -> RaterRouter:
    """The router of rater ``name`` with the ensemble's breaker and pause settings."""
    res = ensemble.resilience
    return RaterRouter(
        name,
        endpoints_of(ensemble, name),
        limiter,
        metrics=metrics,
        timeout_s=ensemble.raters[name].timeout_s,
        failure_threshold=res.breaker_failures,
        cooldown_s=res.breaker_cooldown_s,
        max_pause_s=res.max_pause_s,
        clock=clock,
        provider_factory=provider_factory,
    )
