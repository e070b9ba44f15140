"""Upload rules in the configuration: ``rule-definitions``, each path's ``upload-ruleset`` and ``api``.

Konifer's keys and limits (spec 06 section 1). Everything is checked at start-up, including what
Konifer only finds at upload time (a ruleset naming a rule nobody defined), so a typo in a rule
name stops the service instead of failing every upload of a path.
"""

from __future__ import annotations

import math
from collections.abc import Set
from pathlib import Path
from typing import Annotated, Final, Literal

import msgspec

from konifer_edge.config.decode import Decoded, NonBlank, Seconds, as_object, decode_section, describe, join_key
from konifer_edge.config.errors import ConfigError

RulesetDefault = Literal["accept", "reject"]
RULESET_DEFAULTS: Final[tuple[RulesetDefault, ...]] = ("accept", "reject")

MAX_RULE_NAME_LENGTH: Final = 32
MAX_PROMPTS: Final = 100
MAX_VIOLATION_RESPONSE_LENGTH: Final = 199  # Konifer checks `< 200`
MAX_LABEL_KEY_LENGTH: Final = 128
MAX_LABEL_VALUE_LENGTH: Final = 256

RULE_DEFINITIONS_KEY: Final = "rule-definitions"
RULE_INFERENCE_KEY: Final = "rule-inference"
API_KEY: Final = "api"
UPLOAD_RULESET_KEY: Final = "upload-ruleset"
MODIFY_RULES_KEY: Final = "modify-rules"
# Konifer's earlier names for `modify-rules`, read with a warning (see PATH_ALIASES in config/sections.py).
OLDER_MODIFY_RULES_KEYS: Final = ("label-rules", "edit-rules")


def normalise_prompt(prompt: str) -> str:
    """A prompt as it is scored and cached: trimmed and lower-cased."""
    return prompt.strip().lower()


class RuleDefinition(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    """Lower case: references are lower-cased before lookup."""
    prompts: tuple[str, ...]
    """Normalised (trimmed, lower case), in definition order, without repeats."""
    threshold: float


class RuleReference(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of ``accept-rules``, ``reject-rules`` or ``modify-rules``."""

    rule: str
    violation_response: str | None = None
    labels: dict[str, str] = msgspec.field(default_factory=dict)


class UploadRuleset(msgspec.Struct, frozen=True, kw_only=True):
    default: RulesetDefault = "accept"
    accept_rules: tuple[RuleReference, ...] = ()
    reject_rules: tuple[RuleReference, ...] = ()
    modify_rules: tuple[RuleReference, ...] = ()

    @property
    def deciding_rules(self) -> tuple[RuleReference, ...]:
        """The rules whose match decides: reject rules under ``accept``, accept rules under ``reject``."""
        return self.reject_rules if self.default == "accept" else self.accept_rules

    @property
    def evaluated_rules(self) -> tuple[RuleReference, ...]:
        """Every rule an upload is scored against; empty means the model is never called."""
        return (*self.deciding_rules, *self.modify_rules)


class RuleEvaluationApiSettings(Decoded, frozen=True, kw_only=True):
    enabled: bool = False


class ApiSettings(Decoded, frozen=True, kw_only=True):
    rule_evaluation: RuleEvaluationApiSettings = msgspec.field(default_factory=RuleEvaluationApiSettings)


MODEL_DIRECTORY_NAME: Final = "siglip2-base-patch16-224"
DEFAULT_MODEL_DIRECTORIES: Final[tuple[Path, ...]] = (
    Path("models") / MODEL_DIRECTORY_NAME,
    Path("..") / "models" / MODEL_DIRECTORY_NAME,
    Path("/app/models") / MODEL_DIRECTORY_NAME,
)


class RuleInferenceSettings(Decoded, frozen=True, kw_only=True):
    """Where the model lives and how much inference may run at once (konifer-edge's own keys)."""

    model_directory: NonBlank | None = None
    """``None`` searches Konifer's places: ./models/..., ../models/..., /app/models/..."""
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    """Inferences running at once; each uses ``threads`` cores."""
    threads: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    """Threads ONNX Runtime uses inside one inference."""
    queue_size: Annotated[int, msgspec.Meta(ge=0)] = 32
    """Inferences waiting for a worker at most; past that an upload is answered 503."""
    timeout: Seconds = 30.0
    """Seconds an upload waits for its inference before answering 503."""

    @property
    def model_directories(self) -> tuple[Path, ...]:
        if self.model_directory is not None:
            return (Path(self.model_directory),)
        return DEFAULT_MODEL_DIRECTORIES


def _threshold(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number between 0.0 and 1.0, got {describe(value)}")
    try:
        threshold = float(value)
    except ValueError:
        raise ValueError(f"expected a number between 0.0 and 1.0, got {describe(value)}") from None
    if not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"must be between 0.0 and 1.0 inclusive, got {describe(value)}")
    return threshold


Threshold = Annotated[float, msgspec.Meta(extra={"read": _threshold})]


class RuleDefinitionFile(Decoded, frozen=True, kw_only=True):
    prompts: tuple[str, ...] = ()
    threshold: Threshold | None = None


class RuleReferenceFile(Decoded, frozen=True, kw_only=True):
    rule: str | None = None
    violation_response: str | None = None
    labels: dict[str, str | None] = msgspec.field(default_factory=dict)


RuleReferences = Annotated[
    tuple[RuleReferenceFile, ...], msgspec.Meta(extra={"expected": "a list of { rule = ... } objects"})
]


class UploadRulesetFile(Decoded, frozen=True, kw_only=True):
    default: RulesetDefault = "accept"
    accept_rules: RuleReferences = ()
    reject_rules: RuleReferences = ()
    modify_rules: RuleReferences = ()


def read_rule_definitions(raw: object) -> dict[str, RuleDefinition]:
    definitions: dict[str, RuleDefinition] = {}
    written_as: dict[str, str] = {}
    for written, value in as_object(raw, RULE_DEFINITIONS_KEY).items():
        key = join_key(RULE_DEFINITIONS_KEY, written)
        name = _rule_name(written, key)
        if name in definitions:
            raise ConfigError(key, f"the rule '{written_as[name]}' is already defined (names ignore case)")
        definitions[name] = _definition(decode_section(value, RuleDefinitionFile, key), name, key)
        written_as[name] = written
    return definitions


def _rule_name(written: str, key: str) -> str:
    name = written.strip().lower()
    if not name:
        raise ConfigError(key, "a rule name must not be blank")
    if len(name) > MAX_RULE_NAME_LENGTH:
        raise ConfigError(key, f"a rule name may have at most {MAX_RULE_NAME_LENGTH} characters, got {len(name)}")
    return name


def _definition(written: RuleDefinitionFile, name: str, key: str) -> RuleDefinition:
    prompts_key = join_key(key, "prompts")
    if not written.prompts:
        raise ConfigError(prompts_key, "a rule needs at least one prompt")
    if len(written.prompts) > MAX_PROMPTS:
        raise ConfigError(prompts_key, f"at most {MAX_PROMPTS} prompts, got {len(written.prompts)}")
    if any(not prompt.strip() for prompt in written.prompts):
        raise ConfigError(prompts_key, "a prompt must not be blank")
    if written.threshold is None:
        raise ConfigError(join_key(key, "threshold"), "a rule needs a threshold between 0.0 and 1.0")
    prompts = tuple(dict.fromkeys(normalise_prompt(prompt) for prompt in written.prompts))
    return RuleDefinition(name=name, prompts=prompts, threshold=written.threshold)


def read_upload_ruleset(written: UploadRulesetFile, key: str, rule_names: Set[str]) -> UploadRuleset:
    """A path's decoded ``upload-ruleset``, each reference checked against the defined rules."""
    ruleset = UploadRuleset(
        default=written.default,
        accept_rules=_references(written.accept_rules, join_key(key, "accept-rules"), rule_names),
        reject_rules=_references(written.reject_rules, join_key(key, "reject-rules"), rule_names),
        modify_rules=_references(written.modify_rules, join_key(key, MODIFY_RULES_KEY), rule_names),
    )
    both = {reference.rule for reference in ruleset.accept_rules} & {r.rule for r in ruleset.reject_rules}
    if both:
        raise ConfigError(
            join_key(key, "reject-rules"),
            f"the rule '{sorted(both)[0]}' is in both accept-rules and reject-rules",
        )
    return ruleset


def _references(written: tuple[RuleReferenceFile, ...], key: str, rule_names: Set[str]) -> tuple[RuleReference, ...]:
    return tuple(_reference(entry, f"{key}[{index}]", rule_names) for index, entry in enumerate(written))


def _reference(written: RuleReferenceFile, key: str, rule_names: Set[str]) -> RuleReference:
    if written.rule is None or not written.rule.strip():
        raise ConfigError(join_key(key, "rule"), "every entry needs the name of a rule")
    rule = written.rule.strip().lower()
    if rule not in rule_names:
        defined = ", ".join(sorted(rule_names)) or "none"
        raise ConfigError(
            join_key(key, "rule"), f"'{written.rule}' is not defined in {RULE_DEFINITIONS_KEY} (defined: {defined})"
        )
    response = written.violation_response
    if response is not None and len(response) > MAX_VIOLATION_RESPONSE_LENGTH:
        raise ConfigError(
            join_key(key, "violation-response"),
            f"must be shorter than {MAX_VIOLATION_RESPONSE_LENGTH + 1} characters, got {len(response)}",
        )
    labels = _labels(written.labels, join_key(key, "labels"))
    return RuleReference(rule=rule, violation_response=response, labels=labels)


def _labels(written: dict[str, str | None], key: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for name, value in written.items():
        label_key = join_key(key, name)
        if not name.strip() or len(name) > MAX_LABEL_KEY_LENGTH:
            raise ConfigError(label_key, f"a label name must be 1 to {MAX_LABEL_KEY_LENGTH} characters and not blank")
        if value is None or not value.strip() or len(value) > MAX_LABEL_VALUE_LENGTH:
            raise ConfigError(
                label_key, f"a label value must be 1 to {MAX_LABEL_VALUE_LENGTH} characters and not blank"
            )
        if _has_control_character(name) or _has_control_character(value):
            # The store would refuse such a label on every upload the rule matches.
            raise ConfigError(label_key, "a label must not contain control characters")
        labels[name] = value
    return labels


def _has_control_character(text: str) -> bool:
    return any(ord(character) < 0x20 or ord(character) == 0x7F for character in text)


def read_api(raw: object) -> ApiSettings:
    return decode_section(raw, ApiSettings, API_KEY)


def read_rule_inference(raw: object) -> RuleInferenceSettings:
    return decode_section(raw, RuleInferenceSettings, RULE_INFERENCE_KEY)
