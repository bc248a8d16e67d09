"""Feedback on answers (#12): the JSON API and the page's toggles.

`PUT /api/messages/{id}/feedback` sets an answer's rating (`up`, `down`, or null) and,
when the body names it, its comment (null or "" clears it; absent keeps it). The page's
`Good answer` / `Bad answer` are a plain form that posts the rating and is redirected
back to the answer; with htmx the buttons alone are swapped. (`/metrics` counts the
ratings by model, from the database: `web/api.py`.)
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict

from hxchat.errors import InvalidMessage, MessageTooLong
from hxchat.store.feedback import COMMENT_CHARS, RATINGS
from hxchat.web.checks import parse_message_id
from hxchat.web.deps import FeedbackDep, OwnerDep, TemplatesDep
from hxchat.web.pages import VARY, is_htmx

router = APIRouter()


class Rating(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rating: Literal["up", "down"] | None  # required: null says "no rating"
    comment: str | None = None


def checked_comment(comment: str | None) -> str | None:
    """The comment as it will be kept (None for none), or a 413 a person can read."""
    if comment is None or not comment.strip():
        return None
    if len(comment) > COMMENT_CHARS:
        raise MessageTooLong(
            f"The comment has {len(comment):,} characters; the limit is {COMMENT_CHARS:,}."
        )
    return comment


@router.put("/api/messages/{message_id}/feedback", status_code=204)
async def put_feedback(
    message_id: str, body: Rating, feedback: FeedbackDep, owner: OwnerDep
) -> Response:
    answer = parse_message_id(message_id)
    comment = checked_comment(body.comment)
    keep = "comment" not in body.model_fields_set
    await feedback.rate(owner, answer, body.rating, comment, keep_comment=keep)
    return Response(status_code=204)


@router.post("/c/{conversation_id}/messages/{message_id}/feedback")
async def rate_page(
    request: Request,
    conversation_id: str,
    message_id: str,
    feedback: FeedbackDep,
    templates: TemplatesDep,
    owner: OwnerDep,
    rating: Annotated[str, Form()] = "",
) -> Response:
    """The toggles' form: `rating` up, down, or empty (the pressed one turned off)."""
    answer = parse_message_id(message_id)
    if rating and rating not in RATINGS:
        raise InvalidMessage("A rating is up or down.")
    now = await feedback.rate(
        owner, answer, rating or None, keep_comment=True, conversation_id=conversation_id
    )
    if not is_htmx(request):
        return RedirectResponse(f"/c/{conversation_id}#msg-{answer}", status_code=303)
    html = templates.macro("_message.html", "feedback_buttons", conversation_id, answer, now)
    return HTMLResponse(html, headers=VARY)
