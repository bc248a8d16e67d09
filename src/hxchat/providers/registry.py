"""Which model a `HXCHAT_MODEL` value names: prefix -> factory.

Factories import their SDK lazily, so the core install needs none of the optional
extras, and a missing extra or key is reported as one line naming the variable.
"""

from __future__ import annotations

from hxchat.config import Settings
from hxchat.errors import ConfigError
from hxchat.providers.base import ChatModel
from hxchat.providers.echo import EchoModel


def build_model(settings: Settings) -> ChatModel:
    """The model the settings name; raises `ConfigError` when it cannot be built."""
    prefix, _, name = settings.model.partition(":")
    if prefix == "echo":
        return EchoModel(delay=settings.echo_delay)
    if prefix in ("openai", "ollama"):
        from hxchat.providers.openai_compat import build_openai_model

        return build_openai_model(settings, provider=prefix, model=name)
    if prefix == "gemini":
        from hxchat.providers.gemini import build_gemini_model

        return build_gemini_model(settings, model=name)
    raise ConfigError("HXCHAT_MODEL", f"unknown model {settings.model!r}")
