"""The decision table of spec 06 section 1: which rules count under each ``default``, and what follows.

Konifer's engine makes the pairings exclusive: under ``accept`` only reject rules (and modify rules)
are scored, under ``reject`` only accept rules (and modify rules). Labels of matched modify rules are
merged in config order, so when two set the same key the later one wins, whatever order the scores
arrived in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

import msgspec

from konifer_edge.config.rules import UploadRuleset
from konifer_edge.rules.scoring import RuleScore

DEFAULT_REJECTION_MESSAGE: Final = "Asset rejected by upload rules"
RESPONSE_SEPARATOR: Final = "; "
DECIDED_BY_DEFAULT: Final = "(default)"

Outcome = Literal["accepted", "rejected"]


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    accepted: bool
    message: str | None = None
    """Why the upload was rejected; ``None`` when accepted."""
    labels: dict[str, str] = msgspec.field(default_factory=dict)
    """Labels the matched modify rules add, in config order (later rules win a shared key)."""
    deciding_rule: str | None = None
    """The first matched rule that overrode ``default`` (config order); ``None`` when ``default`` decided."""

    @property
    def outcome(self) -> Outcome:
        return "accepted" if self.accepted else "rejected"

    @property
    def decided_by(self) -> str:
        """The rule label of the decisions metric."""
        return self.deciding_rule if self.deciding_rule is not None else DECIDED_BY_DEFAULT


def decide(ruleset: UploadRuleset, scores: Mapping[str, RuleScore]) -> Decision:
    """The decision for an upload whose evaluated rules scored ``scores`` (empty when none are evaluated)."""
    matched_deciding = [reference for reference in ruleset.deciding_rules if scores[reference.rule].matched]
    if ruleset.default == "accept":
        accepted = not matched_deciding
        responses = [reference.violation_response for reference in matched_deciding if reference.violation_response]
        message = RESPONSE_SEPARATOR.join(responses) or DEFAULT_REJECTION_MESSAGE
    else:
        accepted = bool(matched_deciding)
        # Under `reject` a violation-response has nothing to explain: no rule caused the rejection.
        message = DEFAULT_REJECTION_MESSAGE
    deciding_rule = matched_deciding[0].rule if matched_deciding else None
    if not accepted:
        return Decision(accepted=False, message=message, deciding_rule=deciding_rule)
    labels: dict[str, str] = {}
    for reference in ruleset.modify_rules:
        if scores[reference.rule].matched:
            labels.update(reference.labels)
    return Decision(accepted=True, labels=labels, deciding_rule=deciding_rule)


def merge_labels(requested: Mapping[str, str], decided: Mapping[str, str]) -> dict[str, str]:
    """The stored labels: the request's, with each rule-set key overriding the request's value."""
    return {**requested, **decided}
