"""The docs keep up with the code (datasette's test_docs idea).

The README documents every setting and both commands; docs/api.md documents every
route of the app, every event kind of the JSON stream, every wire event of the
browser stream and every setting. A new route, event or setting fails here until it
is written down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Mount

from hxchat.app import create_app
from hxchat.config import Settings
from hxchat.domain import EventKind
from hxchat.web.wire import BrowserEvent

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
API = (ROOT / "docs" / "api.md").read_text()
AUTOMATIC_METHODS = {"HEAD", "OPTIONS"}  # added by the framework, never on their own

# The browser stream's events, as the stream and the templates take them.
WIRE_EVENTS = [event.value for event in BrowserEvent]


def env_names() -> list[str]:
    return [f"HXCHAT_{name.upper()}" for name in Settings.model_fields]


def _walk(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers and mounts."""
    for route in routes:
        context = getattr(route, "include_context", None)
        if context is not None:  # a router FastAPI keeps whole instead of copying its routes
            yield from _walk(context.included_router.routes, prefix + context.prefix)
        elif isinstance(route, Mount):
            yield "GET", f"{prefix}{route.path}/{{path}}"
        else:
            for method in sorted(getattr(route, "methods", None) or ()):
                if method not in AUTOMATIC_METHODS:
                    yield method, prefix + route.path


def app_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///unused.db"))
    routes = sorted(set(_walk(app.routes)))
    # If a FastAPI release hides routes from this walk, say so instead of passing.
    schema_paths = set(app.openapi()["paths"])
    assert schema_paths <= {path for _, path in routes}, schema_paths
    return routes


def section(text: str, heading: str) -> str:
    """The text under `heading` (a Markdown heading line) up to the next heading of the
    same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.MULTILINE)
    assert match, f"no heading {heading!r}"
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


# -- README --------------------------------------------------------------------------


def test_every_setting_is_in_the_readme() -> None:
    for name in env_names():
        assert name in README, name


def test_the_two_commands_come_first() -> None:
    assert README.index("make run") < README.index("## Configuration")
    assert "make test" in README


def test_the_readme_links_the_docs() -> None:
    for page in ("docs/architecture.md", "docs/api.md", "docs/deployment.md"):
        assert f"]({page})" in README, page
        assert (ROOT / page).is_file(), page


def test_the_changelog_keeps_its_shape_and_every_change_names_its_issue() -> None:
    """Keep a Changelog: versions as `## [...]`, changes under its six kinds, and each
    change says which issue it belongs to, `(#N)`."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog\n")
    versions = re.findall(r"^## (.+)$", changelog, flags=re.MULTILINE)
    assert versions and versions[0] == "[Unreleased]", versions
    kinds = re.findall(r"^### (.+)$", changelog, flags=re.MULTILINE)
    allowed = {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}
    assert kinds and set(kinds) <= allowed, kinds
    changes = re.split(r"^- ", changelog, flags=re.MULTILINE)[1:]
    assert changes, "the changelog lists no changes"
    unnamed = [c.split("\n")[0] for c in changes if not re.search(r"#\d+", c)]
    assert not unnamed, f"changes that name no issue: {unnamed}"


# -- docs/api.md ---------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), app_routes())
def test_every_route_is_in_the_api_docs(method: str, path: str) -> None:
    assert f"`{method} {path}`" in section(API, "Routes"), f"{method} {path}"


def test_the_route_walk_finds_the_routes_it_should() -> None:
    routes = app_routes()
    assert ("POST", "/api/conversations/{conversation_id}/messages") in routes
    assert ("GET", "/generations/{generation_id}/stream") in routes
    assert ("GET", "/static/{path}") in routes


@pytest.mark.parametrize("kind", [kind.value for kind in EventKind])
def test_every_event_kind_is_in_the_api_docs(kind: str) -> None:
    assert f"| `{kind}` |" in section(API, "Event kinds"), kind


@pytest.mark.parametrize("name", WIRE_EVENTS)
def test_every_browser_wire_event_is_in_the_api_docs(name: str) -> None:
    assert f"`{name}`" in section(API, "Wire events"), name


@pytest.mark.parametrize("name", env_names())
def test_every_setting_is_in_the_api_docs(name: str) -> None:
    assert f"| `{name}` |" in section(API, "Settings"), name


def test_the_api_docs_name_both_commands_and_the_error_shape() -> None:
    commands = section(API, "Commands")
    assert "hxchat serve" in commands and "hxchat db upgrade" in commands
    assert '{"detail": ' in section(API, "Errors")


def test_every_test_the_architecture_names_exists() -> None:
    """docs/architecture.md pins each invariant to tests by `file::name`: a renamed or
    removed test must take its line in the docs with it."""
    architecture = (ROOT / "docs/architecture.md").read_text()
    named = set(re.findall(r"(tests/[\w/]+\.py)::(\w+)", architecture))
    assert len(named) >= 10, named
    missing = [
        f"{path}::{name}"
        for path, name in sorted(named)
        if not re.search(rf"^(async )?def {name}\(", (ROOT / path).read_text(), re.MULTILINE)
    ]
    assert not missing, missing


def test_no_module_is_over_400_lines() -> None:
    """One job per module (docs/architecture.md): a module past 400 lines does two."""
    long = {
        str(path.relative_to(ROOT)): lines
        for path in (ROOT / "src" / "hxchat").rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > 400
    }
    assert not long, long


def test_no_test_module_imports_another() -> None:
    """Shared fakes and helpers live in helper modules (tests/helpers.py and friends),
    never in a test module or a conftest that others import."""
    pattern = re.compile(r"^\s*(?:from|import) tests\.(?:[\w.]+\.)?(?:test_\w+|conftest)\b", re.M)
    importing = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "tests").rglob("*.py")
        if pattern.search(path.read_text())
    ]
    assert not importing, importing
