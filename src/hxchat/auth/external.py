"""Users whom someone else signed in: an OpenID Connect provider, or a trusted proxy.

Neither has a password here. The first sign-in (OIDC) or the first request (header
mode) that names a new person makes their user; a disabled user stays out.
"""

from __future__ import annotations

import secrets

from hxchat.auth.names import MAX_NAME, InvalidName, check_name
from hxchat.auth.oidc import Claims, SignInRefused
from hxchat.store.accounts import User
from hxchat.store.directory import UserDirectory

DISABLED = "This account is disabled; ask an admin of this hxchat."


def _usable(names: list[str]) -> list[str]:
    usable: list[str] = []
    for name in names:
        try:
            usable.append(check_name(name[:MAX_NAME]))
        except InvalidName:
            continue
    return usable


async def oidc_user(directory: UserDirectory, issuer: str, claims: Claims) -> User:
    """The user (issuer, sub), made at their first sign-in; SignInRefused if disabled."""
    for _ in range(3):  # another worker may make the same user at the same moment
        user = await directory.user_by_subject(issuer, claims.subject)
        if user is not None:
            if user.disabled:
                raise SignInRefused(DISABLED)
            await directory.seen(user.id, claims.email)
            return user
        names = _usable(claims.names) or ["user"]
        names += [f"{names[0][: MAX_NAME - 7]}-{secrets.token_hex(3)}" for _ in range(3)]
        made = await directory.add_external(
            names, "oidc", email=claims.email, issuer=issuer, subject=claims.subject
        )
        if made is not None:
            return made
    raise SignInRefused("This account could not be made; try again.")


async def header_user(directory: UserDirectory, name: str) -> User | None:
    """The user the proxy's header names, made by their first request; None if disabled.
    Raises InvalidName for a value that cannot be a username."""
    name = check_name(name)
    for _ in range(3):
        user = await directory.user_named(name)
        if user is not None:
            return None if user.disabled else user
        made = await directory.add_external([name], "header")
        if made is not None:
            return made
    return None
