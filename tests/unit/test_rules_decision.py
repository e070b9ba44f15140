"""The decision table of spec 06 section 1, row by row, and the merging of labels."""

from __future__ import annotations

from konifer_edge.config.rules import RuleReference, UploadRuleset
from konifer_edge.rules.decision import DEFAULT_REJECTION_MESSAGE, decide, merge_labels
from konifer_edge.rules.scoring import RuleScore


def scores(**matched: bool) -> dict[str, RuleScore]:
    return {
        name: RuleScore(name=name, threshold=0.5, score=0.9 if hit else 0.1, matched=hit, prompt_scores=())
        for name, hit in matched.items()
    }


def ref(rule: str, response: str | None = None, **labels: str) -> RuleReference:
    return RuleReference(rule=rule, violation_response=response, labels=labels)


def test_accept_default_evaluates_reject_and_modify_rules_only() -> None:
    ruleset = UploadRuleset(
        default="accept", accept_rules=(ref("a"),), reject_rules=(ref("r"),), modify_rules=(ref("m"),)
    )

    assert [reference.rule for reference in ruleset.evaluated_rules] == ["r", "m"]


def test_reject_default_evaluates_accept_and_modify_rules_only() -> None:
    ruleset = UploadRuleset(
        default="reject", accept_rules=(ref("a"),), reject_rules=(ref("r"),), modify_rules=(ref("m"),)
    )

    assert [reference.rule for reference in ruleset.evaluated_rules] == ["a", "m"]


def test_accept_default_accepts_when_no_reject_rule_matches() -> None:
    ruleset = UploadRuleset(reject_rules=(ref("r1", "no"), ref("r2", "never")))

    decision = decide(ruleset, scores(r1=False, r2=False))

    assert decision.accepted and decision.message is None and decision.decided_by == "(default)"


def test_accept_default_rejects_with_every_matched_response_joined_in_config_order() -> None:
    ruleset = UploadRuleset(reject_rules=(ref("r1", "First"), ref("r2"), ref("r3", "Third")))

    decision = decide(ruleset, scores(r3=True, r2=True, r1=True))

    assert not decision.accepted
    assert decision.message == "First; Third"
    assert decision.deciding_rule == "r1"


def test_accept_default_without_any_response_uses_the_default_message() -> None:
    ruleset = UploadRuleset(reject_rules=(ref("r1"), ref("r2", "Unmatched says nothing")))

    decision = decide(ruleset, scores(r1=True, r2=False))

    assert decision.message == DEFAULT_REJECTION_MESSAGE == "Asset rejected by upload rules"


def test_reject_default_accepts_when_an_accept_rule_matches() -> None:
    ruleset = UploadRuleset(default="reject", accept_rules=(ref("a1"), ref("a2")))

    decision = decide(ruleset, scores(a1=False, a2=True))

    assert decision.accepted and decision.deciding_rule == "a2"


def test_reject_default_rejects_with_the_default_message_ignoring_responses() -> None:
    ruleset = UploadRuleset(default="reject", accept_rules=(ref("a1", "ignored"),), modify_rules=(ref("m", "too"),))

    decision = decide(ruleset, scores(a1=False, m=True))

    assert not decision.accepted and decision.message == DEFAULT_REJECTION_MESSAGE
    assert decision.labels == {}


def test_with_nothing_evaluated_the_default_alone_decides() -> None:
    assert decide(UploadRuleset(), {}).accepted
    assert decide(UploadRuleset(accept_rules=(ref("a"),)), {}).accepted  # accept rules are not evaluated
    rejected = decide(UploadRuleset(default="reject", reject_rules=(ref("r"),)), {})
    assert not rejected.accepted and rejected.message == DEFAULT_REJECTION_MESSAGE


def test_matched_modify_rules_merge_labels_later_rule_winning() -> None:
    ruleset = UploadRuleset(
        modify_rules=(
            ref("m1", kind="first", only1="x"),
            ref("m2", kind="second", only2="y"),
            ref("m3", kind="unmatched"),
        )
    )

    decision = decide(ruleset, scores(m3=False, m2=True, m1=True))

    assert decision.labels == {"kind": "second", "only1": "x", "only2": "y"}


def test_rule_labels_win_over_the_request_labels() -> None:
    assert merge_labels({"kind": "mine", "keep": "1"}, {"kind": "rule"}) == {"kind": "rule", "keep": "1"}


def test_a_rejected_upload_gets_no_labels() -> None:
    ruleset = UploadRuleset(reject_rules=(ref("r"),), modify_rules=(ref("m", kind="x"),))

    decision = decide(ruleset, scores(r=True, m=True))

    assert not decision.accepted and decision.labels == {}
