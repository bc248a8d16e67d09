"""The README documents every setting and both commands (datasette's test_docs idea)."""

from __future__ import annotations

from pathlib import Path

from hxchat.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    for name in Settings.model_fields:
        assert f"HXCHAT_{name.upper()}" in README, name


def test_the_two_commands_come_first() -> None:
    assert README.index("make run") < README.index("## Configuration")
    assert "make test" in README


def test_changelog_names_issues() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "#3" in changelog
