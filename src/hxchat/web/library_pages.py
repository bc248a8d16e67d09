"""The library in the page (#12, #10): Rename, Pin / Unpin and Delete in the conversation
list, a conversation's Instructions, and the wait for the title the model writes.

Each control is a plain form. Without JavaScript it posts and is answered with a
redirect back to the page it was on (`next`, a path of this site: `/` or `/c/{id}`);
Rename is first a GET of that page with `?rename={id}`, which shows the item as a form.
With htmx each answers with what changed: the conversation list (and, for the current
conversation, its heading and the page's title), or the instructions form.

The model's title comes after the first answer (`titles.py`). While it is pending the
page holds a hidden watcher (`_library.html`) whose request here waits for it, checking
the store twice a second, and answers with the new heading, list and page title, out of
band; any worker can answer it, since the title is in the database.
"""

from __future__ import annotations

import asyncio
import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from hxchat.errors import InvalidMessage, NotFound
from hxchat.store.base import Conversation
from hxchat.store.library import Changes
from hxchat.web.deps import LibraryDep, OwnerDep, RunnerDep, StoreDep, TemplatesDep
from hxchat.web.library_api import checked_instructions, checked_title
from hxchat.web.pages import PAGE, VARY, is_htmx
from hxchat.web.templating import Templates

router = APIRouter()

LIBRARY = "_library.html"
_PAGE_PATH = re.compile(r"/c/([0-9a-f]{32})")
WAIT_SECONDS = 20.0  # how long one request for a pending title waits
POLL_SECONDS = 0.5  # how often it asks the store meanwhile
MAX_ROUNDS = 30  # requests a page makes for one title (about ten minutes), then it stops


def _next(raw: str) -> str:
    """Where a form leads back to: the page it was on, if it is one of ours, else `/`."""
    return raw if raw == "/" or _PAGE_PATH.fullmatch(raw) else "/"


def _current(here: str) -> str | None:
    """The conversation the page `here` shows (None for `/`)."""
    match = _PAGE_PATH.fullmatch(here)
    return match.group(1) if match else None


async def _list_fragment(
    store: StoreDep,
    templates: Templates,
    owner: str,
    here: str,
    *,
    with_heading: bool = False,
) -> HTMLResponse:
    """The conversation list of the page `here`; with `with_heading`, also that page's
    heading, title watcher and `<title>` (out of band) after a change of its title."""
    current_id = _current(here)
    current = await store.get_conversation(owner, current_id) if current_id else None
    context = {"conversations": await store.list_conversations(owner), "conversation": current}
    parts = [templates.block(PAGE, "conversation_list", **context, oob=False)]
    if with_heading and current is not None:
        parts += [templates.block(PAGE, block, **context, oob=True) for block in _HEADING]
        parts.append(str(Markup("<title>{}</title>").format(current.title)))
    return HTMLResponse("".join(parts), headers=VARY)


_HEADING = ("heading", "title_watch")


async def _change(library: LibraryDep, owner: str, conversation_id: str, changes: Changes) -> None:
    """Apply `changes` to the owner's conversation; 404 when it is not theirs."""
    if not await library.change(owner, conversation_id, changes):
        raise NotFound()


async def _after_change(
    request: Request,
    store: StoreDep,
    templates: Templates,
    owner: str,
    here: str,
    *,
    with_heading: bool = False,
) -> Response:
    """Without htmx, back to the page `here` (POST-redirect-GET); with it, the list."""
    if not is_htmx(request):
        return RedirectResponse(here, status_code=303)
    return await _list_fragment(store, templates, owner, here, with_heading=with_heading)


@router.post("/c/{conversation_id}/rename")
async def rename(
    request: Request,
    conversation_id: str,
    store: StoreDep,
    library: LibraryDep,
    templates: TemplatesDep,
    owner: OwnerDep,
    title: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    here = _next(next)
    await _change(library, owner, conversation_id, Changes(title=checked_title(title)))
    return await _after_change(
        request, store, templates, owner, here, with_heading=_current(here) == conversation_id
    )


@router.post("/c/{conversation_id}/pin")
async def pin(
    request: Request,
    conversation_id: str,
    store: StoreDep,
    library: LibraryDep,
    templates: TemplatesDep,
    owner: OwnerDep,
    pinned: Annotated[str, Form()] = "true",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Pin (`pinned=true`) or unpin (`pinned=false`) a conversation."""
    if pinned not in ("true", "false"):
        raise InvalidMessage("Pinned is true or false.")
    here = _next(next)
    await _change(library, owner, conversation_id, Changes(pinned=pinned == "true"))
    return await _after_change(request, store, templates, owner, here)


@router.post("/c/{conversation_id}/delete")
async def delete(
    request: Request,
    conversation_id: str,
    store: StoreDep,
    runner: RunnerDep,
    templates: TemplatesDep,
    owner: OwnerDep,
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Delete a conversation (its running answer is stopped first); the page that
    showed it goes to `/`, any other page stays where it is."""
    here = _next(next)
    await runner.delete_conversation(owner, conversation_id)
    if _current(here) == conversation_id:
        here = "/"
        if is_htmx(request):
            return Response(status_code=204, headers={"HX-Redirect": "/"})
    return await _after_change(request, store, templates, owner, here)


@router.post("/c/{conversation_id}/instructions")
async def instructions(
    request: Request,
    conversation_id: str,
    store: StoreDep,
    library: LibraryDep,
    templates: TemplatesDep,
    owner: OwnerDep,
    instructions: Annotated[str, Form()] = "",
) -> Response:
    """Save the conversation's instructions ("" clears them): its later answers follow them."""
    changes = Changes(instructions=checked_instructions(instructions))
    await _change(library, owner, conversation_id, changes)
    if not is_htmx(request):
        return RedirectResponse(f"/c/{conversation_id}", status_code=303)
    conversation = await _conversation(store, owner, conversation_id)
    form = templates.macro(LIBRARY, "instructions_form", conversation, saved=True)
    return HTMLResponse(form, headers=VARY)


@router.get("/c/{conversation_id}/title")
async def title(
    conversation_id: str,
    store: StoreDep,
    library: LibraryDep,
    templates: TemplatesDep,
    owner: OwnerDep,
    round: int = 0,
) -> Response:
    """The page's wait for the model's title (htmx): answers once it is there, or after
    `WAIT_SECONDS` with a watcher that asks again (at most `MAX_ROUNDS` times)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while True:
        state = await library.title_state(owner, conversation_id)
        if state is None:
            raise NotFound()
        if not state.pending or loop.time() >= deadline:
            break
        await asyncio.sleep(POLL_SECONDS)
    conversation = await _conversation(store, owner, conversation_id)
    context = {
        "conversations": await store.list_conversations(owner),
        "conversation": conversation,
        "oob": True,
    }
    parts = [templates.block(PAGE, block, **context) for block in ("heading", "conversation_list")]
    watching = conversation if round + 1 < MAX_ROUNDS else None
    parts.append(templates.macro(LIBRARY, "title_watch", watching, oob=True, round=round + 1))
    parts.append(str(Markup("<title>{}</title>").format(conversation.title)))
    return HTMLResponse("".join(parts), headers=VARY)


async def _conversation(store: StoreDep, owner: str, conversation_id: str) -> Conversation:
    conversation = await store.get_conversation(owner, conversation_id)
    if conversation is None:
        raise NotFound()
    return conversation
