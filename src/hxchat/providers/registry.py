"""The providers hxchat knows: which `HXCHAT_MODEL` values name them, what configures them.

One entry per provider: the prefix of its `HXCHAT_MODEL` values, the environment
variables it reads, the optional extra it needs, and how to build it. The settings
validate `HXCHAT_MODEL` against this table, so the module stays light: builders
import their provider (and its SDK) only when a model is built, and the core install
needs none of the optional extras.

`build_model` is the one place hxchat's own code reads a provider's variables: it
takes just that provider's variables from the environment (where `hxchat serve` has
loaded `.env`) and hands the builder that mapping. The SDKs underneath may read their
own variables too (google-genai reads GOOGLE_*); that is theirs to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hxchat.errors import ConfigError

if TYPE_CHECKING:  # the settings import this module: no cycle at run time
    from hxchat.config import Settings
    from hxchat.providers.base import ChatModel

#: builds the model `name` (what follows the prefix) from the settings and the variables
Builder = Callable[["Settings", str, Mapping[str, str]], "ChatModel"]


@dataclass(frozen=True)
class Provider:
    #: "echo" names the model itself; a prefix ending in ":" is followed by a model name.
    prefix: str
    #: the environment variables that configure it; its code is given these and no others.
    variables: tuple[str, ...]
    #: how to build it; imports the provider's module only when called.
    build: Builder
    #: the optional extra it needs (`pip install "hxchat[<extra>]"`), if any.
    extra: str | None = None
    #: its endpoint lists its models (`/v1/models`): `<prefix>*` offers every one.
    lists_models: bool = False

    @property
    def takes_name(self) -> bool:
        return self.prefix.endswith(":")

    @property
    def example(self) -> str:
        """How a value for it looks, e.g. "openai:<model>"."""
        return f"{self.prefix}<model>" if self.takes_name else self.prefix


def _echo(settings: Settings, name: str, env: Mapping[str, str]) -> ChatModel:
    from hxchat.providers.echo import EchoModel

    return EchoModel(delay=settings.echo_delay)


def _openai(settings: Settings, name: str, env: Mapping[str, str]) -> ChatModel:
    from hxchat.providers.openai_compat import build_openai_model

    return build_openai_model(settings, provider="openai", model=name, env=env)


def _ollama(settings: Settings, name: str, env: Mapping[str, str]) -> ChatModel:
    from hxchat.providers.openai_compat import build_openai_model

    return build_openai_model(settings, provider="ollama", model=name, env=env)


def _gemini(settings: Settings, name: str, env: Mapping[str, str]) -> ChatModel:
    from hxchat.providers.gemini import build_gemini_model

    return build_gemini_model(settings, model=name, env=env)


_OPENAI_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_KEY")
# Ollama has its own endpoint, so that it can be offered beside OpenAI; the OPENAI_*
# ones still configure it when no `openai:` model is offered (as before `OLLAMA_BASE_URL`).
_OLLAMA_VARIABLES = ("OLLAMA_BASE_URL", *_OPENAI_VARIABLES)
#: a model name that stands for every model its endpoint lists (`openai:*`, `ollama:*`)
EVERY_MODEL = "*"

PROVIDERS: tuple[Provider, ...] = (
    Provider("echo", (), _echo),
    Provider(
        "gemini:",
        (
            "GOOGLE_API_KEY",
            "GEMINI_API_KEY",
            "GOOGLE_GENAI_USE_VERTEXAI",
            "GOOGLE_GENAI_USE_ENTERPRISE",
            "GOOGLE_CLOUD_PROJECT",
            "GOOGLE_CLOUD_LOCATION",
            "GOOGLE_GEMINI_BASE_URL",
        ),
        _gemini,
        extra="gemini",
    ),
    Provider("openai:", _OPENAI_VARIABLES, _openai, lists_models=True),
    Provider("ollama:", _OLLAMA_VARIABLES, _ollama, lists_models=True),
)


def find_provider(model: str) -> Provider | None:
    """The provider a `HXCHAT_MODEL` value names (by what precedes its first ":"), if any."""
    stem, _, _ = model.partition(":")
    for provider in PROVIDERS:
        if provider.prefix == (f"{stem}:" if provider.takes_name else model):
            return provider
    return None


def model_name(model: str) -> str:
    """What follows the prefix of a `HXCHAT_MODEL` value: "gpt-4o" in "openai:gpt-4o"."""
    return model.partition(":")[2]


def check_model(value: str, *, every: bool = False) -> str:
    """`value` if it names a known provider (and a model, where one is needed), else
    `ValueError` with a sentence for a person; used to validate `HXCHAT_MODEL` and, with
    `every` (`openai:*` allowed), each spec of `HXCHAT_MODELS`."""
    provider = find_provider(value)
    if provider is None:
        examples = [p.example for p in PROVIDERS]
        raise ValueError(
            f"unknown model {value!r}; use {', '.join(examples[:-1])} or {examples[-1]}"
        )
    if provider.takes_name and not model_name(value).strip():
        stem = provider.prefix.removesuffix(":")
        raise ValueError(f"{stem}: needs a model name, e.g. {provider.example}")
    if model_name(value) == EVERY_MODEL:
        stem = provider.prefix.removesuffix(":")
        if not provider.lists_models:
            raise ValueError(f"{stem}:* is not possible; name its models one by one")
        if not every:
            raise ValueError(f"name one model; {stem}:* belongs in HXCHAT_MODELS")
    return value


def provider_environment(
    provider: Provider, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The provider's own variables that are set, read once from `environ` (the process
    environment, into which `hxchat serve` has loaded `.env`, unless given)."""
    source = os.environ if environ is None else environ
    return {name: source[name] for name in provider.variables if name in source}


def build_model(
    settings: Settings, environ: Mapping[str, str] | None = None, spec: str | None = None
) -> ChatModel:
    """The model `spec` names (by default the settings' `HXCHAT_MODEL`), configured by
    its provider's variables (read from `environ`, by default the process environment);
    raises `ConfigError` when it cannot be built (a missing key, a bad URL, an optional
    extra not installed)."""
    spec = settings.model if spec is None else spec
    variable = "HXCHAT_MODEL" if spec == settings.model else "HXCHAT_MODELS"
    provider = find_provider(spec)
    if provider is None:
        raise ConfigError(variable, f"unknown model {spec!r}")
    env = provider_environment(provider, environ)
    try:
        return provider.build(settings, model_name(spec), env)
    except ImportError as exc:
        if provider.extra is None or (exc.name or "").startswith("hxchat"):
            raise  # a bug, not a missing extra
        stem = provider.prefix.removesuffix(":")
        raise ConfigError(
            variable, f'{stem}: needs the extra: pip install "hxchat[{provider.extra}]"'
        ) from exc
