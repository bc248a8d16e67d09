"""The application factory: nothing happens at import.

`create_app(settings)` builds a FastAPI app whose lifespan opens the store, the event
log and the model, and starts the generation runner and the lease supervisor; a test
can build many apps, and hand each its own store, event log or model.
"""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from hxchat import __version__
from hxchat.auth.identity import Identities
from hxchat.auth.limits import Limits
from hxchat.auth.middleware import AccountsMiddleware
from hxchat.auth.oidc import OidcSignIn
from hxchat.auth.users import Accounts
from hxchat.broker.base import EventLog
from hxchat.broker.factory import build_event_log
from hxchat.config import Settings, load_settings
from hxchat.errors import ConfigError, SchemaOutOfDate
from hxchat.files.service import Files
from hxchat.generation import GenerationRunner
from hxchat.metrics import Metrics
from hxchat.providers.base import ChatModel
from hxchat.providers.catalogue import Catalogue
from hxchat.store.accounts import AccountStore
from hxchat.store.base import Store
from hxchat.store.directory import UserDirectory
from hxchat.store.feedback import FeedbackStore
from hxchat.store.library import Library
from hxchat.store.migrate import schema_is_current, upgrade
from hxchat.store.shares import ShareStore
from hxchat.store.sql import SqlStore, open_store
from hxchat.supervision import LeaseSupervisor
from hxchat.titles import Titles
from hxchat.web import (
    account_api,
    account_pages,
    admin_pages,
    api,
    export_api,
    feedback,
    files_api,
    handlers,
    import_pages,
    library_api,
    library_pages,
    library_search,
    oidc_pages,
    pages,
    share_api,
    share_pages,
    version_pages,
)
from hxchat.web.compression import CompressionMiddleware
from hxchat.web.import_upload import import_body_limits
from hxchat.web.security import SecurityMiddleware, make_signer
from hxchat.web.templating import Templates

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"


async def ensure_schema(settings: Settings) -> None:
    """SQLite (the embedded default) upgrades itself; PostgreSQL must be upgraded on purpose."""
    if await schema_is_current(settings.database_url):
        return
    if not settings.is_sqlite:
        raise SchemaOutOfDate(
            "The database schema is behind this version of hxchat: run `hxchat db upgrade`."
        )
    await upgrade(settings.database_url)


def _freeze_start_up() -> None:
    """Move everything start-up allocated (SQLAlchemy, pydantic, Pygments, templates:
    some 150,000 objects) out of the garbage collector's sight. A full collection over
    them stalled the event loop for 50-90 ms several times a minute under load, which
    every open stream saw as lateness (bench/README.md). Process-wide, so only for a
    server process, never for an app built in a test.

    Then the youngest generation is collected after 50,000 allocations instead of 700
    and the oldest far more rarely: streaming allocates a few objects per word, nearly
    all freed by reference counting, so the default thresholds collected hundreds of
    times a second for nothing, and the full collections over the answers held in the
    event log were the rest of the p99 lateness at 350 streams (84-120 ms -> 66-78)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def app_from_environment() -> FastAPI:
    """The app as `hxchat serve` runs it, in every worker: settings from the environment."""
    return create_app(load_settings(), freeze_start_up_objects=True)


def create_app(
    settings: Settings,
    model: ChatModel | None = None,
    *,
    store: Store | None = None,
    log: EventLog | None = None,
    models: Mapping[str, ChatModel] | None = None,
    freeze_start_up_objects: bool = False,
) -> FastAPI:
    """A new hxchat app; its lifespan connects everything it needs.

    `model`, `store` and `log` replace the ones the settings name (tests pass scripted
    models, embedders their own store or event log). A store or event log handed in is
    used as it is (its schema must be current) and left open when the app stops: its
    owner closes it; the ones the app builds from the settings, it closes. `models` adds
    ready-made models by id (`{"openai:b": model}`) to those offered. The models are
    closed with the app either way (`providers/catalogue.py`). A server process freezes
    what start-up allocated (`freeze_start_up_objects`), see `_freeze_start_up`."""
    metrics = Metrics()
    templates = Templates()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            the_store = store
            if the_store is None:
                the_store = await open_store(settings.database_url)
                stack.push_async_callback(the_store.close)
                await ensure_schema(settings)
            the_log = log
            if the_log is None:
                the_log = build_event_log(settings)
                stack.push_async_callback(the_log.close)
            catalogue = Catalogue(settings, model, built=models)
            stack.push_async_callback(catalogue.close)
            await catalogue.open()
            templates.offer(lambda: catalogue.models)
            chat_model = catalogue.default
            key = (
                settings.secret_key.get_secret_value()
                if settings.secret_key
                else await the_store.secret_key(secrets.token_urlsafe(32))
            )
            app.state.signer = make_signer(key)
            await _open_accounts(app, settings, the_store, stack, key)
            files = app.state.files = Files.open(_sql_store(the_store), settings)
            _open_library(app, the_store)
            titles = Titles(app.state.library) if settings.titles == "model" else None
            if titles is not None:  # closed after the runner, whose answers start them
                stack.push_async_callback(titles.close)
            runner = GenerationRunner(
                files=files,
                store=the_store,
                log=the_log,
                model=chat_model,
                settings=settings,
                metrics=metrics,
                models=catalogue,
                titles=titles,
            )
            stack.push_async_callback(runner.close)
            supervisor = LeaseSupervisor(
                store=the_store,
                log=the_log,
                metrics=metrics,
                answers=runner,
                sweep_live_on_start=settings.redis_url is None,
                housekeeping=files.sweep,
            )
            app.state.store, app.state.log, app.state.runner = the_store, the_log, runner
            app.state.models = catalogue
            await supervisor.start()
            stack.push_async_callback(supervisor.close)
            if freeze_start_up_objects:
                _freeze_start_up()
            logger.info("hxchat %s ready (model %s)", __version__, chat_model.name)
            yield

    app = FastAPI(
        title="hxchat",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.templates = templates
    sharing = settings.share_mode != "off"
    templates.env.globals["sharing"] = sharing  # the page offers Share (#12)
    handlers.install(app)
    app.include_router(api.answer_router)  # every answer's routes first: tried first
    app.include_router(pages.stream_router)
    app.include_router(api.router)
    app.include_router(library_api.router)
    app.include_router(export_api.router)
    app.include_router(files_api.router)
    app.include_router(account_api.router)
    app.include_router(pages.router)
    app.include_router(library_search.router)
    app.include_router(version_pages.router)
    app.include_router(library_pages.router)
    app.include_router(account_pages.router)
    app.include_router(import_pages.router)
    app.include_router(oidc_pages.router)
    app.include_router(admin_pages.router)
    app.include_router(feedback.router)
    if sharing:  # HXCHAT_SHARE=off: every share route is a 404, as if it never existed
        app.include_router(share_api.router)
        app.include_router(share_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # Inside the security middleware, which adds its headers to whatever these send.
    app.add_middleware(CompressionMiddleware)
    if settings.accounts:
        app.add_middleware(AccountsMiddleware, state=app.state, settings=settings)
    app.add_middleware(
        SecurityMiddleware,
        state=app.state,
        max_body_bytes=settings.max_message_chars * 4 + 65_536,
        anonymous=not settings.accounts,
        larger_bodies={**import_body_limits(settings), **files_api.upload_limits(settings)},
    )
    return app


def _sql_store(store: Store) -> SqlStore:
    if not isinstance(store, SqlStore):
        raise ConfigError(
            "HXCHAT_DATABASE_URL", "accounts, limits and files need hxchat's SQL store"
        )
    return store


async def _open_accounts(
    app: FastAPI, settings: Settings, store: Store, stack: AsyncExitStack, key: str
) -> None:
    """The accounts, their sign-ins and the per-owner limits (in every mode: in `none`
    the limits count per anonymous owner)."""
    account_store = AccountStore(_sql_store(store))
    limits = Limits(settings, account_store)
    stack.push_async_callback(limits.close)
    directory = UserDirectory(_sql_store(store))
    identities = (
        Identities(account_store, settings.session_days, directory) if settings.accounts else None
    )
    if identities is not None:
        stack.push_async_callback(identities.close)
    app.state.directory = directory
    app.state.oidc = OidcSignIn(settings, key) if "oidc" in settings.auth_modes else None
    app.state.limits = limits
    app.state.identities = identities
    app.state.accounts = Accounts(account_store, settings, limits, identities, app.state.metrics)


def _open_library(app: FastAPI, store: Store) -> None:
    """The library (#12): titles, pins and instructions, share links and feedback, kept
    in hxchat's SQL store beside the conversations."""
    if not isinstance(store, SqlStore):
        raise ConfigError(
            "HXCHAT_DATABASE_URL", "the conversation library needs hxchat's SQL store"
        )
    app.state.library = Library(store)
    app.state.shares, app.state.feedback = ShareStore(store), FeedbackStore(store)
