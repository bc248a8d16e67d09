"""`hxchat users …` and `hxchat tokens add`: accounts from the command line.

Each command prints one readable line (`users list`: one per user) and exits 0, or
prints one line starting `hxchat:` and exits 1; never a traceback. They work on
`HXCHAT_DATABASE_URL` directly, in any mode (accounts can be made before switching
`HXCHAT_AUTH` to `password`), and end sign-ins on every worker within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable

from hxchat.auth.users import Accounts
from hxchat.config import Settings
from hxchat.errors import HxchatError, NotFound
from hxchat.store.accounts import AccountStore

Command = Callable[[Accounts, argparse.Namespace], Awaitable[str]]


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="manage accounts")
    each = users.add_subparsers(dest="users_command", required=True)
    add = each.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true")
    add.add_argument("--email")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    each.add_parser("list", help="list the accounts")
    for name, what in (
        ("disable", "disable an account (its sessions and tokens end)"),
        ("enable", "enable a disabled account"),
        ("delete", "delete an account with its conversations"),
    ):
        each.add_parser(name, help=what).add_argument("name")
    adopt = each.add_parser(
        "adopt", help="give a user the conversations of an anonymous owner (from mode none)"
    )
    adopt.add_argument("name")
    adopt.add_argument("owner", help="the owner id, as GET /api/me shows it in mode none")
    password = each.add_parser("set-password", help="set a new password (sign-ins end)")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true")

    tokens = commands.add_parser("tokens", help="API tokens")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True)
    token = token_commands.add_parser("add", help="make an API token and print it")
    token.add_argument("name", help="the user")
    token.add_argument("token_name")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run a `users` or `tokens` command; 0, or 1 with one line on stderr."""
    command = COMMANDS[
        f"tokens {args.tokens_command}"
        if args.command == "tokens"
        else f"users {args.users_command}"
    ]
    try:
        print(asyncio.run(_with_accounts(settings, command, args)))
    except HxchatError as exc:
        print(f"hxchat: {exc.detail}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, EOFError):
        print("hxchat: cancelled.", file=sys.stderr)
        return 1
    return 0


async def _with_accounts(settings: Settings, command: Command, args: argparse.Namespace) -> str:
    from hxchat.app import ensure_schema
    from hxchat.store.sql import open_store

    store = await open_store(settings.database_url)
    try:
        await ensure_schema(settings)
        return await command(Accounts(AccountStore(store), settings), args)
    finally:
        await store.close()


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise HxchatError("The two passwords differ; nothing was changed.")
    return first


async def _add(accounts: Accounts, args: argparse.Namespace) -> str:
    user = await accounts.add(args.name, _password(args), email=args.email, admin=args.admin)
    return f"hxchat: added {'admin ' if user.admin else ''}user {user.name!r}."


async def _list(accounts: Accounts, args: argparse.Namespace) -> str:
    users = await accounts.store.list_users()
    if not users:
        return "hxchat: there are no users yet (add one with `hxchat users add NAME`)."
    lines = []
    for u in users:
        flags = [u.auth] + (["admin"] if u.admin else []) + (["disabled"] if u.disabled else [])
        seen = u.last_seen_at.strftime("%Y-%m-%d %H:%M") if u.last_seen_at else "never"
        lines.append(f"{u.name}\t{', '.join(flags)}\tlast seen {seen}")
    return "\n".join(lines)


def _switch(disabled: bool) -> Command:
    async def switch(accounts: Accounts, args: argparse.Namespace) -> str:
        if not await accounts.store.set_disabled(args.name, disabled):
            raise NotFound(f"There is no user {args.name!r}.")
        if disabled:
            return f"hxchat: disabled {args.name!r}; their sessions and API tokens have ended."
        return f"hxchat: enabled {args.name!r}."

    return switch


async def _set_password(accounts: Accounts, args: argparse.Namespace) -> str:
    await accounts.set_password(args.name, _password(args))
    return f"hxchat: set a new password for {args.name!r}; their sign-ins have ended."


async def _delete(accounts: Accounts, args: argparse.Namespace) -> str:
    if not await accounts.store.delete_user(args.name):
        raise NotFound(f"There is no user {args.name!r}.")
    return f"hxchat: deleted {args.name!r} with their conversations."


async def _adopt(accounts: Accounts, args: argparse.Namespace) -> str:
    moved = await accounts.store.adopt(args.name, args.owner)
    if moved is None:
        raise NotFound(f"There is no user {args.name!r}.")
    return f"hxchat: {args.name!r} now has {moved} more conversation{'s' if moved != 1 else ''}."


async def _add_token(accounts: Accounts, args: argparse.Namespace) -> str:
    found = await accounts.store.user_by_name(args.name)
    if found is None:
        raise NotFound(f"There is no user {args.name!r}.")
    made = await accounts.create_token(found[0], args.token_name)
    return made.secret


COMMANDS: dict[str, Command] = {
    "users add": _add,
    "users list": _list,
    "users disable": _switch(True),
    "users enable": _switch(False),
    "users set-password": _set_password,
    "users delete": _delete,
    "users adopt": _adopt,
    "tokens add": _add_token,
}
