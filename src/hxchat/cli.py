"""`hxchat serve` and `hxchat db upgrade`.

A bad setting stops start-up with one line naming the variable (no traceback), so
every check that can fail is made here, before uvicorn starts its workers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from dotenv import load_dotenv

from hxchat import __version__
from hxchat.config import Settings, load_settings
from hxchat.errors import ConfigError, HxchatError
from hxchat.logs import log_config

logger = logging.getLogger("hxchat")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hxchat", description="A small self-hosted LLM chat.")
    parser.add_argument("--version", action="version", version=f"hxchat {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the web server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--reload", action="store_true", help="restart on code changes")

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply the schema migrations")

    args = parser.parse_args(argv)
    # Also the providers' own variables (OPENAI_*, GOOGLE_*): the providers' registry
    # reads them from the environment, and so do the SDKs underneath.
    load_dotenv(".env", override=False)
    try:
        settings = load_settings()
        if args.command == "db":
            asyncio.run(_upgrade(settings))
            print(f"hxchat: the database schema is up to date ({_safe_url(settings)}).")
            return 0
        if args.workers < 1:
            raise ConfigError("--workers", "needs a number of at least 1")
        if args.workers > 1 and settings.redis_url is None:
            raise ConfigError(
                "HXCHAT_REDIS_URL",
                f"--workers {args.workers} needs Redis: the in-memory event log of the "
                "embedded default cannot be shared between processes.",
            )
        logger.setLevel(logging.CRITICAL)  # the preflight's own failure is the one line below
        asyncio.run(_preflight(settings))
        logger.setLevel(logging.NOTSET)
    except HxchatError as exc:
        print(f"hxchat: {exc.detail}", file=sys.stderr)
        return 2
    _serve(args)
    return 0


async def _upgrade(settings: Settings) -> None:
    from hxchat.store.migrate import upgrade

    await upgrade(settings.database_url)


async def _preflight(settings: Settings) -> None:
    """Fail fast on the model, the database and the broker, with one clear line."""
    from hxchat.app import ensure_schema
    from hxchat.broker.factory import build_event_log
    from hxchat.errors import StoreUnavailable
    from hxchat.providers.registry import build_model
    from hxchat.store.sql import open_store

    model = build_model(settings)
    await model.close()
    try:
        store = await open_store(settings.database_url)
        try:
            await store.ping()
        finally:
            await store.close()
    except StoreUnavailable as exc:
        raise ConfigError("HXCHAT_DATABASE_URL", exc.detail) from None
    await ensure_schema(settings)
    log = build_event_log(settings)
    try:
        await log.ping()
    except HxchatError as exc:
        raise ConfigError("HXCHAT_REDIS_URL", exc.detail) from None
    finally:
        await log.close()


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    uvicorn.run(
        "hxchat.app:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers if not args.reload else None,
        reload=args.reload,
        log_config=log_config(),
        timeout_graceful_shutdown=5,
        proxy_headers=True,
    )


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)
