"""Settings: one pydantic-settings class, read from `HXCHAT_*` variables and `.env`.

No I/O beyond reading the environment. `load_settings` turns a validation error into
a `ConfigError` whose message names the variable, so `hxchat serve` can print one line.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Literal
from urllib.parse import urlsplit

import limits
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hxchat.errors import ConfigError
from hxchat.providers.registry import check_model, find_provider

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer in Markdown. When a question needs current "
    "or factual information, search the web first and base the answer on what you find."
)


AUTH_MODES = (
    {"none"},
    {"password"},
    {"oidc"},
    {"header"},
    {"password", "oidc"},
)


MODE_ORDER = ("none", "password", "oidc", "header")


class Settings(BaseSettings):
    """Everything hxchat can be told; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="HXCHAT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    # -- the public settings, documented in the README --
    model: str = "echo"
    models: str | None = None
    vision_models: str | None = None
    echo_delay_ms: int = Field(default=30, ge=0, le=60_000)
    search: Literal["auto", "duckduckgo", "searxng", "none"] = "auto"
    searxng_url: str | None = None
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    database_url: str = "sqlite+aiosqlite:///./hxchat.db"
    redis_url: str | None = None
    secret_key: SecretStr | None = None
    max_message_chars: int = Field(default=16_000, ge=1)
    # Who titles a conversation after its first answer (#12): its model, or the core
    # (the first message, shortened).
    titles: Literal["model", "first-message"] = "model"
    max_import_mb: int = Field(default=32, ge=1, le=4_096)

    # -- tuning, documented in the README --
    first_token_timeout: float = Field(default=60.0, gt=0)
    token_timeout: float = Field(default=30.0, gt=0)
    history_budget_chars: int = Field(default=60_000, ge=1_000)
    max_tool_rounds: int = Field(default=3, ge=0, le=10)
    max_answer_chars: int = Field(default=200_000, ge=1_000)
    stream_lifetime: float = Field(default=300.0, gt=0)
    max_concurrent_generations: int = Field(default=1_000, ge=1)

    # -- accounts and limits, documented in the README --
    auth: str = "none"
    signup: Literal["open", "closed"] = "closed"
    session_days: int = Field(default=30, ge=1, le=3_650)
    rate_limit: str = "30/minute"
    max_answers_per_user: int = Field(default=3, ge=1)
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid email profile"
    oidc_allowed_domains: str | None = None
    auth_header: str = "Remote-User"
    trusted_proxies: str = "127.0.0.1/32,::1/128"

    # -- the library, documented in the README --
    share: Literal["anyone", "users", "off"] | None = None  # None: by the auth mode

    @field_validator("auth")
    @classmethod
    def _auth_modes(cls, value: str) -> str:
        modes = {part.strip().lower() for part in value.split(",") if part.strip()}
        if modes not in AUTH_MODES:
            raise ValueError("use none, password, oidc, header, or password,oidc")
        return ",".join(sorted(modes, key=MODE_ORDER.index))

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError("use a number per period, e.g. 30/minute or 500/hour") from None
        return value.strip()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            try:
                ipaddress.ip_network(part.strip())
            except ValueError:
                raise ValueError(
                    f"{part.strip()!r} is not a network; use CIDRs like 10.0.0.0/8,::1/128"
                ) from None
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("use the issuer's URL, e.g. https://auth.example.com/realms/team")
        return value.strip().rstrip("/")

    @field_validator("auth_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        name = value.strip()
        if not name or not all(c.isalnum() or c == "-" for c in name):
            raise ValueError("use a header name such as Remote-User")
        return name

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        return check_model(value.strip())  # against the providers' registry

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: str | None) -> str | None:
        specs = _comma_list(value)
        for spec in specs:
            check_model(spec, every=True)
        return ",".join(specs) or None

    @field_validator("vision_models")
    @classmethod
    def _vision_patterns(cls, value: str | None) -> str | None:
        patterns = _comma_list(value)
        for pattern in patterns:
            if find_provider(pattern) is None:
                raise ValueError(
                    f"{pattern!r} names no provider; use model ids or patterns such as "
                    "openai:gpt-4o*,ollama:llava*"
                )
        return ",".join(patterns) or None

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
            raise ValueError(
                "use sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user@host/db"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("redis", "rediss", "unix") or not (parts.hostname or parts.path):
            raise ValueError("use redis://host:6379/0 (or rediss:// for TLS)")
        return value.strip()

    @field_validator("searxng_url")
    @classmethod
    def _searxng_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("use the base URL of a SearXNG instance, e.g. http://localhost:8888")
        return value.strip().rstrip("/")

    @property
    def auth_modes(self) -> frozenset[str]:
        """The sign-in modes: {"none"}, or some of "password", "oidc", "header"."""
        return frozenset(self.auth.split(","))

    @property
    def accounts(self) -> bool:
        """True when people sign in (every mode but `none`)."""
        return self.auth != "none"

    @property
    def share_mode(self) -> str:
        """Who may open a shared link (`HXCHAT_SHARE`): `anyone` by default in auth mode
        `none`, `users` (signed-in users) otherwise; `off` removes sharing."""
        if self.share is not None:
            return self.share
        return "users" if self.accounts else "anyone"

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """Header mode: the networks whose TCP peers may name the user."""
        return tuple(ipaddress.ip_network(p.strip()) for p in self.trusted_proxies.split(","))

    @property
    def allowed_domains(self) -> frozenset[str]:
        """OpenID Connect: the e-mail domains that may sign in (empty: any)."""
        parts = (self.oidc_allowed_domains or "").split(",")
        return frozenset(p.strip().lower().lstrip("@") for p in parts if p.strip())

    @property
    def model_specs(self) -> tuple[str, ...]:
        """The models offered: `HXCHAT_MODEL` (the default) first, then those of
        `HXCHAT_MODELS` (`openai:*` and `ollama:*` stand for what their endpoint lists)."""
        return tuple(dict.fromkeys((self.model, *_comma_list(self.models))))

    @property
    def vision_patterns(self) -> tuple[str, ...]:
        """`HXCHAT_VISION_MODELS`: shell-style patterns of the model ids that take images."""
        return tuple(_comma_list(self.vision_models))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def echo_delay(self) -> float:
        return self.echo_delay_ms / 1000


def _comma_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; a bad value raises `ConfigError` naming its variable."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "settings"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"HXCHAT_{field.upper()}", message) from None
    if settings.search == "searxng" and settings.searxng_url is None:
        raise ConfigError(
            "HXCHAT_SEARXNG_URL",
            "HXCHAT_SEARCH=searxng needs the base URL of a SearXNG instance, "
            "e.g. http://localhost:8888",
        )
    if settings.share == "users" and not settings.accounts:
        raise ConfigError(
            "HXCHAT_SHARE",
            "users needs sign-in (HXCHAT_AUTH other than none); use anyone or off",
        )
    if "oidc" in settings.auth_modes:
        for field in ("oidc_issuer", "oidc_client_id"):
            if not getattr(settings, field):
                raise ConfigError(
                    f"HXCHAT_{field.upper()}", f"is required with HXCHAT_AUTH={settings.auth}"
                )
    return settings
