"""A multipart body read as it arrives, one part at a time, under limits.

Starlette's form parser hands the route the whole form only once the body has been
read; here the route gets each part as soon as it is complete, and a file that grows
past the limit is refused (413) at that moment, with the rest of the body never read.
A file's bytes go to a temporary file as they arrive (the process pool that judges it
reads it from there), so the worker's memory holds only the form's small text fields,
however large the files.

An empty file input of a browser form (a part with `filename=""` and no bytes) is no
file and is skipped.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import IO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from hxchat.errors import FileRefused, InvalidMessage


@dataclass
class Part:
    """One field of the form: a file (`filename` is not None, its bytes in `spool`) or
    a text field (its bytes in `data`). Whoever takes a file part calls `discard`."""

    name: str
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)
    spool: IO[bytes] | None = None
    size: int = 0

    @property
    def path(self) -> str:
        """Where a file part's bytes are (an empty file: a file with nothing in it)."""
        if self.spool is None:
            self.spool = _new_spool()
        self.spool.flush()
        return self.spool.name

    def discard(self) -> None:
        """Remove a file part's temporary file."""
        if self.spool is not None:
            self.spool.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.spool.name)
            self.spool = None


def _new_spool() -> IO[bytes]:
    return tempfile.NamedTemporaryFile(prefix="hxchat-upload-", delete=False)


@dataclass(frozen=True, slots=True)
class Limits:
    max_file_bytes: int
    max_files: int
    max_field_bytes: int


def too_large(limit_bytes: int) -> FileRefused:
    return FileRefused(f"The file is larger than {limit_bytes // 1_048_576} MB.", 413)


def too_many(max_files: int) -> FileRefused:
    return FileRefused(f"At most {max_files} files can be attached to one message.", 413)


class _Reader:
    """The parser's callbacks: they fill the current part, and check the limits."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.current = Part("")
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.disposition = b""
        self.done: list[Part] = []
        self.files = 0

    def on_part_begin(self) -> None:
        self.current = Part("")
        self.disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_field.lower() == b"content-disposition":
            self.disposition = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition.decode("latin-1"))
        self.current.name = options.get(b"name", b"").decode("latin-1")
        filename = options.get(b"filename")
        if filename is not None:
            self.current.filename = filename.decode("utf-8", errors="replace")
            if self.current.filename:  # "" is a browser's empty file input
                self.files += 1
                if self.files > self.limits.max_files:
                    raise too_many(self.limits.max_files)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.current
        if part.filename is not None:
            part.size += end - start
            if part.size > self.limits.max_file_bytes:
                raise too_large(self.limits.max_file_bytes)
            if part.spool is None:
                part.spool = _new_spool()
            part.spool.write(data[start:end])
            return
        part.data += data[start:end]
        if len(part.data) > self.limits.max_field_bytes:
            raise FileRefused(f"The field {part.name!r} is too long.", 413)

    def on_part_end(self) -> None:
        part = self.current
        if part.filename == "" and not part.size:
            part.discard()
            return
        self.done.append(part)

    def discard_all(self) -> None:
        """The parts nobody took: their temporary files go."""
        self.current.discard()
        for part in self.done:
            part.discard()
        self.done.clear()


async def read_parts(request: Request, limits: Limits) -> AsyncGenerator[Part, None]:
    """The parts of a `multipart/form-data` body, each as soon as it has arrived whole."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise InvalidMessage("Send the file as multipart/form-data.")
    reader = _Reader(limits)
    callbacks = {
        "on_part_begin": reader.on_part_begin,
        "on_header_field": reader.on_header_field,
        "on_header_value": reader.on_header_value,
        "on_header_end": reader.on_header_end,
        "on_headers_finished": reader.on_headers_finished,
        "on_part_data": reader.on_part_data,
        "on_part_end": reader.on_part_end,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                while reader.done:
                    yield reader.done.pop(0)
            parser.finalize()
        except FormParserError:
            raise InvalidMessage("The form is malformed.") from None
        while reader.done:
            yield reader.done.pop(0)
    finally:  # refused, or the caller stopped reading: nothing is left on disk
        reader.discard_all()
