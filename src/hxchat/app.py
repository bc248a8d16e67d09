"""The application factory: nothing happens at import.

`create_app(settings)` builds a FastAPI app whose lifespan opens the store, the event
log and the model, and starts the generation runner; a test can build many apps.
"""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from hxchat import __version__
from hxchat.broker.factory import build_event_log
from hxchat.config import Settings, load_settings
from hxchat.errors import SchemaOutOfDate
from hxchat.generation import GenerationRunner
from hxchat.metrics import Metrics
from hxchat.providers.base import ChatModel
from hxchat.providers.registry import build_model
from hxchat.store.migrate import schema_is_current, upgrade
from hxchat.store.sql import open_store
from hxchat.web import api, handlers, pages
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
    settings: Settings, model: ChatModel | None = None, *, freeze_start_up_objects: bool = False
) -> FastAPI:
    """A new hxchat app; its lifespan connects everything it needs. `model` replaces
    the one the settings name (tests pass scripted models). A server process freezes
    what start-up allocated (`freeze_start_up_objects`), see `_freeze_start_up`."""
    metrics = Metrics()
    templates = Templates()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await open_store(settings.database_url)
        await ensure_schema(settings)
        log = build_event_log(settings)
        chat_model = model or build_model(settings)
        key = (
            settings.secret_key.get_secret_value()
            if settings.secret_key
            else await store.secret_key(secrets.token_urlsafe(32))
        )
        app.state.signer = make_signer(key)
        runner = GenerationRunner(
            store=store,
            log=log,
            model=chat_model,
            settings=settings,
            metrics=metrics,
            sweep_live_on_start=settings.redis_url is None,
        )
        app.state.store, app.state.log, app.state.runner = store, log, runner
        await runner.start()
        if freeze_start_up_objects:
            _freeze_start_up()
        logger.info("hxchat %s ready (model %s)", __version__, chat_model.name)
        try:
            yield
        finally:
            await runner.close()
            await chat_model.close()
            await log.close()
            await store.close()

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
    handlers.install(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.add_middleware(
        SecurityMiddleware,
        state=app.state,
        max_body_bytes=settings.max_message_chars * 4 + 65_536,
    )
    return app
