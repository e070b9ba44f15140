"""From embeddings to scores: SigLIP2-base's calibrated sigmoid, and a rule's best prompt.

Cosine similarities of SigLIP embeddings sit in a narrow band around zero; the model learnt a scale
and a bias that turn them into probabilities. Without them (``sigmoid(cos)``) every score would be
about 0.5 and no threshold would mean anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from konifer_edge.config.rules import RuleDefinition

LOGIT_SCALE: Final = 4.724453449249268
"""ln of the learnt temperature: similarities are multiplied by exp(LOGIT_SCALE), about 112.7."""
LOGIT_BIAS: Final = -16.771724700927734


def prompt_score(similarity: float) -> float:
    """``sigmoid(similarity * exp(scale) + bias)`` for one prompt's cosine similarity with the image."""
    logit = similarity * math.exp(LOGIT_SCALE) + LOGIT_BIAS
    # Both branches avoid overflow in exp for logits far from zero.
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    exponential = math.exp(logit)
    return exponential / (1.0 + exponential)


class PromptScore(msgspec.Struct, frozen=True):
    prompt: str
    score: float


class RuleScore(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    threshold: float
    score: float
    matched: bool
    prompt_scores: tuple[PromptScore, ...]


def score_rule(definition: RuleDefinition, similarities: Mapping[str, float]) -> RuleScore:
    """A rule's score is its best prompt's; it matches at or above its threshold."""
    prompt_scores = tuple(PromptScore(prompt, prompt_score(similarities[prompt])) for prompt in definition.prompts)
    best = max(score.score for score in prompt_scores)
    return RuleScore(
        name=definition.name,
        threshold=definition.threshold,
        score=best,
        matched=best >= definition.threshold,
        prompt_scores=prompt_scores,
    )


def score_rules(definitions: Sequence[RuleDefinition], similarities: Mapping[str, float]) -> dict[str, RuleScore]:
    return {definition.name: score_rule(definition, similarities) for definition in definitions}
