"""Every configuration example in docs/configuration.md loads as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from konifer_edge.config import load_config

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
SUFFIXES = {"toml": ".toml", "hocon": ".conf"}


def examples() -> list[tuple[str, str]]:
    blocks = re.findall(r"```(toml|hocon)\n(.*?)```", DOCUMENT.read_text(), flags=re.DOTALL)
    return [(language, text) for language, text in blocks]


def test_the_document_has_examples_in_both_formats() -> None:
    languages = [language for language, _ in examples()]
    assert languages.count("toml") >= 3
    assert languages.count("hocon") >= 2


@pytest.mark.parametrize(("language", "text"), examples())
def test_documented_example_loads(tmp_path: Path, language: str, text: str) -> None:
    path = tmp_path / f"example{SUFFIXES[language]}"
    path.write_text(text)

    config = load_config(path, {"URL_SIGNING_SECRET_KEY": "documented"})

    assert config.paths.resolve("/").pattern == "/**"
