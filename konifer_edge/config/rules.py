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

from konifer_edge.config.decode import NonBlank, Seconds, decode_section
from konifer_edge.config.errors import ConfigError
from konifer_edge.config.reader import Section, describe

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
# Konifer's earlier names for `modify-rules`, read with a warning (see config/tree.py).
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


class RuleEvaluationApiSettings(msgspec.Struct, frozen=True, kw_only=True, rename="kebab", forbid_unknown_fields=True):
    enabled: bool = False


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True, rename="kebab", forbid_unknown_fields=True):
    rule_evaluation: RuleEvaluationApiSettings = msgspec.field(default_factory=RuleEvaluationApiSettings)


MODEL_DIRECTORY_NAME: Final = "siglip2-base-patch16-224"
DEFAULT_MODEL_DIRECTORIES: Final[tuple[Path, ...]] = (
    Path("models") / MODEL_DIRECTORY_NAME,
    Path("..") / "models" / MODEL_DIRECTORY_NAME,
    Path("/app/models") / MODEL_DIRECTORY_NAME,
)


class RuleInferenceSettings(msgspec.Struct, frozen=True, kw_only=True, rename="kebab", forbid_unknown_fields=True):
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


def read_rule_definitions(section: Section) -> dict[str, RuleDefinition]:
    definitions: dict[str, RuleDefinition] = {}
    written_as: dict[str, str] = {}
    for written in section.names():
        key = section.key_of(written)
        name = _rule_name(written, key)
        if name in definitions:
            raise ConfigError(key, f"the rule '{written_as[name]}' is already defined (names ignore case)")
        definitions[name] = _read_definition(Section.of(section.raw(written), key), name)
        written_as[name] = written
    return definitions


def _rule_name(written: str, key: str) -> str:
    name = written.strip().lower()
    if not name:
        raise ConfigError(key, "a rule name must not be blank")
    if len(name) > MAX_RULE_NAME_LENGTH:
        raise ConfigError(key, f"a rule name may have at most {MAX_RULE_NAME_LENGTH} characters, got {len(name)}")
    return name


def _read_definition(section: Section, name: str) -> RuleDefinition:
    written = section.string_list("prompts")
    if not written:
        raise ConfigError(section.key_of("prompts"), "a rule needs at least one prompt")
    if len(written) > MAX_PROMPTS:
        raise ConfigError(section.key_of("prompts"), f"at most {MAX_PROMPTS} prompts, got {len(written)}")
    if any(not prompt.strip() for prompt in written):
        raise ConfigError(section.key_of("prompts"), "a prompt must not be blank")
    if not section.has("threshold"):
        raise ConfigError(section.key_of("threshold"), "a rule needs a threshold between 0.0 and 1.0")
    threshold = read_threshold(section.raw("threshold"), section.key_of("threshold"))
    section.finish()
    prompts = tuple(dict.fromkeys(normalise_prompt(prompt) for prompt in written))
    return RuleDefinition(name=name, prompts=prompts, threshold=threshold)


def read_threshold(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(key, f"expected a number between 0.0 and 1.0, got {describe(value)}")
    try:
        threshold = float(value)
    except ValueError:
        raise ConfigError(key, f"expected a number between 0.0 and 1.0, got {describe(value)}") from None
    if not math.isfinite(threshold) or not 0.0 <= threshold <= 1.0:
        raise ConfigError(key, f"must be between 0.0 and 1.0 inclusive, got {describe(value)}")
    return threshold


def read_upload_ruleset(section: Section, rule_names: Set[str]) -> UploadRuleset:
    ruleset = UploadRuleset(
        default=section.choice("default", RULESET_DEFAULTS, "accept"),
        accept_rules=_read_references(section, "accept-rules", rule_names),
        reject_rules=_read_references(section, "reject-rules", rule_names),
        modify_rules=_read_references(section, MODIFY_RULES_KEY, rule_names),
    )
    section.finish()
    both = {reference.rule for reference in ruleset.accept_rules} & {r.rule for r in ruleset.reject_rules}
    if both:
        raise ConfigError(
            section.key_of("reject-rules"),
            f"the rule '{sorted(both)[0]}' is in both accept-rules and reject-rules",
        )
    return ruleset


def _read_references(section: Section, name: str, rule_names: Set[str]) -> tuple[RuleReference, ...]:
    raw = section.raw(name)
    if raw is None:
        return ()
    if not isinstance(raw, list | tuple):
        raise ConfigError(section.key_of(name), f"expected a list of {{ rule = ... }} objects, got {describe(raw)}")
    return tuple(
        _read_reference(Section.of(item, f"{section.key_of(name)}[{index}]"), rule_names)
        for index, item in enumerate(raw)
    )


def _read_reference(section: Section, rule_names: Set[str]) -> RuleReference:
    written = section.optional_string("rule")
    if written is None or not written.strip():
        raise ConfigError(section.key_of("rule"), "every entry needs the name of a rule")
    rule = written.strip().lower()
    if rule not in rule_names:
        defined = ", ".join(sorted(rule_names)) or "none"
        raise ConfigError(
            section.key_of("rule"), f"'{written}' is not defined in {RULE_DEFINITIONS_KEY} (defined: {defined})"
        )
    response = section.optional_string("violation-response")
    if response is not None and len(response) > MAX_VIOLATION_RESPONSE_LENGTH:
        raise ConfigError(
            section.key_of("violation-response"),
            f"must be shorter than {MAX_VIOLATION_RESPONSE_LENGTH + 1} characters, got {len(response)}",
        )
    labels = _read_labels(section.section("labels"))
    section.finish()
    return RuleReference(rule=rule, violation_response=response, labels=labels)


def _read_labels(section: Section) -> dict[str, str]:
    labels: dict[str, str] = {}
    for name in section.names():
        key = section.key_of(name)
        if not name.strip() or len(name) > MAX_LABEL_KEY_LENGTH:
            raise ConfigError(key, f"a label name must be 1 to {MAX_LABEL_KEY_LENGTH} characters and not blank")
        value = section.optional_string(name)
        if value is None or not value.strip() or len(value) > MAX_LABEL_VALUE_LENGTH:
            raise ConfigError(key, f"a label value must be 1 to {MAX_LABEL_VALUE_LENGTH} characters and not blank")
        if _has_control_character(name) or _has_control_character(value):
            # The store would refuse such a label on every upload the rule matches.
            raise ConfigError(key, "a label must not contain control characters")
        labels[name] = value
    return labels


def _has_control_character(text: str) -> bool:
    return any(ord(character) < 0x20 or ord(character) == 0x7F for character in text)


def read_api(raw: object) -> ApiSettings:
    return decode_section(raw, ApiSettings, API_KEY)


def read_rule_inference(raw: object) -> RuleInferenceSettings:
    return decode_section(raw, RuleInferenceSettings, RULE_INFERENCE_KEY)
