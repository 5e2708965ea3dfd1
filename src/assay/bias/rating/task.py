"""The bias-rating prompt as a task for the LLM transport."""

from __future__ import annotations

from dataclasses import dataclass, field

from assay.bias.prompt import PROMPT_VERSION, Rating, build_messages, parse_rating, repair_prompt


@dataclass(frozen=True)
class RatingTask:
    """Rate the political bias of ``text`` (see ``assay.bias.prompt``)."""

    text: str
    version: str = PROMPT_VERSION
    system: str = field(init=False)
    prompt: str = field(init=False)

    def __post_init__(self) -> None:
        system, prompt = build_messages(self.text)
        object.__setattr__(self, "system", system)
        object.__setattr__(self, "prompt", prompt)

    def parse(self, answer: str) -> Rating:
        return parse_rating(answer)

    def repair(self, answer: str, problem: str) -> str:
        return repair_prompt(self.text, answer, problem)
