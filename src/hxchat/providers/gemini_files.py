"""What Gemini gets of a conversation's files: parts of the request, or the Files API (#11).

Gemini reads images and PDFs as themselves. Each goes as an inline part
(`inline_data`: the stored bytes, base64 in the JSON request) framed by its name
(`attachments.opening`); text files go as text parts, headed by their names. An image
in a format Gemini refuses (GIF) becomes a note rather than a failed answer.

The Gemini API takes inline data up to a request size of 20 MB
(`INLINE_REQUEST_BYTES`). Base64 turns 3 bytes into 4 and the conversation's text
needs room too, so one request carries at most `INLINE_BUDGET_BYTES` (14 MiB) of
files inline, counted over all its turns in order; a file that does not fit in what
is left goes through the Files API instead (`FilesApi`): uploaded once, then named by
its URI (`file_data`). Google keeps an upload for 48 hours; this process remembers
each upload's URI, by the content's SHA-256, for `KEEP_SECONDS`, so a big PDF is not
uploaded again for every answer of the conversation.

Vertex AI has no Files API (google-genai refuses it): there every file goes inline
and Vertex's own request limit applies (a refusal reads as any HTTP 400 does).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections import OrderedDict
from collections.abc import Callable

from google import genai
from google.genai import types

from hxchat.domain import Attachment, Role, Turn
from hxchat.errors import ProviderError, ProviderTimeout
from hxchat.providers.attachments import (
    CLOSING,
    PDF,
    Kind,
    as_text,
    kind_of,
    media_type_of,
    opening,
    unreadable,
)

#: the Gemini API's limit on a request that carries inline data
INLINE_REQUEST_BYTES = 20 * 1024 * 1024
#: the files' bytes one request may carry inline (base64: 4 bytes for 3; 1 MiB for text)
INLINE_BUDGET_BYTES = INLINE_REQUEST_BYTES * 3 // 4 - 1024 * 1024
#: how long an upload (and Google's processing of it) may take
UPLOAD_TIMEOUT = 120.0
#: how long an upload's URI is reused: Google deletes uploads after 48 hours
KEEP_SECONDS = 47 * 3600.0
#: how many uploads' URIs are remembered (the oldest are forgotten first)
KEEP_UPLOADS = 256
#: how often a file that Google is still processing is asked about
POLL_SECONDS = 1.0
#: the images and documents Gemini reads as themselves (not GIF: Gemini refuses it)
GEMINI_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif", PDF})


class FilesApi:
    """Uploads files through the Gemini Files API of a google-genai client.

    `client` gives the client at the time of the upload (ADK keeps one per event
    loop). Each content is uploaded once per `KEEP_SECONDS`.
    """

    def __init__(self, client: Callable[[], genai.Client]) -> None:
        self._client = client
        self._uploaded: OrderedDict[str, tuple[float, types.Part]] = OrderedDict()

    async def part(self, attachment: Attachment) -> types.Part:
        """A `file_data` part naming the uploaded file; raises `ProviderTimeout` when
        the upload takes over `UPLOAD_TIMEOUT`, the client's errors otherwise."""
        digest = await asyncio.to_thread(_sha256, attachment.data)  # ~25 ms of CPU for 20 MB
        key = f"{attachment.media_type} {digest}"
        known = self._uploaded.get(key)
        if known is not None and known[0] > time.monotonic():
            return known[1]
        try:
            async with asyncio.timeout(UPLOAD_TIMEOUT):
                part = await self._upload(attachment)
        except TimeoutError:
            raise ProviderTimeout(
                f"Sending the file {attachment.name} to the Gemini Files API took over "
                f"{UPLOAD_TIMEOUT:g} seconds. Please try again."
            ) from None
        self._uploaded[key] = (time.monotonic() + KEEP_SECONDS, part)
        while len(self._uploaded) > KEEP_UPLOADS:
            self._uploaded.popitem(last=False)
        return part

    async def _upload(self, attachment: Attachment) -> types.Part:
        files = self._client().aio.files
        config = types.UploadFileConfig(
            mime_type=attachment.media_type, display_name=attachment.name[:128]
        )
        uploaded = await files.upload(file=io.BytesIO(attachment.data), config=config)
        while uploaded.state == types.FileState.PROCESSING and uploaded.name:
            await asyncio.sleep(POLL_SECONDS)
            uploaded = await files.get(name=uploaded.name)
        if uploaded.state == types.FileState.FAILED or not uploaded.uri:
            raise ProviderError(f"Gemini could not read the file {attachment.name}.")
        return types.Part.from_uri(
            file_uri=uploaded.uri, mime_type=uploaded.mime_type or attachment.media_type
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RequestContents:
    """The contents of one request, turn by turn, with the inline bytes they use.

    Without `files` (Vertex AI, or a scripted model) every file goes inline.
    """

    def __init__(self, files: FilesApi | None, inline_budget: int = INLINE_BUDGET_BYTES) -> None:
        self._files = files
        self._left = inline_budget

    async def content(self, turn: Turn) -> types.Content:
        if turn.role is Role.ASSISTANT:
            return types.Content(role="model", parts=[types.Part(text=turn.content)])
        parts: list[types.Part] = []
        for attachment in turn.attachments:
            if kind_of(attachment) not in (Kind.IMAGE, Kind.PDF):
                parts.append(types.Part(text=as_text(attachment)))
            elif media_type_of(attachment) not in GEMINI_TYPES:
                parts.append(types.Part(text=unreadable(attachment)))
            else:
                parts.append(types.Part(text=opening(attachment)))
                parts.append(await self._file(attachment))
                parts.append(types.Part(text=CLOSING))
        if turn.content.strip() or not parts:
            parts.append(types.Part(text=turn.content))
        return types.Content(role="user", parts=parts)

    async def _file(self, attachment: Attachment) -> types.Part:
        size = len(attachment.data)
        if self._files is None or size <= self._left:
            self._left -= size
            return types.Part.from_bytes(data=attachment.data, mime_type=attachment.media_type)
        return await self._files.part(attachment)
