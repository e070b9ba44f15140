"""Limits on what clients may say about an asset (spec 02), checked before anything is stored."""

from __future__ import annotations

from konifer_edge.domain.errors import BadRequest
from konifer_edge.domain.models import AssetMetadataInput

MAX_ALT_LENGTH = 125
MAX_LABELS = 50
MAX_LABEL_KEY_LENGTH = 128
MAX_LABEL_VALUE_LENGTH = 256
MAX_TAGS = 50
MAX_TAG_LENGTH = 256


def validate_metadata(metadata: AssetMetadataInput) -> AssetMetadataInput:
    if metadata.alt is not None and len(metadata.alt) > MAX_ALT_LENGTH:
        raise BadRequest(
            f"alt is {len(metadata.alt)} characters long; at most {MAX_ALT_LENGTH} are allowed",
            reason="invalid_alt",
        )
    if metadata.alt is not None and _has_control_character(metadata.alt):
        # As for labels and tags; a NUL would otherwise reach PostgreSQL, which cannot store one.
        raise BadRequest("alt contains control characters", reason="invalid_alt")
    _validate_labels(metadata.labels)
    _validate_tags(metadata.tags)
    return metadata


def _validate_labels(labels: dict[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise BadRequest(f"{len(labels)} labels given; at most {MAX_LABELS} are allowed", reason="invalid_labels")
    for key, value in labels.items():
        if not key:
            raise BadRequest("A label key must not be empty", reason="invalid_labels")
        if len(key) > MAX_LABEL_KEY_LENGTH:
            raise BadRequest(
                f"Label key '{key[:32]}...' is longer than {MAX_LABEL_KEY_LENGTH} characters",
                reason="invalid_labels",
            )
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            raise BadRequest(
                f"The value of label '{key}' is longer than {MAX_LABEL_VALUE_LENGTH} characters",
                reason="invalid_labels",
            )
        if _has_control_character(key) or _has_control_character(value):
            raise BadRequest(f"Label '{key!r}' contains control characters", reason="invalid_labels")


def _validate_tags(tags: list[str]) -> None:
    if len(tags) > MAX_TAGS:
        raise BadRequest(f"{len(tags)} tags given; at most {MAX_TAGS} are allowed", reason="invalid_tags")
    for tag in tags:
        if len(tag) > MAX_TAG_LENGTH:
            raise BadRequest(f"Tag '{tag[:32]}...' is longer than {MAX_TAG_LENGTH} characters", reason="invalid_tags")
        if _has_control_character(tag):
            raise BadRequest(f"Tag {tag!r} contains control characters", reason="invalid_tags")


def _has_control_character(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)
