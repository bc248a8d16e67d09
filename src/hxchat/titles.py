"""Titles written by the model after a conversation's first answer (#12).

The first message gives a conversation its title at once (`records.make_title`); with
`HXCHAT_TITLES=model` the store marks that title "pending" (`store/library.py`), and
once the first answer has ended, its model is asked for a better one: a short request
of its own, not streamed (`providers.base.TitleWriter`). That request runs here, in
the background of the worker that wrote the answer, after the answer's final event:
it can never delay or break the answer. It is bounded (`TITLE_TIMEOUT`); whatever
happens (no `title` capability, as the echo model; an error; a slow model; a reply
with nothing usable) the conversation ends up with a title that is no longer pending:
the model's, cleaned, or the first message's. A title the user chose meanwhile is never
overwritten (the write is conditional on "pending").

The page learns of the new title by asking while it is pending (`web/library_pages.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from hxchat.domain import MessageStatus, Role
from hxchat.errors import HxchatError, ProviderError
from hxchat.providers.base import ChatModel, TitleWriter
from hxchat.store.base import TurnStarted
from hxchat.store.library import Library
from hxchat.store.records import TITLE_CHARS, make_title

logger = logging.getLogger(__name__)

TITLE_TIMEOUT = 10.0  # seconds the model has to write a title
# Answers after which a title is asked for: the model said something worth naming.
TITLED_STATUSES = frozenset({MessageStatus.COMPLETE, MessageStatus.STOPPED})

# Quotation marks of many languages, by code point (some look like other characters).
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u201e\u00ab\u00bb\u2039\u203a\u300c\u300d\u300e\u300f"
_LABEL = re.compile(r"^\s*(?:\*\*)?title(?:\*\*)?\s*:\s*", re.IGNORECASE)
_MARKS = re.compile(r"[*_~`#<>\[\]]+")


def clean_title(raw: str) -> str | None:
    """The model's reply as a title: its first line with text, without a "Title:"
    label, quotes, Markdown or markup marks and a final full stop, whitespace collapsed,
    at most `TITLE_CHARS` characters (cut at a word). None when nothing is left."""
    line = next((line for line in raw.splitlines() if line.strip()), "")
    text = _MARKS.sub("", _LABEL.sub("", line))
    text = " ".join(text.split()).strip(_QUOTES + " ").rstrip(".。!:;,").strip(_QUOTES + " ")
    if not text:
        return None
    return make_title(text, TITLE_CHARS)


class Titles:
    """The title requests of this worker: started after first answers, cancelled at
    shutdown (the title then stays the first message's)."""

    def __init__(self, library: Library, timeout: float = TITLE_TIMEOUT) -> None:
        self.library = library
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    def after_answer(
        self, started: TurnStarted, model: ChatModel, text: str, status: MessageStatus
    ) -> None:
        """The answer `started` ended with `text` and `status`: ask its model for the
        conversation's title, if this was a first answer whose title is pending."""
        if not started.wants_title:
            return
        question = next((t.content for t in reversed(started.history) if t.role is Role.USER), "")
        task = asyncio.create_task(
            self._title(started.conversation_id, model, question, text, status),
            name=f"hxchat-title-{started.conversation_id}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _title(
        self,
        conversation_id: str,
        model: ChatModel,
        question: str,
        answer: str,
        status: MessageStatus,
    ) -> None:
        title = None
        if status in TITLED_STATUSES and answer.strip() and isinstance(model, TitleWriter):
            title = await self._ask(conversation_id, model, question, answer)
        try:
            if title is not None:
                await self.library.write_model_title(conversation_id, title)
            else:
                await self.library.keep_title(conversation_id)
        except HxchatError as exc:  # the database is away: the first message's title shows
            logger.warning("could not store the title of %s: %s", conversation_id, exc.detail)

    async def _ask(
        self, conversation_id: str, model: TitleWriter, question: str, answer: str
    ) -> str | None:
        name = getattr(model, "name", "the model")
        try:
            async with asyncio.timeout(self.timeout):  # also when a provider ignores it
                return clean_title(await model.title(question, answer, self.timeout))
        except TimeoutError:
            reason = f"no reply within {self.timeout:g} s"
        except ProviderError as exc:  # a sentence for people: no key, no trace
            reason = exc.detail
        except Exception as exc:  # a provider's bug must not leave the title pending
            reason = f"unexpected {type(exc).__name__}"
        logger.info("%s wrote no title for %s (%s)", name, conversation_id, reason)
        return None

    async def close(self) -> None:
        """Cancel the requests still running."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
