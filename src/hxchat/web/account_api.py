"""The accounts' JSON API: who am I, and my API tokens (docs/api.md).

`GET /api/me` answers in every mode (in mode `none`, the browser's anonymous owner).
The token routes need a signed-in user: in mode `none` there is nobody to give a
token to, and they answer 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from hxchat.auth.identity import Identity
from hxchat.errors import NotFound
from hxchat.store.accounts import ApiToken
from hxchat.web.deps import AccountsDep, IdentityDep, OwnerDep

router = APIRouter()

NO_ACCOUNTS = "There are no accounts here (HXCHAT_AUTH=none), so there are no API tokens."


class NewToken(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    expires_in_days: int | None = Field(default=None, ge=1, le=3_650)


def _signed_in(identity: Identity | None) -> Identity:
    if identity is None:
        raise NotFound(NO_ACCOUNTS)
    return identity


def _token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
    }


@router.get("/api/me")
async def me(owner: OwnerDep, identity: IdentityDep) -> dict[str, Any]:
    if identity is None:
        return {"id": owner, "name": "anonymous", "email": None, "admin": False, "auth": "none"}
    user = identity.user
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "admin": user.admin,
        "auth": user.auth,
    }


@router.post("/api/tokens", status_code=201)
async def create_token(
    body: NewToken, accounts: AccountsDep, identity: IdentityDep
) -> dict[str, Any]:
    made = await accounts.create_token(_signed_in(identity).user, body.name, body.expires_in_days)
    answer = _token_json(made.token)
    del answer["last_used_at"]
    answer["token"] = made.secret
    return answer


@router.get("/api/tokens")
async def list_tokens(accounts: AccountsDep, identity: IdentityDep) -> list[dict[str, Any]]:
    user = _signed_in(identity).user
    return [_token_json(t) for t in await accounts.store.list_tokens(user.id)]


@router.delete("/api/tokens/{token_id}", status_code=204)
async def delete_token(token_id: str, accounts: AccountsDep, identity: IdentityDep) -> Response:
    await accounts.revoke_token(_signed_in(identity).user, token_id)
    return Response(status_code=204)
