"""How a simulated model rates a passage: hidden truth + the model's offset + seeded noise.

Everything here is a pure function of (seed, model, passage text), so a retried request gets the
same rating and a rerun with the same seed reproduces every answer. ``malformed_answer`` draws from
the request's own random source, seeded by (seed, model, passage, attempt) in ``assay.sim.app``.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass

from assay.sim.config import SimModelConfig, text_key

SIMULATION_NOTICE = "assay simulator - a simulated model, not a real LLM"
REFUSAL_TEXT = (
    "I'm sorry, but I can't provide a political-bias rating for this passage. "
    f"({SIMULATION_NOTICE})"
)


def _unit_floats(*parts: object, count: int) -> list[float]:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return [int.from_bytes(digest[4 * i : 4 * i + 4], "big") / 2**32 for i in range(count)]


def hashed_truth(text: str) -> float:
    """A stand-in true score in [-2, 2] from the text alone, concentrated towards 0."""
    first, second = _unit_floats("truth", text_key(text), count=2)
    return round((first + second) * 2.0 - 2.0, 2)


def true_score(text: str, truth: dict[str, float]) -> float:
    """The passage's true score: from the truth table when it is there, hashed otherwise."""
    return truth.get(text_key(text), hashed_truth(text))


@dataclass(frozen=True)
class SimAnswer:
    text: str
    refused: bool
    score: float | None


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _label(score: float) -> str:
    if score <= -1.25:
        return "strongly liberal"
    if score <= -0.4:
        return "leaning liberal"
    if score < 0.4:
        return "close to neutral"
    if score < 1.25:
        return "leaning conservative"
    return "strongly conservative"


def rate(model: SimModelConfig, seed: int, text: str, truth: dict[str, float]) -> SimAnswer:
    """The simulated model's answer to the rating prompt for ``text``."""
    rng = random.Random(hashlib.sha256(f"{seed}|{model.name}|{text_key(text)}".encode()).digest())
    if rng.random() < model.refusal_rate:
        return SimAnswer(REFUSAL_TEXT, refused=True, score=None)
    score = round(
        _clamp(true_score(text, truth) + model.bias_offset + rng.gauss(0, model.noise), -2, 2), 2
    )
    confidence = round(_clamp(0.95 - 0.5 * model.noise - abs(rng.gauss(0, 0.05)), 0.05, 0.99), 2)
    answer = {
        "score": score,
        "biased": int(abs(score) >= 0.75),
        "confidence": confidence,
        "explanation": f"Simulated rating by {model.name} ({SIMULATION_NOTICE}): "
        f"the passage reads as {_label(score)}.",
    }
    return SimAnswer(json.dumps(answer), refused=False, score=score)


def malformed_answer(good_answer: str, rng: random.Random) -> str:
    """A broken version of an answer, of the kinds real models produce."""
    data = json.loads(good_answer) if good_answer.startswith("{") else {"score": 0.0}
    variants = [
        lambda: f"Here is my rating: {good_answer}",
        lambda: good_answer[: max(1, len(good_answer) // 2)],
        lambda: json.dumps({**data, "score": rng.choice([-3.5, 2.5, 4.0])}),
        lambda: json.dumps({k: v for k, v in data.items() if k != "confidence"}),
        lambda: f"```json\n{good_answer}\n```",
    ]
    return rng.choice(variants)()


def count_tokens(text: str) -> int:
    """A rough BPE-like count: about four characters per token, at least one."""
    return max(1, round(len(text) / 4))
