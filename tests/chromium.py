"""The system Chromium for browser tests: where it is, how it is started, and a skip
(a failure on CI, where every service must run) when it is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES

CHROMIUM = os.environ.get("HXCHAT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> str:
    """The Chromium binary, or a skip (a failure when the CI asks for every service)."""
    if Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    reason = f"no Chromium at {CHROMIUM} (set HXCHAT_TEST_CHROMIUM)"
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason}, but HXCHAT_TEST_REQUIRE_SERVICES=1")
    pytest.skip(reason)
