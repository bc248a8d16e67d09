"""The README documents every setting and both commands (datasette's test_docs idea)."""

from __future__ import annotations

import re
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


def test_every_change_in_the_changelog_names_its_issue() -> None:
    """Each change is listed under a `###` heading that ends with its issue, `(#N)`."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^### (.+)$", changelog, flags=re.MULTILINE)
    assert headings, "the changelog lists no changes"
    assert not [h for h in headings if not re.search(r"\(#\d+\)$", h)], headings
    under_a_heading = False
    for line in changelog.splitlines():
        if line.startswith("#"):
            under_a_heading = line.startswith("### ")
        elif line.startswith("- "):
            assert under_a_heading, f"a change outside an issue's section: {line}"
