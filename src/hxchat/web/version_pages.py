"""The page's versions (#10): Edit, Regenerate, and Previous / Next version.

Each is a plain form: without JavaScript it posts and is answered with a redirect to
the conversation (Edit is a GET that shows the page with that message as a form to
edit). With htmx each swaps the message it sits on, by id, with what the path shows
from there on, and deletes the articles of the old path below it (out of band): what
did not change stays as it is, the composer's text included. When the page does not
show the message acted on (another tab changed the path), htmx reloads the page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from hxchat.errors import NotFound
from hxchat.store.base import Conversation, Message
from hxchat.web.checks import checked_message, parse_message_id
from hxchat.web.deps import (
    LimitsDep,
    OwnerDep,
    RunnerDep,
    SettingsDep,
    StoreDep,
    TemplatesDep,
)
from hxchat.web.pages import PAGE, VARY, is_htmx
from hxchat.web.templating import Templates

router = APIRouter()
MESSAGE = "_message.html"


async def _conversation(store: StoreDep, owner: str, conversation_id: str) -> Conversation:
    conversation = await store.get_conversation(owner, conversation_id)
    if conversation is None:
        raise NotFound()
    return conversation


def _shown(conversation: Conversation, raw_id: str) -> Message:
    """The message `raw_id` as the conversation's path shows it, or 404."""
    message_id = parse_message_id(raw_id)
    for message in conversation.messages:
        if message.id == message_id:
            return message
    raise NotFound("There is no such message.")


def _article(templates: Templates, message: Message, *, last: bool, editing: bool = False) -> str:
    if message.role.value == "user":
        return templates.macro(MESSAGE, "user", message, editing=editing)
    return templates.macro(MESSAGE, "assistant", message, last=last)


@router.get("/c/{conversation_id}/messages/{message_id}", response_class=HTMLResponse)
async def message_fragment(
    conversation_id: str,
    message_id: str,
    store: StoreDep,
    templates: TemplatesDep,
    owner: OwnerDep,
) -> Response:
    """One message's article (the edit form's Cancel, with htmx)."""
    conversation = await _conversation(store, owner, conversation_id)
    message = _shown(conversation, message_id)
    last = message is conversation.messages[-1]
    return HTMLResponse(_article(templates, message, last=last), headers=VARY)


@router.get("/c/{conversation_id}/messages/{message_id}/edit", response_class=HTMLResponse)
async def edit_form(
    request: Request,
    conversation_id: str,
    message_id: str,
    store: StoreDep,
    templates: TemplatesDep,
    owner: OwnerDep,
) -> Response:
    """A message of yours as a form to edit it (the page's Edit button, with htmx)."""
    conversation = await _conversation(store, owner, conversation_id)
    message = _shown(conversation, message_id)
    if not is_htmx(request) or message.role.value != "user":
        return RedirectResponse(f"/c/{conversation_id}?edit={message.id}", status_code=303)
    return HTMLResponse(_article(templates, message, last=False, editing=True), headers=VARY)


@router.post("/c/{conversation_id}/messages/{message_id}/edit")
async def edit(
    request: Request,
    conversation_id: str,
    message_id: str,
    store: StoreDep,
    runner: RunnerDep,
    templates: TemplatesDep,
    settings: SettingsDep,
    owner: OwnerDep,
    limits: LimitsDep,
    content: Annotated[str, Form()] = "",
    model: Annotated[str, Form()] = "",
) -> Response:
    edited = parse_message_id(message_id)
    content = checked_message(content, settings)
    runner.choose(model or None)  # an unknown model: 422, before the rate counts it
    async with limits.message(owner):  # refused over the rate before any read
        before = await store.get_conversation(owner, conversation_id) if is_htmx(request) else None
        started = await runner.edit(
            owner, edited, content, conversation_id=conversation_id, model=model or None
        )
    return await _changed(
        request, store, templates, owner, conversation_id, before, edited, started.generation_id
    )


@router.post("/c/{conversation_id}/messages/{message_id}/regenerate")
async def regenerate(
    request: Request,
    conversation_id: str,
    message_id: str,
    store: StoreDep,
    runner: RunnerDep,
    templates: TemplatesDep,
    owner: OwnerDep,
    limits: LimitsDep,
    model: Annotated[str, Form()] = "",
) -> Response:
    """A new version of the answer; by the model of the form field `model`, when given
    (else the conversation's)."""
    answer = parse_message_id(message_id)
    runner.choose(model or None)
    async with limits.message(owner):
        before = await store.get_conversation(owner, conversation_id) if is_htmx(request) else None
        started = await runner.regenerate(
            owner, answer, conversation_id=conversation_id, model=model or None
        )
    return await _changed(
        request, store, templates, owner, conversation_id, before, answer, started.generation_id
    )


@router.post("/c/{conversation_id}/messages/{message_id}/select")
async def select(
    request: Request,
    conversation_id: str,
    message_id: str,
    store: StoreDep,
    templates: TemplatesDep,
    owner: OwnerDep,
    limits: LimitsDep,
    shown: Annotated[str, Form()] = "",
) -> Response:
    """Show another version; `shown` is the version the page shows now (the article
    htmx swaps), the selected one otherwise."""
    selected = parse_message_id(message_id)
    async with limits.message(owner, starts_answer=False):
        before = await store.get_conversation(owner, conversation_id) if is_htmx(request) else None
        after = await store.select_version(owner, selected, conversation_id)
    replaced = int(shown) if shown.isascii() and shown.isdigit() and len(shown) <= 10 else selected
    return await _changed(
        request, store, templates, owner, conversation_id, before, replaced, None, after
    )


async def _changed(
    request: Request,
    store: StoreDep,
    templates: Templates,
    owner: str,
    conversation_id: str,
    before: Conversation | None,
    replaced: int,
    generation_id: str | None,
    after: Conversation | None = None,
) -> Response:
    """The answer to a change of the path below message `replaced`: a redirect, or
    (htmx) the path's articles from that message's place on, the old ones below it
    deleted, the conversation list and the Stop button."""
    if before is None:
        return RedirectResponse(f"/c/{conversation_id}", status_code=303)
    place = next((i for i, m in enumerate(before.messages) if m.id == replaced), None)
    if after is None:
        after = await store.get_conversation(owner, conversation_id)
    if place is None or after is None:
        return Response(status_code=200, headers={**VARY, "HX-Refresh": "true"})
    shown = after.messages[place:]
    parts = [_article(templates, m, last=m is after.messages[-1]) for m in shown]
    kept = {m.id for m in shown}
    parts += [
        str(Markup('<div id="msg-{}" hx-swap-oob="delete"></div>').format(m.id))
        for m in before.messages[place + 1 :]
        if m.id not in kept
    ]
    context = {
        "conversation": after,
        "conversations": await store.list_conversations(owner),
        "oob": True,
    }
    parts.append(templates.block(PAGE, "conversation_list", **context))
    if generation_id is not None:
        parts.append(templates.macro(MESSAGE, "stop_slot", generation_id))
    return HTMLResponse("".join(parts), headers=VARY)
