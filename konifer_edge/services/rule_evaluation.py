"""Scoring one image against rule definitions, for `POST /rule-evaluations`; nothing is stored."""

from __future__ import annotations

from typing import Final, Protocol

from konifer_edge.config import Config
from konifer_edge.config.rules import RuleDefinition
from konifer_edge.domain.errors import BadRequest, ServiceUnavailable, UnsupportedMediaType
from konifer_edge.imaging.original import OriginalJob
from konifer_edge.imaging.probe import sniff
from konifer_edge.rules.scoring import RuleScore
from konifer_edge.services.ports import Decoding, RuleScoring
from konifer_edge.services.store import probe_limits

REASON: Final = "invalid_rule_evaluation"
"""The reason of every 400 an evaluation request gets."""


class EvaluationParts(Protocol):
    @property
    def config(self) -> Config: ...
    @property
    def decoding(self) -> Decoding: ...
    @property
    def rules(self) -> RuleScoring | None: ...


async def score_image(
    parts: EvaluationParts, definitions: list[RuleDefinition], content: bytes
) -> dict[str, RuleScore]:
    """Each definition's score, by name; the image is decoded within the root path's limits."""
    engine = parts.rules
    if engine is None:  # the route exists only with the API enabled, which loads the model
        raise ServiceUnavailable("Upload rules are not loaded on this node", reason="rules_unavailable")
    try:
        sniff(content)
    except UnsupportedMediaType as error:
        raise BadRequest(f"{error.message}; the image must be in a storage format", reason=REASON) from error
    job = OriginalJob(limits=probe_limits(parts.config.paths.root.limits), rule_pixels=True)
    examined = await parts.decoding.examine(content, job)
    assert examined.rule_pixels is not None
    return await engine.score(definitions, examined.rule_pixels)
