"""Settings and start-up: a bad value stops `hxchat serve` with one line naming it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from hxchat.config import load_settings
from hxchat.errors import ConfigError
from tests.servers import run_hxchat


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"model": "claude:x"}, "HXCHAT_MODEL"),
        ({"model": "openai:"}, "HXCHAT_MODEL"),
        ({"database_url": "mysql://x"}, "HXCHAT_DATABASE_URL"),
        ({"redis_url": "http://x"}, "HXCHAT_REDIS_URL"),
        ({"searxng_url": "nope"}, "HXCHAT_SEARXNG_URL"),
        ({"search": "bing"}, "HXCHAT_SEARCH"),
        ({"echo_delay_ms": -1}, "HXCHAT_ECHO_DELAY_MS"),
        ({"max_message_chars": 0}, "HXCHAT_MAX_MESSAGE_CHARS"),
        ({"files_url": "ftp://host/files"}, "HXCHAT_FILES_URL"),
        ({"max_file_mb": 0}, "HXCHAT_MAX_FILE_MB"),
        ({"max_files_per_message": 0}, "HXCHAT_MAX_FILES_PER_MESSAGE"),
        ({"titles": "llm"}, "HXCHAT_TITLES"),
        ({"share": "everyone"}, "HXCHAT_SHARE"),
    ],
)
def test_bad_values_name_their_variable(overrides: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    assert str(info.value).startswith(f"{variable}: ")
    assert "\n" not in str(info.value)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.model == "echo"
    assert settings.echo_delay_ms == 30
    assert settings.database_url == "sqlite+aiosqlite:///./hxchat.db"
    assert settings.redis_url is None
    assert settings.max_message_chars == 16_000


def test_the_files_and_library_settings_by_their_names_and_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    assert settings.files_url == "file:./hxchat-files"
    assert (settings.max_file_mb, settings.max_files_per_message) == (20, 10)
    assert settings.titles == "model"
    assert settings.share_mode == "anyone"  # auth mode none
    for name, value in (
        ("HXCHAT_FILES_URL", "s3://bucket/prefix"),
        ("HXCHAT_MAX_FILE_MB", "3"),
        ("HXCHAT_MAX_FILES_PER_MESSAGE", "2"),
        ("HXCHAT_TITLES", "first-message"),
        ("HXCHAT_SHARE", "off"),
    ):
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.files_url == "s3://bucket/prefix"
    assert (settings.max_file_mb, settings.max_files_per_message) == (3, 2)
    assert (settings.titles, settings.share_mode) == ("first-message", "off")


def test_dotenv_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("HXCHAT_ECHO_DELAY_MS=7\n")
    assert load_settings().echo_delay_ms == 7


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_hxchat(tmp_path, env, *args)


@pytest.mark.parametrize(
    ("env", "args", "variable"),
    [
        ({"HXCHAT_MODEL": "nonsense:x"}, (), "HXCHAT_MODEL"),
        (
            {"HXCHAT_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1:1/db"},
            (),
            "HXCHAT_DATABASE_URL",
        ),
        ({"HXCHAT_REDIS_URL": "redis://127.0.0.1:1/0"}, (), "HXCHAT_REDIS_URL"),
        ({}, ("--workers", "2"), "HXCHAT_REDIS_URL"),
        ({"HXCHAT_MODEL": "openai:gpt-4o-mini"}, (), "OPENAI_API_KEY"),
        ({"HXCHAT_MODEL": "gemini:gemini-2.5-flash"}, (), "GOOGLE_API_KEY"),
        ({"HXCHAT_SEARCH": "searxng"}, (), "HXCHAT_SEARXNG_URL"),
    ],
)
def test_serve_refuses_bad_settings_in_one_line(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...], variable: str
) -> None:
    result = run_cli(tmp_path, "serve", "--port", "1", *args, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"hxchat: {variable}: ")
    assert "Traceback" not in result.stderr


def test_db_upgrade_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    result = run_cli(tmp_path, "db", "upgrade", HXCHAT_DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_the_accounts_settings() -> None:
    settings = load_settings()
    assert (settings.auth, settings.signup, settings.accounts) == ("none", "closed", False)
    assert (settings.session_days, settings.rate_limit, settings.max_answers_per_user) == (
        30,
        "30/minute",
        3,
    )
    assert (settings.auth_header, settings.trusted_proxies, settings.oidc_scopes) == (
        "Remote-User",
        "127.0.0.1/32,::1/128",
        "openid email profile",
    )
    assert settings.oidc_allowed_domains is None and settings.models is None
    assert settings.vision_models is None
    both = load_settings(
        auth=" OIDC , password ", oidc_issuer="https://id.example/", oidc_client_id="hx"
    )
    assert both.auth == "password,oidc" and both.auth_modes == {"password", "oidc"}
    assert both.oidc_issuer == "https://id.example"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"auth": "password,header"}, "HXCHAT_AUTH"),
        ({"auth": "oidc", "oidc_issuer": "https://id.example"}, "HXCHAT_OIDC_CLIENT_ID"),
        (
            {"auth": "oidc", "oidc_issuer": "id.example", "oidc_client_id": "x"},
            "HXCHAT_OIDC_ISSUER",
        ),
        ({"trusted_proxies": "127.0.0.1/32,banana"}, "HXCHAT_TRUSTED_PROXIES"),
        ({"rate_limit": "30 a minute"}, "HXCHAT_RATE_LIMIT"),
        ({"signup": "maybe"}, "HXCHAT_SIGNUP"),
        ({"session_days": 0}, "HXCHAT_SESSION_DAYS"),
        ({"max_answers_per_user": 0}, "HXCHAT_MAX_ANSWERS_PER_USER"),
        ({"auth_header": "Remote User"}, "HXCHAT_AUTH_HEADER"),
    ],
)
def test_bad_accounts_settings_name_their_variable(
    overrides: dict[str, object], variable: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**overrides)
    assert str(info.value).startswith(f"{variable}: ")
    assert "\n" not in str(info.value)
