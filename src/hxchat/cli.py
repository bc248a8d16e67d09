"""`hxchat serve`, `hxchat db upgrade`, and the accounts' commands (`users_cli`).

A bad setting stops start-up with one line naming the variable (no traceback), so
every check that can fail is made here, before uvicorn starts its workers.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import sys
from typing import Any

from dotenv import load_dotenv

from hxchat import __version__, users_cli
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
    users_cli.add_parsers(commands)

    args = parser.parse_args(argv)
    # Also the providers' own variables (OPENAI_*, GOOGLE_*): the providers' registry
    # reads them from the environment, and so do the SDKs underneath.
    load_dotenv(".env", override=False)
    if args.command in ("users", "tokens"):
        try:
            settings = load_settings()
        except HxchatError as exc:
            print(f"hxchat: {exc.detail}", file=sys.stderr)
            return 1
        return users_cli.run(settings, args)
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
    warning = exposure_warning(settings, args.host)
    if warning:
        print(f"hxchat: warning: {warning}", file=sys.stderr)
    _serve(args, settings)
    return 0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may be reachable from anywhere
        return False


def exposure_warning(settings: Settings, host: str) -> str | None:
    """What to say at start-up about listening beyond this machine, or None."""
    if is_loopback(host):
        return None
    if settings.accounts:
        return (
            f"listening on {host} with sign-in ({settings.auth}): put HTTPS in front "
            "(a TLS-terminating proxy), or passwords and session cookies cross the "
            "network readable."
        )
    return (
        f"listening on {host} without sign-in (HXCHAT_AUTH=none): anyone who reaches "
        "this port can use hxchat and its model."
    )


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

    for spec in settings.model_specs:  # HXCHAT_MODEL, then those HXCHAT_MODELS names
        if not spec.endswith(":*"):  # what an endpoint lists is read by the app
            model = build_model(settings, spec=spec)
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


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's own handling of X-Forwarded-For and X-Forwarded-Proto, made to agree
    with hxchat's: it rewrites the request's client address (`scope["client"]`) from
    X-Forwarded-For when the peer is one it trusts.

    - Header mode: off. The user header is believed by the TCP peer's address, which a
      rewrite would replace with whatever X-Forwarded-For said; hxchat's accounts
      middleware reads X-Forwarded-Proto from the trusted proxies itself.
    - Password and OpenID Connect: on, trusting `HXCHAT_TRUSTED_PROXIES`, so that the
      sign-in lockout counts the real address and the cookie is Secure behind HTTPS.
    - Mode `none`: as it always was (uvicorn's default: 127.0.0.1, or
      `FORWARDED_ALLOW_IPS`)."""
    if "header" in settings.auth_modes:
        return {"proxy_headers": False}
    if settings.accounts:
        return {"proxy_headers": True, "forwarded_allow_ips": settings.trusted_proxies}
    return {"proxy_headers": True}


def _serve(args: argparse.Namespace, settings: Settings) -> None:
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
        **proxy_options(settings),
    )


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)
