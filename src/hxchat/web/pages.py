"""The browser's pages and fragments.

A page request gets the whole page; an htmx request gets fragments cut from the same
template's named blocks (`Vary: HX-Request`). The composer posts to `/send`; without
JavaScript that answers with a redirect to the conversation, with htmx it answers
with the two new articles and out-of-band updates (conversation list, title, the
Stop button), and pushes `/c/{id}` into the address bar.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from hxchat.auth.identity import Identity
from hxchat.broker.base import Position
from hxchat.domain import MessageStatus, Role
from hxchat.errors import HxchatError, NotFound, TooManyRequests
from hxchat.providers.catalogue import Catalogue
from hxchat.store.base import Conversation, KeptHtml, Message, TurnStarted
from hxchat.web import answer_html
from hxchat.web.api import conversation_model
from hxchat.web.browser_stream import browser_frames
from hxchat.web.checks import checked_message
from hxchat.web.composer_form import ComposerForm, read_composer
from hxchat.web.deps import (
    IdentityDep,
    LimitsDep,
    ModelsDep,
    OwnerDep,
    RunnerDep,
    Services,
    SettingsDep,
    StoreDep,
    TemplatesDep,
)
from hxchat.web.files_api import FilesDep
from hxchat.web.share_links import SharePanel, SharesDep, panel_for
from hxchat.web.sse import EventStreamResponse

router = APIRouter()
stream_router = APIRouter()  # the browser's stream, included first (as `api.answer_router`)

PAGE = "chat.html"
VARY = {"Vary": "HX-Request"}


def is_htmx(request: Request) -> bool:
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def _streaming_generation(conversation: Conversation | None) -> str | None:
    if conversation is None:
        return None
    for m in conversation.messages:
        if m.status is MessageStatus.STREAMING and m.generation_id:
            return m.generation_id
    return None


async def render_page(
    store: StoreDep,
    templates: TemplatesDep,
    models: Catalogue,
    owner: str,
    conversation: Conversation | None,
    identity: Identity | None,
    editing: int | None = None,
    renaming: str | None = None,
    share: SharePanel | None = None,
    draft: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    """The chat page; `extra` adds to its context (a search's results, `library_search`)."""
    current = (
        models.default_id if conversation is None else conversation_model(conversation, models)
    )
    if draft and draft.get("model") in models.ids:
        current = draft["model"]  # a refused message's choice, shown again with its text
    # The answers rendered for this page: the store keeps their HTML from now on.
    fresh: list[KeptHtml] = []
    if conversation is not None:
        conversation, fresh = answer_html.fill(conversation, templates.rendered)
    context: dict[str, Any] = {
        "models": models.models,  # the composer's choice, when there is one
        "current_model": current,
        "editing": editing,  # the user's message shown as a form to edit it
        "renaming": renaming,  # the conversation whose list item is a form to rename it
        "identity": identity,
        "conversations": await store.list_conversations(owner),
        "conversation": conversation,
        "messages": conversation.messages if conversation else (),
        "title": conversation.title if conversation and conversation.title else "hxchat",
        "streaming_generation": _streaming_generation(conversation),
        "share": share,  # the Share controls' state (#12)
        "oob": False,
        "draft": draft or {},  # after a refused file: the text, kept files and error
        **extra,
    }
    page = templates.page(PAGE, **context)
    if fresh:
        await answer_html.keep(store, fresh)
    return HTMLResponse(page, headers=VARY)


@router.get("/", response_class=HTMLResponse)
async def home(
    store: StoreDep,
    templates: TemplatesDep,
    models: ModelsDep,
    owner: OwnerDep,
    identity: IdentityDep,
    rename: str = "",
) -> HTMLResponse:
    """The empty chat; `?rename=<id>` shows that conversation of the list as a form to
    rename it (the list's Rename button without JavaScript)."""
    return await render_page(
        store, templates, models, owner, None, identity, renaming=rename or None
    )


@router.get("/c/{conversation_id}", response_class=HTMLResponse)
async def conversation_page(
    request: Request,
    conversation_id: str,
    store: StoreDep,
    templates: TemplatesDep,
    models: ModelsDep,
    owner: OwnerDep,
    identity: IdentityDep,
    shares: SharesDep,
    edit: str = "",
    rename: str = "",
    shared: str = "",
) -> HTMLResponse:
    """The conversation; `?edit=<message id>` shows that message of yours as a form to
    edit it (the page's Edit button without JavaScript), `?rename=<id>` as on `/`;
    `?shared=<token>` shows the link just made by the Share form (without JavaScript,
    `web/share_pages.py`)."""
    conversation = await store.get_conversation(owner, conversation_id)
    if conversation is None:
        raise NotFound()
    editing = int(edit) if edit.isascii() and edit.isdigit() and len(edit) <= 10 else None
    share = None
    if templates.env.globals.get("sharing"):
        share = await panel_for(request, shares, conversation_id, shared)
    return await render_page(
        store, templates, models, owner, conversation, identity, editing, rename or None, share
    )


@router.post("/send")
async def send(
    request: Request,
    store: StoreDep,
    runner: RunnerDep,
    templates: TemplatesDep,
    settings: SettingsDep,
    owner: OwnerDep,
    limits: LimitsDep,
    files: FilesDep,
    models: ModelsDep,
    identity: IdentityDep,
) -> Response:
    """The composer: its text and files (multipart without JavaScript). A refusal (a
    file refused, a file storage that cannot be reached, a message too long or empty,
    an answer still running, too many requests) shows the page again with the error
    beside the composer, the typed text and the files that were kept (htmx: the error
    line only; the form keeps the rest). Another owner's conversation stays a 404."""
    form = await read_composer(request, files, owner)
    try:
        if form.error is not None:
            raise form.error
        content = checked_message(form.content, settings, form.file_ids)
        model, conversation_id = form.model, form.conversation_id
        runner.choose(model or None)  # an unknown model: 422 before a conversation is made
        is_new = not conversation_id
        async with limits.message(owner):
            if is_new:
                conversation_id = await store.create_conversation(owner)
            started = await runner.send(
                owner, conversation_id, content, model or None, form.file_ids
            )
    except HxchatError as refused:
        if is_htmx(request) or isinstance(refused, NotFound):
            raise
        return await _refused(store, templates, models, owner, identity, form, refused)
    if not is_htmx(request):
        return RedirectResponse(f"/c/{conversation_id}", status_code=303)
    return await _sent_fragment(store, templates, owner, started, with_user=True, is_new=is_new)


async def _refused(
    store: StoreDep,
    templates: TemplatesDep,
    models: Catalogue,
    owner: str,
    identity: Identity | None,
    form: ComposerForm,
    refused: HxchatError,
) -> HTMLResponse:
    """The page the message was typed on, again, with the refusal on the error line."""
    conversation = None
    if form.conversation_id:
        conversation = await store.get_conversation(owner, form.conversation_id)
    draft = {
        "content": form.content,
        "files": form.files,
        "model": form.model,  # the Model chosen, shown again when still offered
        "error": refused.detail,
    }
    page = await render_page(store, templates, models, owner, conversation, identity, draft=draft)
    page.status_code = refused.status_code
    if isinstance(refused, TooManyRequests):
        page.headers["Retry-After"] = str(refused.retry_after)
    return page


@router.post("/c/{conversation_id}/retry")
async def retry(
    request: Request,
    conversation_id: str,
    store: StoreDep,
    runner: RunnerDep,
    templates: TemplatesDep,
    owner: OwnerDep,
    limits: LimitsDep,
) -> Response:
    async with limits.message(owner):
        started = await runner.retry(owner, conversation_id)
    if not is_htmx(request):
        return RedirectResponse(f"/c/{conversation_id}", status_code=303)
    return await _sent_fragment(store, templates, owner, started, with_user=False, is_new=False)


async def _sent_fragment(
    store: StoreDep,
    templates: TemplatesDep,
    owner: str,
    started: TurnStarted,
    *,
    with_user: bool,
    is_new: bool,
) -> HTMLResponse:
    conversation = await store.get_conversation(owner, started.conversation_id)
    if conversation is None:  # deleted in the meantime
        raise NotFound()
    by_id = {m.id: m for m in conversation.messages}
    context: dict[str, Any] = {
        "conversation": conversation,
        "conversations": await store.list_conversations(owner),
        "oob": True,
    }
    parts: list[str] = []
    if with_user and started.user_message_id in by_id:
        parts.append(templates.macro("_message.html", "user", by_id[started.user_message_id]))
    parts.append(templates.macro("_message.html", "assistant", by_id[started.assistant_message_id]))
    for block in ("conversation_list", "heading", "actions", "conversation_field", "title_watch"):
        parts.append(templates.block(PAGE, block, **context))
    parts.append(templates.macro("_message.html", "stop_slot", started.generation_id))
    headers = dict(VARY)
    if is_new:
        parts.append('<section id="welcome" hx-swap-oob="delete"></section>')
        if templates.env.globals.get("sharing"):  # a new conversation can be shared now
            parts.append(templates.macro("_share.html", "share_panel", conversation.id, None, True))
        parts.append(templates.block(PAGE, "instructions", **context))  # its form (#10)
        headers["HX-Push-Url"] = f"/c/{conversation.id}"
    parts.append(str(Markup("<title>{}</title>").format(conversation.title or "hxchat")))
    return HTMLResponse("".join(parts), headers=headers)


@router.delete("/c/{conversation_id}")
async def delete_page(
    conversation_id: str, runner: RunnerDep, owner: OwnerDep, request: Request
) -> Response:
    await runner.delete_conversation(owner, conversation_id)
    await request.app.state.files.purge(owner)  # the contents only its messages used
    return Response(status_code=204, headers={"HX-Redirect": "/"})


@router.post("/generations/{generation_id}/cancel")
async def stop_page(generation_id: str, runner: RunnerDep, owner: OwnerDep) -> Response:
    """The Stop button without JavaScript (the page's `stop-form`): the answer ends
    `stopped`, and the conversation's page is shown."""
    generation = await runner.generation(generation_id, owner)
    if generation is None:
        raise NotFound("There is no such answer.")
    await runner.cancel(owner, generation_id)
    return RedirectResponse(f"/c/{generation.conversation_id}", status_code=303)


@stream_router.get("/generations/{generation_id}/stream")
async def browser_stream(request: Request, generation_id: str) -> Response:
    app = Services(request)  # every answer's route: no dependency to resolve
    generation = await app.runner.generation(generation_id, app.owner)
    if generation is None:
        raise NotFound("There is no such answer.")
    log = app.log
    last_event_id = request.headers.get("last-event-id")
    if last_event_id and await log.position(generation_id, last_event_id) is Position.AT_END:
        return Response(status_code=204)
    message = Message(
        id=generation.message_id,
        conversation_id=generation.conversation_id,
        role=Role.ASSISTANT,
        content="",
        status=MessageStatus.STREAMING,
        generation_id=generation.id,
        model=generation.model,
    )
    lifetime = app.settings.stream_lifetime
    frames = browser_frames(app.store, log, app.templates, message, generation, lifetime)
    return EventStreamResponse(frames, app.metrics, "browser")


SUGGESTIONS_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; "
    "sandbox allow-popups allow-popups-to-escape-sandbox"
)


@router.get("/generations/{generation_id}/suggestions", response_class=HTMLResponse)
async def search_suggestions(
    generation_id: str, store: StoreDep, templates: TemplatesDep, owner: OwnerDep
) -> Response:
    """Google's Search Suggestions chip, as Google requires it (its own HTML and CSS,
    unchanged), in a document of its own: the page shows it in a sandboxed iframe, so
    it has no script access to the page, and its narrow policy allows styles only."""
    generation = await store.get_generation(generation_id, owner)
    if generation is None or not generation.search_suggestions:
        raise NotFound("There are no search suggestions for this answer.")
    document = templates.page("suggestions.html", html=generation.search_suggestions)
    return HTMLResponse(
        document,
        headers={
            "Content-Security-Policy": SUGGESTIONS_POLICY,
            "Cache-Control": "private, max-age=3600",
        },
    )
