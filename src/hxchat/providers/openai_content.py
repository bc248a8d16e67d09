"""A user's message as an OpenAI-compatible model gets it, files included (#11).

Without files, or when every file goes as text, the message is one string: every
OpenAI-compatible server reads that. Only a model in `HXCHAT_VISION_MODELS` given an
image gets content parts, the image as an `image_url` data URL (base64 of the stored,
already re-encoded bytes: no URL that the server would have to fetch). Files come
before the typed text, each framed by its name (`attachments.py`); a PDF gets its
extracted text, since Chat Completions has no portable way to send a document.
"""

from __future__ import annotations

import base64

from openai.types.chat import ChatCompletionContentPartParam

from hxchat.domain import Attachment, Turn
from hxchat.providers.attachments import CLOSING, as_text, opening


def user_content(turn: Turn, *, sees_images: bool) -> str | list[ChatCompletionContentPartParam]:
    """The `content` of a user message: a string, or parts when it carries images."""
    texts: list[str] = []  # text not yet put in a part
    parts: list[ChatCompletionContentPartParam] = []
    for attachment in turn.attachments:
        text = as_text(attachment, sees_images=sees_images)
        if text is not None:
            texts.append(text)
            continue
        texts.append(opening(attachment))
        parts.append({"type": "text", "text": "\n\n".join(texts)})
        parts.append({"type": "image_url", "image_url": {"url": data_url(attachment)}})
        texts = [CLOSING]
    if turn.content.strip():
        texts.append(turn.content)
    if not parts:
        return "\n\n".join(texts)
    if texts:
        parts.append({"type": "text", "text": "\n\n".join(texts)})
    return parts


def data_url(attachment: Attachment) -> str:
    """`data:image/png;base64,…`: the image itself, in the request."""
    encoded = base64.b64encode(attachment.data).decode("ascii")
    return f"data:{attachment.media_type};base64,{encoded}"
