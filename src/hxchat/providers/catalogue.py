"""The models people may choose from, and the clients that talk to them.

`HXCHAT_MODEL` is the default and always offered; `HXCHAT_MODELS` adds more, each a
spec as in `HXCHAT_MODEL`. `openai:*` and `ollama:*` stand for every model their
endpoint lists at `/models`, read at start-up and again every `REFRESH_SECONDS` with a
short timeout: an endpoint that does not answer is left out (one warning) and its
models come back by themselves when it answers again.

Each model's client is built once, when first needed (the default and the models
named one by one at start-up, so that a missing key stops `hxchat serve`), kept in
`Catalogue.built`, reused by every answer, and closed with the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from hxchat.config import Settings
from hxchat.domain import ModelChoice
from hxchat.errors import ProviderError, UnknownModel
from hxchat.providers.base import ChatModel
from hxchat.providers.registry import (
    EVERY_MODEL,
    build_model,
    find_provider,
    model_name,
    provider_environment,
)

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 600.0  # how often `openai:*` / `ollama:*` read their endpoint's list
LIST_TIMEOUT = 3.0  # seconds an endpoint has to list its models

#: lists the model names of one provider's endpoint ("openai", "ollama")
Lister = Callable[[Settings, str, Mapping[str, str]], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model offered, as `GET /api/models` shows it."""

    id: str
    label: str
    default: bool
    vision: bool

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "default": self.default, "vision": self.vision}


def label_of(model_id: str) -> str:
    """How the page names a model: "gpt-4o-mini (openai)", "echo"."""
    stem, _, name = model_id.partition(":")
    return f"{name} ({stem})" if name else model_id


def takes_images(model_id: str, patterns: tuple[str, ...]) -> bool:
    """Gemini models always do; others when `HXCHAT_VISION_MODELS` matches their id."""
    return model_id.startswith("gemini:") or any(fnmatchcase(model_id, p) for p in patterns)


async def _list_endpoint(settings: Settings, stem: str, env: Mapping[str, str]) -> list[str]:
    from hxchat.providers.openai_endpoint import endpoint, list_models

    return await list_models(endpoint(settings, stem, env), LIST_TIMEOUT)


class Catalogue:
    """The offered models (`models`, `ids`), the choice a request makes (`choose`),
    and the built clients (`model`)."""

    def __init__(
        self,
        settings: Settings,
        default: ChatModel | None = None,
        *,
        built: Mapping[str, ChatModel] | None = None,
        environ: Mapping[str, str] | None = None,
        lister: Lister = _list_endpoint,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.settings = settings
        self.default_id = settings.model
        self._source = environ
        self.built: dict[str, ChatModel] = dict(built or {})
        if default is not None:
            self.built[self.default_id] = default
        specs = [*settings.model_specs, *self.built]
        self._named = list(dict.fromkeys(s for s in specs if model_name(s) != EVERY_MODEL))
        self._listing = [s.partition(":")[0] for s in specs if model_name(s) == EVERY_MODEL]
        self._listed: dict[str, list[str]] = {stem: [] for stem in self._listing}
        self._down: set[str] = set()
        self._lister = lister
        self._refresh_seconds = refresh_seconds
        self._task: asyncio.Task[None] | None = None
        self._update()

    # -- what is offered ---------------------------------------------------------------

    @property
    def default(self) -> ChatModel:
        return self.model(self.default_id)

    @property
    def models(self) -> tuple[ModelInfo, ...]:
        return self._models

    @property
    def ids(self) -> frozenset[str]:
        return self._ids

    def choose(self, requested: str | None) -> ModelChoice:
        """The choice of a new answer's model; `UnknownModel` (422) for a model that
        is not offered."""
        if requested and requested not in self._ids:
            raise UnknownModel(requested)
        return ModelChoice(requested or None, self.default_id, self._ids)

    def current(self, last_model: str | None) -> str:
        """A conversation's model, from the model its last answer used."""
        return ModelChoice(None, self.default_id, self._ids).resolve(last_model)

    def _update(self) -> None:
        ids = [*self._named]
        for stem in self._listing:
            ids += [f"{stem}:{name}" for name in self._listed[stem]]
        ids = list(dict.fromkeys(ids))
        patterns = self.settings.vision_patterns
        self._models = tuple(
            ModelInfo(i, label_of(i), i == self.default_id, takes_images(i, patterns)) for i in ids
        )
        self._ids = frozenset(ids)

    # -- the clients -------------------------------------------------------------------

    def model(self, model_id: str | None) -> ChatModel:
        """The client of `model_id`, built at its first use and kept; the default's for
        None or a model no longer offered (an answer chosen before a refresh)."""
        if model_id is None or model_id not in self._ids:
            model_id = self.default_id
        found = self.built.get(model_id)
        if found is None:
            found = self.built[model_id] = build_model(self.settings, self._source, model_id)
        return found

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        """Build the models named one by one (a `ConfigError` stops the start), read
        the endpoints' lists, and keep reading them every `refresh_seconds`."""
        for model_id in self._named:
            self.model(model_id)
        await self.refresh()
        if self._listing:
            self._task = asyncio.create_task(self._refresh_forever(), name="hxchat-models")

    async def refresh(self) -> None:
        """Read every `<provider>:*` endpoint's list once; one that does not answer is
        left out, with a warning when it stops answering and a note when it is back."""
        for stem in self._listing:
            provider = find_provider(f"{stem}:{EVERY_MODEL}")
            assert provider is not None  # the settings checked it
            env = provider_environment(provider, self._source)
            try:
                names = await self._lister(self.settings, stem, env)
            except ProviderError as exc:
                if stem not in self._down:
                    logger.warning(
                        "%s:* is left out until its endpoint answers (%s)", stem, exc.detail
                    )
                self._down.add(stem)
                self._listed[stem] = []
                continue
            if stem in self._down:
                logger.info("%s:* is back: %d models", stem, len(names))
            self._down.discard(stem)
            self._listed[stem] = names
        self._update()

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.refresh()
            except Exception:  # a bug must not end the refreshes for good
                logger.exception("reading the models' endpoints failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for built in self.built.values():
            await built.close()
