"""Request dependencies as named types (`StoreDep`, `OwnerDep`, ...).

They are `async def` although they await nothing: FastAPI runs a plain `def`
dependency in a worker thread, one hop per dependency per request (a stream request
used to make eight), and those threads fight the event loop for the GIL.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from hxchat.auth.identity import Identity
from hxchat.auth.limits import Limits
from hxchat.auth.users import Accounts
from hxchat.broker.base import EventLog
from hxchat.config import Settings
from hxchat.generation import GenerationRunner
from hxchat.metrics import Metrics
from hxchat.providers.catalogue import Catalogue
from hxchat.store.base import Store
from hxchat.store.feedback import FeedbackStore
from hxchat.store.library import Library
from hxchat.web.templating import Templates


async def get_owner(request: Request) -> str:
    return Services(request).owner


async def get_identity(request: Request) -> Identity | None:
    """The signed-in user (modes with accounts), or None (mode `none`, open pages)."""
    return cast("Identity | None", getattr(request.state, "identity", None))


async def get_limits(request: Request) -> Limits:
    return Services(request).limits


async def get_accounts(request: Request) -> Accounts:
    return cast(Accounts, request.app.state.accounts)


async def get_store(request: Request) -> Store:
    return Services(request).store


async def get_library(request: Request) -> Library:
    return cast(Library, request.app.state.library)


async def get_log(request: Request) -> EventLog:
    return Services(request).log


async def get_runner(request: Request) -> GenerationRunner:
    return Services(request).runner


async def get_models(request: Request) -> Catalogue:
    return cast(Catalogue, request.app.state.models)


async def get_settings(request: Request) -> Settings:
    return Services(request).settings


async def get_feedback(request: Request) -> FeedbackStore:
    return cast(FeedbackStore, request.app.state.feedback)


async def get_templates(request: Request) -> Templates:
    return Services(request).templates


async def get_metrics(request: Request) -> Metrics:
    return Services(request).metrics


OwnerDep = Annotated[str, Depends(get_owner)]
IdentityDep = Annotated["Identity | None", Depends(get_identity)]
LimitsDep = Annotated[Limits, Depends(get_limits)]
AccountsDep = Annotated[Accounts, Depends(get_accounts)]
StoreDep = Annotated[Store, Depends(get_store)]
LibraryDep = Annotated[Library, Depends(get_library)]
LogDep = Annotated[EventLog, Depends(get_log)]
RunnerDep = Annotated[GenerationRunner, Depends(get_runner)]
ModelsDep = Annotated[Catalogue, Depends(get_models)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
TemplatesDep = Annotated[Templates, Depends(get_templates)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
FeedbackDep = Annotated[FeedbackStore, Depends(get_feedback)]


class Services:
    """The app's parts, typed. The routes every answer takes (its POST, its two
    streams) use it directly: each is an attribute read, where a dependency costs
    FastAPI's resolver ~7 us per request (bench/README.md). The other routes take the
    `...Dep` types, whose getters read the same properties."""

    __slots__ = ("_request", "_state")

    def __init__(self, request: Request) -> None:
        self._request = request
        self._state = request.app.state

    @property
    def owner(self) -> str:
        return cast(str, self._request.state.owner)

    @property
    def store(self) -> Store:
        return cast(Store, self._state.store)

    @property
    def log(self) -> EventLog:
        return cast(EventLog, self._state.log)

    @property
    def runner(self) -> GenerationRunner:
        return cast(GenerationRunner, self._state.runner)

    @property
    def settings(self) -> Settings:
        return cast(Settings, self._state.settings)

    @property
    def metrics(self) -> Metrics:
        return cast(Metrics, self._state.metrics)

    @property
    def limits(self) -> Limits:
        return cast(Limits, self._state.limits)

    @property
    def templates(self) -> Templates:
        return cast(Templates, self._state.templates)
