"""The upload-rules step of a store: score the upload, then reject it or say which labels to add."""

from __future__ import annotations

from konifer_edge.config.rules import UploadRuleset
from konifer_edge.domain.errors import BadRequest, ServiceUnavailable
from konifer_edge.observability import metrics
from konifer_edge.rules.decision import Decision, decide
from konifer_edge.services.ports import RuleDecisions


def needs_pixels(ruleset: UploadRuleset) -> bool:
    """Whether the model scores uploads here: only when some rule is evaluated."""
    return bool(ruleset.evaluated_rules)


async def apply_upload_rules(
    rules: RuleDecisions | None, ruleset: UploadRuleset, pixels: bytes | None
) -> dict[str, str]:
    """The labels the matched modify rules add; raises 400 ``upload_rejected`` when the ruleset refuses.

    Konifer's documented default (``accept`` and no rules) decides nothing and counts nothing.
    """
    if not ruleset.evaluated_rules:
        if ruleset.default == "accept":
            return {}
        decision = decide(ruleset, {})  # `reject` with no accept rule: the default alone decides
    else:
        if rules is None or pixels is None:
            raise ServiceUnavailable("Upload rules are not loaded on this node", reason="rules_unavailable")
        decision = await rules.decide(ruleset, pixels)
    metrics.RULE_DECISIONS.labels(decision.outcome, decision.decided_by).inc()
    return _labels_or_rejection(decision)


def _labels_or_rejection(decision: Decision) -> dict[str, str]:
    if not decision.accepted:
        raise BadRequest(decision.message or "", reason="upload_rejected")
    return decision.labels
