"""Upload-rules configuration (spec 06 section 1): what loads, what it means, and each refusal by key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from konifer_edge.config import ConfigError, load_config
from konifer_edge.config.load import build_config
from konifer_edge.config.rules import RuleReference, UploadRuleset
from tests.support.konifer_rule_examples import KONIFER_EXAMPLES

DEFINITIONS = {
    "blood-and-gore": {"prompts": ["Graphic visible blood ", "open wound with blood"], "threshold": 0.72},
    "product-photo": {"prompts": ["a product photo on a plain background"], "threshold": 0.66},
}


def error_for(tree: dict[str, object]) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        build_config(tree)
    return raised.value


def with_ruleset(ruleset: dict[str, object], definitions: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "rule-definitions": DEFINITIONS if definitions is None else definitions,
        "paths": {"/up/**": {"upload-ruleset": ruleset}},
    }


def test_konifers_own_examples_load_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "konifer.conf"
    path.write_text(KONIFER_EXAMPLES)

    config = load_config(path)

    assert config.rules_required and config.api.rule_evaluation.enabled
    assert config.rule_definitions["blood-and-gore"].threshold == 0.72
    public = config.paths.resolve("/public/uploads/a/b").upload_ruleset
    assert public.reject_rules == (
        RuleReference(rule="blood-and-gore", violation_response="Upload rejected by content policy"),
    )
    assert config.paths.resolve("/users/42/avatar").upload_ruleset.default == "reject"
    catalog = config.paths.resolve("/catalog/products/shoe").upload_ruleset
    assert catalog.modify_rules[0].labels == {"content-type": "product-photo"}


def test_the_same_rules_load_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "konifer.toml"
    path.write_text(
        '[rule-definitions."blood-and-gore"]\nprompts = ["graphic visible blood"]\nthreshold = 0.72\n'
        '[paths."/public/**".upload-ruleset]\ndefault = "accept"\n'
        'reject-rules = [ { rule = "blood-and-gore", violation-response = "Rejected by policy" } ]\n'
        'modify-rules = [ { rule = "blood-and-gore", labels = { flagged = "yes" } } ]\n'
    )

    ruleset = load_config(path).paths.resolve("/public/x").upload_ruleset

    assert ruleset.reject_rules[0].violation_response == "Rejected by policy"
    assert ruleset.modify_rules[0].labels == {"flagged": "yes"}


def test_inert_configuration_needs_no_model() -> None:
    config = build_config(
        {
            "rule-definitions": {},
            "api": {"rule-evaluation": {"enabled": False}},
            "paths": {"/**": {"upload-ruleset": {"default": "accept", "accept-rules": [], "reject-rules": []}}},
        }
    )

    assert not config.rules_required
    assert config.paths.root.upload_ruleset == UploadRuleset()


def test_prompts_are_normalised_and_names_lower_cased() -> None:
    config = build_config({"rule-definitions": {"Blood": {"prompts": ["  Red BLOOD ", "red blood"], "threshold": 1}}})

    assert config.rule_definitions["blood"].prompts == ("red blood",)
    assert config.rule_definitions["blood"].threshold == 1.0


def test_rule_references_are_lower_cased() -> None:
    config = build_config(with_ruleset({"reject-rules": [{"rule": "Blood-And-Gore"}]}))

    assert config.paths.resolve("/up/a").upload_ruleset.reject_rules[0].rule == "blood-and-gore"


def test_rulesets_are_inherited_by_deeper_paths() -> None:
    tree = {
        "rule-definitions": DEFINITIONS,
        "paths": {
            "/up": {"upload-ruleset": {"reject-rules": [{"rule": "blood-and-gore"}]}},
            "/up/deeper/**": {"cache-control": {"enabled": True}},
        },
    }

    config = build_config(tree)

    assert config.paths.resolve("/up/deeper/x").upload_ruleset.reject_rules[0].rule == "blood-and-gore"


@pytest.mark.parametrize("older", ["label-rules", "edit-rules"])
def test_older_names_of_modify_rules_are_read_with_a_warning(older: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        config = build_config(with_ruleset({older: [{"rule": "product-photo", "labels": {"kind": "product"}}]}))

    assert config.paths.resolve("/up/a").upload_ruleset.modify_rules[0].labels == {"kind": "product"}
    assert any(older in record.getMessage() and "modify-rules" in record.getMessage() for record in caplog.records)


def test_two_spellings_of_modify_rules_at_one_path_are_refused() -> None:
    error = error_for(with_ruleset({"label-rules": [], "modify-rules": []}))

    assert error.key == "paths./up/**.upload-ruleset.label-rules"
    assert "keep only one" in error.message


def test_a_child_may_use_another_spelling_than_its_parent() -> None:
    tree = with_ruleset({"label-rules": [{"rule": "product-photo", "labels": {"a": "1"}}]})
    tree["paths"] = {  # type: ignore[assignment]
        **tree["paths"],  # type: ignore[dict-item]
        "/up/child/**": {"upload-ruleset": {"modify-rules": [{"rule": "product-photo", "labels": {"b": "2"}}]}},
    }

    config = build_config(tree)

    assert config.paths.resolve("/up/child/x").upload_ruleset.modify_rules[0].labels == {"b": "2"}


LONG = "x" * 33


@pytest.mark.parametrize(
    ("tree", "key", "message"),
    [
        pytest.param({"rule-definitions": {" ": {"prompts": ["a"], "threshold": 0.5}}}, "rule-definitions. ",
                     "must not be blank", id="blank-name"),
        pytest.param({"rule-definitions": {LONG: {"prompts": ["a"], "threshold": 0.5}}}, f"rule-definitions.{LONG}",
                     "at most 32 characters", id="long-name"),
        pytest.param(
            {"rule-definitions": {"Dup": {"prompts": ["a"], "threshold": 0.5},
                                  "dup": {"prompts": ["b"], "threshold": 1}}},
            "rule-definitions.dup", "already defined", id="names-equal-ignoring-case"),
        pytest.param({"rule-definitions": {"r": {"prompts": [], "threshold": 0.5}}}, "rule-definitions.r.prompts",
                     "at least one prompt", id="no-prompts"),
        pytest.param({"rule-definitions": {"r": {"prompts": [f"p{i}" for i in range(101)], "threshold": 0.5}}},
                     "rule-definitions.r.prompts", "at most 100", id="too-many-prompts"),
        pytest.param({"rule-definitions": {"r": {"prompts": ["a", "  "], "threshold": 0.5}}},
                     "rule-definitions.r.prompts", "must not be blank", id="blank-prompt"),
        pytest.param({"rule-definitions": {"r": {"prompts": ["a"], "threshold": 1.01}}},
                     "rule-definitions.r.threshold", "between 0.0 and 1.0", id="threshold-above-1"),
        pytest.param({"rule-definitions": {"r": {"prompts": ["a"], "threshold": -0.1}}},
                     "rule-definitions.r.threshold", "between 0.0 and 1.0", id="threshold-below-0"),
        pytest.param({"rule-definitions": {"r": {"prompts": ["a"], "threshold": "high"}}},
                     "rule-definitions.r.threshold", "expected a number", id="threshold-not-a-number"),
        pytest.param({"rule-definitions": {"r": {"prompts": ["a"], "threshold": 0.5, "prompt": "b"}}},
                     "rule-definitions.r.prompt", "did you mean 'prompts'", id="unknown-definition-key"),
        pytest.param(with_ruleset({"reject-rules": [{"rule": "nudity"}]}),
                     "paths./up/**.upload-ruleset.reject-rules[0].rule", "not defined in rule-definitions",
                     id="undefined-rule"),
        pytest.param(with_ruleset({"accept-rules": [{"rule": "product-photo"}],
                                   "reject-rules": [{"rule": "Product-Photo"}]}),
                     "paths./up/**.upload-ruleset.reject-rules", "in both accept-rules and reject-rules",
                     id="accept-and-reject"),
        pytest.param(with_ruleset({"reject-rules": [{"rule": "blood-and-gore", "violation-response": "x" * 200}]}),
                     "paths./up/**.upload-ruleset.reject-rules[0].violation-response", "shorter than 200",
                     id="long-violation-response"),
        pytest.param(with_ruleset({"modify-rules": [{"rule": "product-photo", "labels": {"k" * 129: "v"}}]}),
                     "paths./up/**.upload-ruleset.modify-rules[0].labels." + "k" * 129, "label name",
                     id="long-label-key"),
        pytest.param(with_ruleset({"modify-rules": [{"rule": "product-photo", "labels": {" ": "v"}}]}),
                     "paths./up/**.upload-ruleset.modify-rules[0].labels. ", "label name", id="blank-label-key"),
        pytest.param(with_ruleset({"modify-rules": [{"rule": "product-photo", "labels": {"k": "v" * 257}}]}),
                     "paths./up/**.upload-ruleset.modify-rules[0].labels.k", "label value", id="long-label-value"),
        pytest.param(with_ruleset({"modify-rules": [{"rule": "product-photo", "labels": {"k": " "}}]}),
                     "paths./up/**.upload-ruleset.modify-rules[0].labels.k", "label value", id="blank-label-value"),
        pytest.param(with_ruleset({"modify-rules": [{"rule": "product-photo", "labels": {"k": "a\nb"}}]}),
                     "paths./up/**.upload-ruleset.modify-rules[0].labels.k", "control characters",
                     id="control-character-in-label"),
        pytest.param(with_ruleset({"reject-rules": [{"violation-response": "x"}]}),
                     "paths./up/**.upload-ruleset.reject-rules[0].rule", "needs the name of a rule", id="no-rule"),
        pytest.param(with_ruleset({"reject-rules": {"rule": "x"}}),
                     "paths./up/**.upload-ruleset.reject-rules", "expected a list", id="rules-not-a-list"),
        pytest.param(with_ruleset({"label-rules": [{"rule": "nudity"}]}),
                     "paths./up/**.upload-ruleset.label-rules[0].rule", "not defined", id="error-under-older-name"),
        pytest.param({"api": {"rule-evaluation": {"enabled": "sometimes"}}}, "api.rule-evaluation.enabled",
                     "expected true or false", id="api-switch"),
        pytest.param({"api": {"rule-evaluations": {}}}, "api.rule-evaluations", "did you mean", id="api-typo"),
        pytest.param({"rule-inference": {"workers": 0}}, "rule-inference.workers", "at least 1", id="workers"),
    ],
)  # fmt: skip
def test_invalid_rules_settings_are_named_by_key(tree: dict[str, object], key: str, message: str) -> None:
    error = error_for(tree)

    assert error.key == key
    assert message in error.message


def test_the_model_directory_can_come_from_the_environment(tmp_path: Path) -> None:
    config = load_config(None, environ={"RULE_MODEL_DIRECTORY": str(tmp_path)})

    assert config.rule_inference.model_directories == (tmp_path,)
