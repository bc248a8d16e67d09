"""What a model gets of a user's files, in the words every provider shares (#11).

A provider sends a file in one of two ways: as itself (an image or a PDF, to a model
that reads it) or as text. The text forms live here so that Gemini and the
OpenAI-compatible models say the same thing, and so that the history budget
(`history.py`) counts what is actually sent:

- a text file (or a PDF's extracted text) is its text between `<file name="…">` and
  `</file>`, so the model knows which file a line came from;
- a file the model cannot take as itself, and that has no text, is a short note in
  the same tags: an image for a model without vision, a PDF without extractable text.

A file sent as itself is framed by the same tags around the image or document part.
"""

from __future__ import annotations

import html
from enum import StrEnum

from hxchat.domain import Attachment

#: what one image costs in the history budget, in characters. About 1,000 tokens at
#: about 4 characters a token: OpenAI's high-detail price of a 2,048-px image is 765 to
#: 1,105 tokens, Gemini's 258 tokens per 768-px tile makes 1,000 to 1,500.
IMAGE_COST_CHARS = 4_000

PDF = "application/pdf"
# Text that is not `text/*` but is still a text file.
_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/x-ndjson"})


class Kind(StrEnum):
    IMAGE = "image"
    PDF = "pdf"
    TEXT = "text"
    OTHER = "other"


def media_type_of(attachment: Attachment) -> str:
    """The file's media type without parameters: `text/plain` of `text/plain; charset=utf-8`."""
    return attachment.media_type.partition(";")[0].strip().lower()


def kind_of(attachment: Attachment) -> Kind:
    """What a file is to a model, from the type found in its content."""
    media_type = media_type_of(attachment)
    if media_type.startswith("image/"):
        return Kind.IMAGE
    if media_type == PDF:
        return Kind.PDF
    if media_type.startswith("text/") or media_type in _TEXT_TYPES:
        return Kind.TEXT
    return Kind.OTHER


def opening(attachment: Attachment) -> str:
    """The tag that heads a file: `<file name="notes.md">` (the name HTML-escaped, so
    that a name cannot close the tag early)."""
    return f'<file name="{html.escape(attachment.name, quote=True)}">'


CLOSING = "</file>"


def text_of(attachment: Attachment) -> str:
    """The file's text: what the store extracted, else (a text file) its UTF-8 bytes."""
    if attachment.text is not None:
        return attachment.text
    if kind_of(attachment) is Kind.TEXT:
        return attachment.data.decode("utf-8", errors="replace")
    return ""


def note(attachment: Attachment) -> str:
    """Why the model gets no content for a file, addressed to the model."""
    match kind_of(attachment):
        case Kind.IMAGE:
            return (
                "(The user attached an image here that you cannot see: this model does not "
                "accept images. Say so if the question needs it.)"
            )
        case Kind.PDF:
            return (
                "(The user attached a PDF here, but no text could be extracted from it; it "
                "may hold only scanned pages.)"
            )
        case Kind.TEXT:
            return "(The user attached an empty file here.)"
        case Kind.OTHER:
            return (
                f"(The user attached a file of type {attachment.media_type} here that you "
                "cannot read.)"
            )


def as_text(attachment: Attachment, *, sees_images: bool = False) -> str | None:
    """The file as text for a model: its text or a note, headed by its name; None when
    the model takes it as itself (an image, to a model with `sees_images`)."""
    if sees_images and kind_of(attachment) is Kind.IMAGE:
        return None
    text = text_of(attachment) if kind_of(attachment) is not Kind.IMAGE else ""
    body = f"\n{text}\n" if text.strip() else note(attachment)
    return f"{opening(attachment)}{body}{CLOSING}"


def unreadable(attachment: Attachment) -> str:
    """A file of a kind the model reads, in a format it does not (a GIF to Gemini)."""
    return (
        f"{opening(attachment)}(The user attached a file here in a format this model "
        f"cannot read: {attachment.media_type}.){CLOSING}"
    )


def cost(attachment: Attachment) -> int:
    """What a file costs in the history budget, in characters: an image
    `IMAGE_COST_CHARS`; any other file the length of the text a model gets for it (a
    PDF at least `IMAGE_COST_CHARS`, as Gemini reads it as pages)."""
    if kind_of(attachment) is Kind.IMAGE:
        return IMAGE_COST_CHARS
    length = len(as_text(attachment) or "")
    return max(length, IMAGE_COST_CHARS) if kind_of(attachment) is Kind.PDF else length
