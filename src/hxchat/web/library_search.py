"""Searching one's conversations (#12): `GET /api/search` and the sidebar's results.

The sidebar's field asks `GET /search?q=…` as you type (htmx, after a pause), and the
answer replaces the conversation list; without JavaScript the same field is a plain
GET form, and `/search` answers with the whole page, its list showing the results.
An empty search shows the conversation list again (and `[]` in the API): a person
who clears the field expects their conversations back, not an error. Matched words
are marked by the template, which escapes everything else (results are what people
and models wrote).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from hxchat.errors import HxchatError
from hxchat.search_text import MAX_QUERY_CHARS, words
from hxchat.store.base import SearchHit
from hxchat.web.deps import IdentityDep, ModelsDep, OwnerDep, StoreDep, TemplatesDep
from hxchat.web.pages import PAGE, VARY, is_htmx, render_page

router = APIRouter()


class SearchTooLong(HxchatError):
    status_code = 422
    default_detail = f"The search is too long: at most {MAX_QUERY_CHARS} characters."


def _hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "conversation_id": hit.conversation_id,
        "title": hit.title,
        "message_id": hit.message_id,
        "snippet": hit.snippet,
    }


@router.get("/api/search")
async def search_api(store: StoreDep, owner: OwnerDep, q: str = "") -> list[dict[str, Any]]:
    """The caller's messages and titles with every word of `q`, best first, at most 50."""
    if len(q) > MAX_QUERY_CHARS:
        raise SearchTooLong()
    return [_hit_json(hit) for hit in await store.search(owner, q)]


@router.get("/search", response_class=HTMLResponse)
async def search_page(
    request: Request,
    store: StoreDep,
    templates: TemplatesDep,
    models: ModelsDep,
    owner: OwnerDep,
    identity: IdentityDep,
    q: str = "",
    conversation_id: str = "",
) -> Response:
    """The results in place of the conversation list: the list alone for htmx, else the
    page (an empty search: the conversations again, the one the page shows marked:
    htmx sends its id, `conversation_id`)."""
    problem = SearchTooLong.default_detail if len(q) > MAX_QUERY_CHARS else None
    searching = bool(q.strip())
    hits = await store.search(owner, q) if searching and problem is None else []
    context: dict[str, Any] = {
        "query": q,
        "searching": searching,
        "hits": hits,
        "terms": words(q) if searching else [],
        "search_problem": problem,
    }
    if is_htmx(request):
        listed = [] if searching else await store.list_conversations(owner)
        context["conversations"] = listed
        # The list marks the page's conversation, and its forms lead back to it.
        context["conversation"] = next((c for c in listed if c.id == conversation_id), None)
        context["renaming"] = None
        context["oob"] = False
        return HTMLResponse(templates.block(PAGE, "conversation_list", **context), headers=VARY)
    return await render_page(store, templates, models, owner, None, identity, **context)
