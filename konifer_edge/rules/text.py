"""What the text model reads for a prompt (spec 06 section 2, text side)."""

from __future__ import annotations

from typing import Final

from konifer_edge.config.rules import normalise_prompt

PHOTO_PREFIX: Final = "this is a photo of "
SEQUENCE_LENGTH: Final = 64
"""Tokens per prompt: SigLIP2's text tower was trained on exactly 64, padded or truncated."""

__all__ = ["PHOTO_PREFIX", "SEQUENCE_LENGTH", "model_text", "normalise_prompt"]


def model_text(prompt: str) -> str:
    """The sentence embedded for a prompt: normalised, with SigLIP's caption prefix unless it has it."""
    text = normalise_prompt(prompt)
    return text if text.startswith(PHOTO_PREFIX) else PHOTO_PREFIX + text
