"""The providers' registry: the one list of `HXCHAT_MODEL` prefixes, and the one place
hxchat's own code reads a provider's variables.

Each provider is built from a mapping of its declared variables; the process
environment holds different values, so a provider that read `os.environ` itself
would show it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

import hxchat.providers
from hxchat.config import Settings, load_settings
from hxchat.errors import ConfigError
from hxchat.providers.echo import EchoModel
from hxchat.providers.gemini import GeminiModel
from hxchat.providers.openai_compat import OpenAICompatModel
from hxchat.providers.registry import PROVIDERS, Provider, build_model, provider_environment
from tests.helpers import ask, run, text_of
from tests.scripted_gemini import Partial, Raise, ScriptedGemini, server_error
from tests.scripted_openai import ScriptedOpenAI, Text

GIVEN_KEY = "sk-given-FAKE-0123456789"  # the mapping's key
OTHER_KEY = "sk-environ-FAKE-9876543210"  # the process environment's, never to be used
ALL_VARIABLES = sorted({name for provider in PROVIDERS for name in provider.variables})


def example(provider: Provider) -> str:
    return f"{provider.prefix}some-model" if provider.takes_name else provider.prefix


@pytest.fixture(autouse=True)
def other_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every provider variable set, to a value no test expects."""
    for name in ALL_VARIABLES:
        monkeypatch.setenv(name, OTHER_KEY if "KEY" in name else "http://environ.invalid/v1")


class Recording(Mapping[str, str]):
    """A mapping that remembers which names were looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        self._values = values
        self.read: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.read.add(name)
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        self.read.add(str(name))
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("a provider looks its variables up by name")

    def __len__(self) -> int:
        return len(self._values)


# -- the settings accept exactly the registry's prefixes ------------------------------


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.prefix)
def test_every_registered_prefix_is_accepted(provider: Provider) -> None:
    assert load_settings(model=example(provider)).model == example(provider)


@pytest.mark.parametrize("value", ["claude:x", "nonsense", "echo:x", "openai-x:y"])
def test_an_unknown_prefix_is_refused_with_the_known_ones(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(model=value)
    assert str(caught.value) == (
        f"HXCHAT_MODEL: unknown model {value!r}; use echo, gemini:<model>, "
        "openai:<model> or ollama:<model>"
    )


def test_a_prefix_without_a_model_name_is_refused() -> None:
    for provider in PROVIDERS:
        if provider.takes_name:
            with pytest.raises(ConfigError, match="needs a model name"):
                load_settings(model=provider.prefix)


# -- each provider reads its declared variables, from the mapping it is given ----------


def test_the_registry_passes_only_declared_variables() -> None:
    environ = {name: "x" for name in ALL_VARIABLES} | {"HOME": "/root", "OTHER_KEY": "k"}
    for provider in PROVIDERS:
        assert provider_environment(provider, environ) == dict.fromkeys(provider.variables, "x")


def test_no_provider_module_but_the_registry_reads_the_environment() -> None:
    for path in Path(next(iter(hxchat.providers.__path__))).glob("*.py"):
        if path.name == "registry.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            assert not (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")), (
                f"{path.name}:{node.lineno} reads the environment"
            )
            if isinstance(node, ast.ImportFrom) and node.module == "os":
                assert not {a.name for a in node.names} & {"environ", "getenv"}, path.name


WORKING = {  # variables with which each provider builds
    "echo": {},
    "gemini:": {"GOOGLE_API_KEY": GIVEN_KEY, "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:9"},
    "openai:": {"OPENAI_API_KEY": GIVEN_KEY, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
    "ollama:": {},
}


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.prefix)
async def test_each_provider_reads_only_its_declared_variables(
    provider: Provider, make_settings: Callable[..., Settings]
) -> None:
    env = Recording(WORKING[provider.prefix])
    model = provider.build(make_settings(model=example(provider)), "some-model", env)
    try:
        assert env.read <= set(provider.variables)
    finally:
        await model.close()


async def test_openai_uses_the_given_url_and_key(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(model="openai:scripted", search="none")
    with ScriptedOpenAI([Text(["Given."])]) as server:
        environ = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": GIVEN_KEY}
        model = build_model(settings, environ)
        try:
            events, error = await run(model, ask("Hello"))
        finally:
            await model.close()
    assert error is None
    assert text_of(events) == "Given."
    assert server.requests[0].headers["authorization"] == f"Bearer {GIVEN_KEY}"


async def test_openai_and_ollama_ignore_the_process_environment(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_model(make_settings(model="openai:gpt-4o-mini"), {})
    assert caught.value.variable == "OPENAI_API_KEY"
    model = build_model(make_settings(model="ollama:llama3.2"), {})
    try:
        assert isinstance(model, OpenAICompatModel)
        assert model.where == "http://localhost:11434"
    finally:
        await model.close()


async def test_gemini_uses_the_given_variables(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError) as caught:
        build_model(make_settings(model="gemini:gemini-2.5-flash"), {})
    assert caught.value.variable == "GOOGLE_API_KEY"
    model = build_model(make_settings(model="gemini:gemini-2.5-flash"), WORKING["gemini:"])
    try:
        assert isinstance(model, GeminiModel)
        assert model.where == "the Gemini API at http://127.0.0.1:9"
    finally:
        await model.close()


async def test_gemini_keeps_the_given_key_out_of_its_errors(
    make_settings: Callable[..., Settings],
) -> None:
    quoted = server_error(400, "FAILED_PRECONDITION", f"no project for key {GIVEN_KEY}")
    llm = ScriptedGemini(turns=[[Partial("Par"), Raise(quoted)]])
    settings = make_settings(first_token_timeout=10.0, token_timeout=2.0)
    model = GeminiModel(settings, llm=llm, env={"GOOGLE_API_KEY": GIVEN_KEY})
    try:
        _, error = await run(model, ask("Hello"))
    finally:
        await model.close()
    assert error is not None
    assert error.detail == (
        "The Gemini API refused the request (HTTP 400: no project for key [key])."
    )


async def test_echo_needs_no_variables(make_settings: Callable[..., Settings]) -> None:
    model = build_model(make_settings(model="echo"), {})
    assert isinstance(model, EchoModel)
    await model.close()
