"""The JSON API for programs (docs/api.md), plus /healthz and /metrics.

Stable JSON under `/api/`; pages and fragments change with the UI (two APIs on
purpose). Same session cookie as the UI: a program that never loads a page starts
with `POST /api/conversations` and keeps the cookie it gets.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, field_validator

from hxchat.errors import HxchatError, NotFound, StoreUnavailable
from hxchat.metrics import CONTENT_TYPE
from hxchat.providers.catalogue import Catalogue
from hxchat.store.base import Conversation, Message, TurnStarted
from hxchat.web.checks import checked_message, parse_message_id
from hxchat.web.deps import (
    FeedbackDep,
    LimitsDep,
    LogDep,
    MetricsDep,
    ModelsDep,
    OwnerDep,
    RunnerDep,
    Services,
    SettingsDep,
    StoreDep,
)
from hxchat.web.json_stream import json_events

logger = logging.getLogger(__name__)
router = APIRouter()
# The routes of every answer, on a router of their own that the app includes first:
# FastAPI tries routes in order, each try a few microseconds (bench/README.md).
answer_router = APIRouter()
HEALTH_TIMEOUT = 3.0


class NewMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())
    content: str
    model: str | None = None  # one of `GET /api/models`; else the conversation's


class NewTurn(NewMessage):
    content: str = ""  # may be left out when files are given (#11)
    files: list[str] = []  # ids from `POST /api/files`, in order (#11)

    @field_validator("files")
    @classmethod
    def _once_each(cls, ids: list[str]) -> list[str]:
        """A file named twice is attached once, where it was first named."""
        return list(dict.fromkeys(ids))


class Regeneration(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())
    model: str | None = None


def _message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "role": m.role.value,
        "content": m.content,
        "status": m.status.value,
        "sources": [s.as_json() for s in m.sources],
        "parent_id": m.parent_id,
        "versions": list(m.versions),
        "model": m.model,
        "files": [f.as_json() for f in m.files],
        "feedback": m.feedback.as_json() if m.feedback else None,
        "usage": m.usage.as_json() if m.usage is not None else None,
        "timing": m.timing.as_json() if m.timing is not None else None,
    }


def conversation_model(conversation: Conversation, models: Catalogue) -> str:
    """The model the conversation goes on with: its last answer's, else the default."""
    last = conversation.messages[-1].model if conversation.messages else None
    return models.current(last)


def conversation_json(conversation: Conversation, models: Catalogue) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "model": conversation_model(conversation, models),
        "pinned": conversation.pinned,
        "instructions": conversation.instructions,
        "messages": [_message_json(m) for m in conversation.messages],
    }


def _started_json(message_id: int | None, started: TurnStarted) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "generation_id": started.generation_id,
        "events_url": _events_url(started.generation_id),
    }


def _events_url(generation_id: str) -> str:
    return f"/api/generations/{generation_id}/events"


@router.post("/api/conversations", status_code=201)
async def create_conversation(store: StoreDep, owner: OwnerDep) -> dict[str, str]:
    return {"id": await store.create_conversation(owner)}


@router.get("/api/conversations")
async def list_conversations(store: StoreDep, owner: OwnerDep) -> list[dict[str, Any]]:
    """Pinned ones first, each group by last activity (#12)."""
    return [
        {"id": c.id, "title": c.title, "updated_at": c.updated_at.isoformat(), "pinned": c.pinned}
        for c in await store.list_conversations(owner)
    ]


@router.get("/api/models")
async def list_models(models: ModelsDep) -> list[dict[str, Any]]:
    """The models offered, the default first."""
    return [info.as_json() for info in models.models]


@router.get("/api/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: str, store: StoreDep, owner: OwnerDep, models: ModelsDep
) -> Any:
    conversation = await store.get_conversation(owner, conversation_id)
    if conversation is None:
        raise NotFound()
    return conversation_json(conversation, models)


@router.delete("/api/conversations/{conversation_id}", status_code=204)
async def delete_conversation(
    conversation_id: str, runner: RunnerDep, owner: OwnerDep, request: Request
) -> Response:
    await runner.delete_conversation(owner, conversation_id)
    await request.app.state.files.purge(owner)  # the contents only its messages used
    return Response(status_code=204)


@answer_router.post("/api/conversations/{conversation_id}/messages", status_code=202)
async def post_message(conversation_id: str, body: NewTurn, request: Request) -> dict[str, Any]:
    app = Services(request)  # every answer's route: no dependency to resolve
    runner, owner = app.runner, app.owner
    content = checked_message(body.content, app.settings, body.files)
    runner.choose(body.model)  # an unknown model: 422, before the rate counts it
    async with app.limits.message(owner):
        started = await runner.send(owner, conversation_id, content, body.model, body.files)
    return _started_json(started.user_message_id, started)


@router.post("/api/conversations/{conversation_id}/retry", status_code=202)
async def retry(
    conversation_id: str, runner: RunnerDep, owner: OwnerDep, limits: LimitsDep
) -> dict[str, Any]:
    async with limits.message(owner):
        started = await runner.retry(owner, conversation_id)
    return {
        "generation_id": started.generation_id,
        "events_url": _events_url(started.generation_id),
    }


# -- versions: a message's id is unique across conversations, so these routes name it
# alone; another owner's message is a 404 like one that does not exist.


@router.post("/api/messages/{message_id}/edit", status_code=202)
async def edit_message(
    message_id: str,
    body: NewMessage,
    runner: RunnerDep,
    settings: SettingsDep,
    owner: OwnerDep,
    limits: LimitsDep,
) -> dict[str, Any]:
    content = checked_message(body.content, settings)
    runner.choose(body.model)
    async with limits.message(owner):
        started = await runner.edit(owner, parse_message_id(message_id), content, model=body.model)
    return _started_json(started.user_message_id, started)


@router.post("/api/messages/{message_id}/regenerate", status_code=202)
async def regenerate(
    message_id: str,
    runner: RunnerDep,
    owner: OwnerDep,
    limits: LimitsDep,
    body: Regeneration | None = None,
) -> dict[str, Any]:
    model = body.model if body is not None else None
    runner.choose(model)
    async with limits.message(owner):
        started = await runner.regenerate(owner, parse_message_id(message_id), model=model)
    return _started_json(started.assistant_message_id, started)


@router.post("/api/messages/{message_id}/select")
async def select_version(
    message_id: str, store: StoreDep, owner: OwnerDep, limits: LimitsDep, models: ModelsDep
) -> dict[str, Any]:
    selected = parse_message_id(message_id)
    async with limits.message(owner, starts_answer=False):
        conversation = await store.select_version(owner, selected)
    return conversation_json(conversation, models)


@answer_router.get("/api/generations/{generation_id}/events")
async def events(request: Request, generation_id: str) -> Response:
    app = Services(request)  # every answer's route: no dependency to resolve
    generation = await app.runner.generation(generation_id, app.owner)
    if generation is None:
        raise NotFound("There is no such generation.")
    last_event_id = request.headers.get("last-event-id") or None
    return await json_events(
        app.store, app.log, generation, last_event_id, app.settings.stream_lifetime, app.metrics
    )


@router.post("/api/generations/{generation_id}/cancel", status_code=202)
async def cancel(generation_id: str, runner: RunnerDep, owner: OwnerDep) -> dict[str, str]:
    await runner.cancel(owner, generation_id)
    return {"status": "accepted"}


@router.get("/healthz")
async def healthz(store: StoreDep, log: LogDep) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, probe in (("store", store.ping), ("broker", log.ping)):
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await probe()
            checks[name] = "ok"
        except HxchatError as exc:
            checks[name] = exc.detail
        except TimeoutError:
            checks[name] = f"no answer within {HEALTH_TIMEOUT:g} seconds"
    if all(v == "ok" for v in checks.values()):
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable", "checks": checks}, status_code=503)


@router.get("/metrics")
async def metrics_endpoint(metrics: MetricsDep, feedback: FeedbackDep) -> Response:
    try:  # ratings by model, counted by the database, so every worker agrees (#12)
        metrics.set_ratings(await feedback.counts())
    except StoreUnavailable as exc:  # the last figures stay; the scrape still answers
        logger.warning("ratings not counted for /metrics: %s", exc.detail)
    return Response(metrics.render(), media_type=CONTENT_TYPE)
