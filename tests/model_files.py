"""Small real files for the tests of what models get (#11): PNGs and a PDF built by hand.

A PNG here is a valid image any decoder opens (signature, IHDR, zlib-compressed
IDAT, CRCs), made with the standard library so these tests need no imaging library.
"""

from __future__ import annotations

import struct
import zlib

from hxchat.domain import Attachment, Role, Turn


def png(width: int = 4, height: int = 3, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A `width` x `height` PNG of one colour."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def pdf(text: str = "Revenue grew 12%.") -> bytes:
    """A one-page PDF that shows `text`."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def image(name: str = "cat.png", data: bytes | None = None) -> Attachment:
    return Attachment(name, "image/png", png() if data is None else data)


def document(name: str = "report.pdf", text: str | None = "Revenue grew 12%.") -> Attachment:
    """A PDF as the store gives it: the file, and the text extracted from it (None or
    "" when there was none)."""
    return Attachment(name, "application/pdf", pdf(text or ""), text)


def text_file(name: str = "notes.md", text: str = "# Notes\nBuy milk.") -> Attachment:
    return Attachment(name, "text/markdown", text.encode(), text)


def said(text: str, *files: Attachment) -> Turn:
    """A user's message with files."""
    return Turn(Role.USER, text, tuple(files))


def answered(text: str) -> Turn:
    return Turn(Role.ASSISTANT, text)
