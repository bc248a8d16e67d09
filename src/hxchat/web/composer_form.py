"""The composer's form as `POST /send` receives it: urlencoded, or multipart with files.

Without JavaScript the browser posts the files themselves (field `file`, several at
once); they are judged and kept one by one as they arrive (`Files.keep`). Files kept
by an earlier try of the same message come back as `files` (their ids), so that an
error (a file too large, one hxchat cannot read) loses neither the typed text nor the
other files: the page shows them again with the error beside the composer.

A refused file does not stop the others: the form is read to its end and every good
file is kept. Only a file over the size limit, or one too many, stops the reading
(the rest of the body is read and dropped, so that the browser gets the page). A file
storage that cannot be reached (503) is an error beside the composer too: the text
stays, and the later files are not tried against a store that just failed.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass, field

from starlette.requests import ClientDisconnect, Request

from hxchat.errors import FileRefused, HxchatError, NotFound, ServiceUnavailable
from hxchat.files.service import Files
from hxchat.files.uploads import read_parts
from hxchat.store.base import StoredFile

FILE_ID_CHARS = 32


@dataclass
class ComposerForm:
    content: str = ""
    conversation_id: str = ""
    model: str = ""
    files: list[StoredFile] = field(default_factory=list)  # kept, in order
    refused: list[FileRefused] = field(default_factory=list)
    unavailable: ServiceUnavailable | None = None  # the file storage failed

    @property
    def file_ids(self) -> list[str]:
        return [f.id for f in self.files]

    @property
    def error(self) -> HxchatError | None:
        """The storage's failure, else the first refusal with every sentence (one per
        refused file)."""
        if self.unavailable is not None:
            return self.unavailable
        if not self.refused:
            return None
        sentences = list(dict.fromkeys(r.detail for r in self.refused))
        return FileRefused(" ".join(sentences), self.refused[0].status_code)


async def read_composer(request: Request, files: Files, owner: str) -> ComposerForm:
    form = ComposerForm()
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        fields = await request.form()
        form.content = str(fields.get("content", ""))
        form.conversation_id = str(fields.get("conversation_id", ""))
        form.model = str(fields.get("model", ""))
        await _add_kept(form, files, owner, [str(v) for v in fields.getlist("files")])
        return form
    try:
        async with aclosing(read_parts(request, files.limits)) as parts:
            async for part in parts:
                if part.filename is not None:
                    if form.unavailable is not None:
                        part.discard()
                        continue
                    try:
                        form.files.append(await files.keep(owner, part))
                    except FileRefused as exc:
                        form.refused.append(_named(exc, part.filename))
                    except ServiceUnavailable as exc:
                        form.unavailable = exc
                    continue
                value = part.data.decode("utf-8", errors="replace")
                if part.name == "content":
                    form.content = value.replace("\r\n", "\n")
                elif part.name == "conversation_id":
                    form.conversation_id = value
                elif part.name == "model":
                    form.model = value
                elif part.name == "files":
                    await _add_kept(form, files, owner, [value])
    except FileRefused as exc:  # too large, or too many: the rest is not read
        form.refused.append(exc)
        await _drain(request)
    return form


def _named(exc: FileRefused, filename: str) -> FileRefused:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1][:80]
    return FileRefused(f"{name}: {exc.detail}" if name else exc.detail, exc.status_code)


async def _add_kept(form: ComposerForm, files: Files, owner: str, ids: list[str]) -> None:
    for file_id in ids:
        if not file_id or len(file_id) > FILE_ID_CHARS or file_id in form.file_ids:
            continue  # not an id, or one already kept: a file is attached once
        try:
            form.files.append(await files.find(owner, file_id))
        except NotFound:
            continue  # deleted since, or never one's own: simply not kept


async def _drain(request: Request) -> None:
    """Read what is left of the body without keeping it (bounded by the body limit)."""
    try:
        async for _ in request.stream():
            pass
    except (ClientDisconnect, RuntimeError):
        pass
