"""Sign-in with an OpenID Connect provider (Keycloak, Authentik, Google, Entra ID, Dex),
through Authlib's Starlette client.

The flow is the authorization code flow with PKCE (S256):

1. `GET /auth/oidc/login` reads the provider's discovery document
   (`{issuer}/.well-known/openid-configuration`, cached), makes a `state`, a `nonce` and
   a PKCE verifier, keeps them in a short-lived signed cookie (`hxchat_oidc`, HttpOnly,
   SameSite=Lax, only sent to `/auth/oidc/`: it lasts 10 minutes and holds no secret
   the provider does not see anyway but the verifier), and redirects to the provider.
2. The provider sends the browser back to `{origin}/auth/oidc/callback` with a code and
   the state. The state must equal the cookie's; the code is exchanged (with the
   verifier) for tokens; the id token's signature (the provider's JWKS), issuer,
   audience, expiry and nonce are checked by Authlib.
3. The user is the pair (issuer, `sub`): the first sign-in makes them (named by
   `preferred_username`, else the e-mail, else `name`, else `sub`); name and e-mail
   come from the claims. With `HXCHAT_OIDC_ALLOWED_DOMAINS`, only a *verified* e-mail
   (`email_verified` true) of one of those domains may sign in.

The state lives in a cookie rather than in the server, so that any worker can finish
a sign-in another one started. Every failure is a `SignInFailed` (400, or 403 for a
refusal) with one readable sentence; the page shows it, never a traceback.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from authlib.integrations.starlette_client import OAuth
from itsdangerous import BadSignature, URLSafeTimedSerializer

from hxchat.config import Settings
from hxchat.errors import HxchatError

logger = logging.getLogger(__name__)

STATE_COOKIE = "hxchat_oidc"
STATE_PATH = "/auth/oidc/"
STATE_SECONDS = 600
CALLBACK = "/auth/oidc/callback"
KNOWN_PROVIDERS = {
    "accounts.google.com": "Google",
    "login.microsoftonline.com": "Microsoft",
    "gitlab.com": "GitLab",
}


class SignInFailed(HxchatError):
    status_code = 400
    default_detail = "The sign-in did not work; try again."


class SignInRefused(SignInFailed):
    status_code = 403
    default_detail = "This account may not sign in here."


@dataclass(frozen=True, slots=True)
class Claims:
    """Who the provider says signed in."""

    subject: str
    names: list[str]  # the username to use, best first
    email: str | None  # verified when the allowed domains are checked


def provider_name(issuer: str) -> str:
    """The name on the sign-in button: a well-known provider's, else the issuer's host."""
    host = urlsplit(issuer).hostname or issuer
    return KNOWN_PROVIDERS.get(host, host)


class OidcSignIn:
    """The provider of `HXCHAT_OIDC_ISSUER`, and the state of sign-ins under way."""

    def __init__(self, settings: Settings, secret_key: str) -> None:
        assert settings.oidc_issuer is not None and settings.oidc_client_id is not None
        self.issuer = settings.oidc_issuer
        self.name = provider_name(self.issuer)
        self.allowed_domains = settings.allowed_domains
        secret = settings.oidc_client_secret
        oauth = OAuth()
        self.client: Any = oauth.register(
            "provider",
            client_id=settings.oidc_client_id,
            client_secret=secret.get_secret_value() if secret else None,
            server_metadata_url=f"{self.issuer}/.well-known/openid-configuration",
            client_kwargs={
                "scope": settings.oidc_scopes,
                "code_challenge_method": "S256",
                "timeout": 10.0,
                # no secret: a public client, which PKCE alone protects
                "token_endpoint_auth_method": "client_secret_basic" if secret else "none",
            },
        )
        self._states = URLSafeTimedSerializer(secret_key, salt="hxchat.oidc")

    async def start(self, redirect_uri: str, next_path: str) -> tuple[str, str]:
        """The provider's authorization URL, and the cookie value that remembers it."""
        try:
            made = await self.client.create_authorization_url(redirect_uri)
        except Exception as exc:  # unreachable, or a discovery document that is not one
            logger.warning("OpenID Connect discovery at %s failed: %r", self.issuer, exc)
            raise SignInFailed(
                f"The sign-in provider ({self.name}) could not be reached; try again later."
            ) from None
        pending = {
            "state": made["state"],
            "nonce": made["nonce"],
            "verifier": made["code_verifier"],
            "next": next_path,
        }
        return str(made["url"]), self._states.dumps(pending)

    def pending(self, cookie: str | None) -> dict[str, str]:
        """What `start` remembered, or SignInFailed (no cookie, too old, tampered with)."""
        if not cookie:
            raise SignInFailed(
                "This sign-in was not started in this browser, or it took too long; try again."
            )
        try:
            loaded: dict[str, str] = self._states.loads(cookie, max_age=STATE_SECONDS)
        except BadSignature:
            raise SignInFailed(
                "This sign-in took too long or was tampered with; try again."
            ) from None
        return loaded

    async def finish(
        self, query: dict[str, str], pending: dict[str, str], redirect_uri: str
    ) -> Claims:
        """Check the provider's answer and return who signed in."""
        if "error" in query:
            error = query["error"][:100]
            if error in ("access_denied", "login_required", "consent_required"):
                raise SignInRefused(f"{self.name} did not let you sign in ({error}).")
            raise SignInFailed(f"{self.name} could not sign you in ({error}); try again.")
        state = query.get("state", "")
        if not hmac.compare_digest(state.encode(), pending["state"].encode()):
            raise SignInFailed("This sign-in's state does not match; start again.")
        code = query.get("code")
        if not code:
            raise SignInFailed(f"{self.name} sent no authorization code; try again.")
        try:
            token = await self.client.fetch_access_token(
                redirect_uri=redirect_uri, code=code, code_verifier=pending["verifier"]
            )
            claims = await self.client.parse_id_token(token, nonce=pending["nonce"])
        except Exception as exc:  # the provider refused the code, or the id token is bad
            logger.warning("OpenID Connect sign-in at %s failed: %r", self.issuer, exc)
            raise SignInFailed(
                f"{self.name}'s answer could not be verified, so you are not signed in; try again."
            ) from None
        if claims is None or not claims.get("sub"):
            raise SignInFailed(f"{self.name} sent no id token; try again.")
        return self._claims(dict(claims))

    def _claims(self, claims: dict[str, Any]) -> Claims:
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        verified = claims.get("email_verified") is True
        if self.allowed_domains:
            domain = email.rsplit("@", 1)[-1].lower() if email and "@" in email else None
            if not verified or domain not in self.allowed_domains:
                raise SignInRefused(
                    "Only people with a verified e-mail address of "
                    + ", ".join(sorted(self.allowed_domains))
                    + " may sign in here."
                )
        names = [
            v
            for v in (claims.get("preferred_username"), email, claims.get("name"))
            if isinstance(v, str) and v.strip()
        ]
        return Claims(str(claims["sub"]), names, email)

    def cookie(self, value: str, *, secure: bool) -> str:
        parts = [
            f"{STATE_COOKIE}={value}",
            f"Path={STATE_PATH}",
            f"Max-Age={STATE_SECONDS if value else 0}",
            "HttpOnly",
            "SameSite=Lax",
        ]
        if secure:
            parts.append("Secure")
        return "; ".join(parts)
