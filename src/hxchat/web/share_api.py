"""Share links in the JSON API (#12); included only while `HXCHAT_SHARE` is not `off`.

`POST` makes a snapshot of the path the conversation shows now under a new link
(every POST a new one; earlier links keep their own snapshots); `DELETE` stops every
link of the conversation. Another owner's conversation is a 404, as everywhere.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from hxchat.auth.secrets import digest
from hxchat.web.deps import LimitsDep, OwnerDep
from hxchat.web.share_links import SharesDep, new_token, path_of

router = APIRouter()


@router.post("/api/conversations/{conversation_id}/share", status_code=201)
async def share(
    conversation_id: str, shares: SharesDep, owner: OwnerDep, limits: LimitsDep
) -> dict[str, str]:
    token = new_token()
    async with limits.message(owner, starts_answer=False):  # each share copies the path
        await shares.create(owner, conversation_id, digest(token))
    return {"url": path_of(token)}


@router.delete("/api/conversations/{conversation_id}/share", status_code=204)
async def stop_sharing(conversation_id: str, shares: SharesDep, owner: OwnerDep) -> Response:
    await shares.stop(owner, conversation_id)
    return Response(status_code=204)
