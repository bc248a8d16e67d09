"""Where an `openai:` or `ollama:` model is served, and the models it lists.

Kept apart from `openai_compat` (the chat itself): the catalogue reads an endpoint's
`/models` without building a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from hxchat.config import Settings
from hxchat.errors import ConfigError, ProviderUnavailable

OPENAI_URL = "https://api.openai.com/v1"
OLLAMA_URL = "http://localhost:11434/v1"


@dataclass(frozen=True)
class Endpoint:
    """Where an `openai:` or `ollama:` model is served, and the key it is sent."""

    base_url: str
    api_key: str
    variable: str  # the variable that named the URL (for a person's error message)


def endpoint(settings: Settings, provider: str, env: Mapping[str, str]) -> Endpoint:
    """The endpoint of `provider` ("openai" or "ollama") from the variables in `env`.

    `openai:` reads OPENAI_BASE_URL and OPENAI_API_KEY. `ollama:` reads OLLAMA_BASE_URL
    (default http://localhost:11434/v1), so that both can be offered side by side; when
    that is unset and no `openai:` model is offered, it still reads the OPENAI_* ones
    (how an Ollama elsewhere was configured before OLLAMA_BASE_URL)."""
    variable, key_variable = "OPENAI_BASE_URL", "OPENAI_API_KEY"
    if provider == "ollama":
        borrow = not any(spec.startswith("openai:") for spec in settings.model_specs)
        if env.get("OLLAMA_BASE_URL", "").strip() or not borrow:
            variable, key_variable = "OLLAMA_BASE_URL", ""
    default = OLLAMA_URL if provider == "ollama" else OPENAI_URL
    base_url = env.get(variable, "").strip() or default
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(variable, "use the server's base URL, e.g. http://localhost:8000/v1")
    api_key = env.get(key_variable, "").strip() if key_variable else ""
    if not api_key:
        if parts.hostname == "api.openai.com":
            raise ConfigError(
                "OPENAI_API_KEY",
                "OpenAI's API needs a key: set it, or point OPENAI_BASE_URL at a local server",
            )
        api_key = "not-needed"  # local servers ignore it; the SDK insists on one
    return Endpoint(base_url.rstrip("/"), api_key, variable)


async def list_models(where: Endpoint, timeout: float) -> list[str]:
    """The ids the endpoint lists at `/models` (OpenAI's `{"data": [{"id"}, …]}`, which
    Ollama, vLLM and llama.cpp serve too); `ProviderUnavailable` when it does not answer
    within `timeout` seconds or answers something else."""
    headers = {"Authorization": f"Bearer {where.api_key}"}
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.get(f"{where.base_url}/models", headers=headers)
        response.raise_for_status()
        listed = response.json()["data"]
        return sorted({str(item["id"]) for item in listed if str(item.get("id", "")).strip()})
    except httpx.HTTPStatusError as exc:
        reason = f"HTTP {exc.response.status_code}"
    except httpx.TimeoutException:
        reason = f"no answer within {timeout:g} seconds"
    except httpx.HTTPError as exc:
        reason = type(exc).__name__
    except (ValueError, KeyError, TypeError, AttributeError):
        reason = "not a list of models"
    raise ProviderUnavailable(f"{where.base_url}/models: {reason}")
