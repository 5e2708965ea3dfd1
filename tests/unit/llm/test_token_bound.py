"""The money side of a rating is bounded by a token count that is an upper bound (issue 22).

The providers' tokenizers are byte-level BPEs. Their vocabularies cannot be fetched here (no
internet: tiktoken's bundled package has no encodings, it downloads them on first use), so the
tokenizer is a real byte-level BPE (HuggingFace ``tokenizers``) trained in the test on English
with a few emoji and CJK characters - the same algorithm, a smaller vocabulary. Whatever a
byte-level BPE learned, each token covers at least one byte, so its count never exceeds the
UTF-8 byte count; characters it never saw (rare CJK) cost one token per byte, as they do for
the providers (19,980 such characters: 59,940-79,920 tokens, where chars/4 said 5,011).
"""

from __future__ import annotations

import pytest

from assay.bias.rating.task import RatingTask
from assay.llm.ensemble import RaterConfig
from assay.llm.usage import MESSAGE_OVERHEAD_TOKENS, cost_usd, worst_case_cost

CORPUS = [
    "The council debated taxes, schools and the new bridge on Tuesday night.",
    "Officials said the plan would cut costs; critics called it reckless. 😀 👍 漢字 東京",
] * 40
PASSAGES = {
    "emoji": "😀" * 19_980,
    "rare CJK (U+20000..)": "".join(chr(0x20000 + i % 500) for i in range(19_980)),
    "common CJK": "東京都議会は予算案を可決した。" * 1_300,
    "English": "The council debated taxes, schools and the new bridge. " * 350,
    "mixed": ("Tax plan 税制 👍 ünïcödé " * 800),
}


@pytest.fixture(scope="module")
def byte_level_bpe() -> object:
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(CORPUS, vocab_size=800, min_frequency=1, show_progress=False)
    return tokenizer


def tokens(tokenizer: object, text: str) -> int:
    return len(tokenizer.encode(text).ids)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", list(PASSAGES))
def test_the_byte_bound_is_an_upper_bound_for_a_byte_level_bpe(
    byte_level_bpe: object, name: str
) -> None:
    from assay.llm.usage import token_bound

    text = PASSAGES[name]
    counted = tokens(byte_level_bpe, text)
    assert counted <= token_bound(text) - MESSAGE_OVERHEAD_TOKENS
    if name.startswith("rare CJK"):  # never seen in training: one token per byte
        assert counted == len(text.encode()) == 4 * 19_980


@pytest.mark.parametrize("name", list(PASSAGES))
def test_the_reservation_covers_the_real_cost_of_a_rating_and_its_repair(
    byte_level_bpe: object, name: str
) -> None:
    """What is reserved before a rater is asked is at least what the call and its one repair
    can cost, with the prompt counted by a real byte-level BPE and max_tokens out each time (a
    repair prompt holds the whole prompt again, plus the rejected answer: at least as much).
    (The estimate before issue 22, chars/4 doubled, reserved 3-8 times too little for emoji and
    rare CJK.)"""
    rater = RaterConfig(
        provider="openai",
        model="m",
        max_tokens=256,
        price_per_1k_input=0.15,
        price_per_1k_output=0.6,
    )
    task = RatingTask(PASSAGES[name])
    prompt_tokens = tokens(byte_level_bpe, task.system) + tokens(byte_level_bpe, task.prompt)
    real = 2 * cost_usd(rater, prompt_tokens, rater.max_tokens)
    reserved = worst_case_cost(rater, task.system, task.prompt)
    print(f"\n{name}: {prompt_tokens} prompt tokens; reserved {reserved:.4f} USD, real {real:.4f}")
    assert reserved >= real
