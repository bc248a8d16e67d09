"""What an uploaded file is, and the safe form hxchat keeps of it.

The type is decided from the bytes (`filetype` reads the magic numbers), never from
the name or the declared type. Then:

- images (PNG, JPEG, WebP, GIF): opened by Pillow, refused above `MAX_PIXELS` before
  anything is decoded (a decompression bomb is a tiny file that claims a huge image),
  then decoded and re-encoded: turned upright by its EXIF orientation, then without any
  metadata (EXIF, GPS, comments, colour profiles), longest side at most 2,048 px; a GIF
  keeps its first frame, as a PNG. What is stored is only what Pillow wrote.
- PDF: opened by pypdf for its text; an encrypted or broken one is refused with a
  sentence (422), never an error page. The document is kept as it came: it is served
  only as a download in a sandbox, never rendered by hxchat.
- text: UTF-8 (a UTF-8 byte-order mark is dropped), without NUL characters; SVG, which
  is text, is refused (an image that can carry script).

Everything here is CPU work on bytes, with no I/O: `Files` runs it in a process pool,
so that decoding a 20 MB photo or reading a long PDF never stalls the event loop.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

import filetype
from PIL import Image, ImageOps, UnidentifiedImageError
from pypdf import PdfReader

MAX_PIXELS = 50_000_000  # a 50-megapixel photo is fine; a bomb claims far more
MAX_SIDE = 2048
MAX_PDF_TEXT_CHARS = 2_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard agrees with ours
TEXT = "text/plain"
PDF = "application/pdf"

# What each accepted image is re-encoded as (a GIF keeps its first frame, as a PNG).
_IMAGE_OUTPUT = {
    "image/png": ("PNG", "image/png"),
    "image/jpeg": ("JPEG", "image/jpeg"),
    "image/webp": ("WEBP", "image/webp"),
    "image/gif": ("PNG", "image/png"),
}
# How a refused kind is named in `hxchat cannot read <what it is> files.`
_KIND_NAMES = {"application/zip": "ZIP", "application/gzip": "gzip", "image/svg+xml": "SVG"}
_SVG = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+svg[^>]*>\s*)?(?:<!--.*?-->\s*)*<svg[\s>/]",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Processed:
    """What is stored of an accepted file."""

    media_type: str
    data: bytes
    sha256: str
    text: str | None  # a PDF's extracted text, a text file's text; None for images


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a file is refused, as the status and sentence the client gets."""

    status: int
    detail: str


def cannot_read(what: str) -> Refused:
    return Refused(415, f"hxchat cannot read {what} files.")


def process_file(path: str) -> Processed | Refused:
    """`process` of the bytes in the file at `path` (an upload's temporary file): what
    the process pool runs, so that the upload never travels through a pipe."""
    with open(path, "rb") as file:
        return process(file.read())


def process(raw: bytes | bytearray) -> Processed | Refused:
    """The stored form of an uploaded file, or why it is refused."""
    if not raw:
        return Refused(422, "The file is empty.")
    kind = filetype.guess(raw)
    if kind is None:
        return _text(raw)
    if kind.mime in _IMAGE_OUTPUT:
        return _image(raw, *_IMAGE_OUTPUT[kind.mime])
    if kind.mime == PDF:
        return _pdf(raw)
    return cannot_read(_KIND_NAMES.get(kind.mime, kind.extension.upper()))


def _stored(media_type: str, data: bytes, text: str | None) -> Processed:
    return Processed(media_type, data, hashlib.sha256(data).hexdigest(), text)


def _image(raw: bytes | bytearray, output_format: str, media_type: str) -> Processed | Refused:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(raw))
            width, height = image.size
            if width * height > MAX_PIXELS:
                return _too_many_pixels(width, height)
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale
            image.seek(0)  # a GIF's first frame
            image.load()
            image = ImageOps.exif_transpose(image)  # upright before EXIF goes
            image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            image = _plain_mode(image, output_format)
            image.info.clear()  # comments, EXIF, ICC: Pillow would write what it keeps here
            out = io.BytesIO()
            options: dict[str, object] = {"optimize": True}
            if output_format in ("JPEG", "WEBP"):
                options["quality"] = 88
            image.save(out, output_format, **options)  # no exif, icc_profile or text given
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Refused(413, "The image has too many pixels to be read safely.")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        return Refused(422, "The image is damaged or incomplete: hxchat cannot read it.")
    return _stored(media_type, out.getvalue(), None)


def _too_many_pixels(width: int, height: int) -> Refused:
    return Refused(
        413,
        f"The image is {width:,} x {height:,} pixels; the limit is "
        f"{MAX_PIXELS // 1_000_000} million pixels.",
    )


def _plain_mode(image: Image.Image, output_format: str) -> Image.Image:
    """A mode the output format writes: RGB for JPEG, RGB(A) for the others (a
    palette or 16-bit image is converted, which also drops palette tricks)."""
    if output_format == "JPEG":
        return image.convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _pdf(raw: bytes | bytearray) -> Processed | Refused:
    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            return Refused(422, "The PDF is encrypted: hxchat cannot read it.")
        parts: list[str] = []
        chars = 0
        for page in reader.pages:
            text = page.extract_text() or ""
            parts.append(text)
            chars += len(text)
            if chars >= MAX_PDF_TEXT_CHARS:
                break
    except Exception:  # pypdf raises many kinds on a broken file; all mean "unreadable"
        return Refused(422, "The PDF is damaged: hxchat cannot read it.")
    return _stored(PDF, bytes(raw), "\n\n".join(parts)[:MAX_PDF_TEXT_CHARS])


def _text(raw: bytes | bytearray) -> Processed | Refused:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return cannot_read("UTF-16 text")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return cannot_read("binary")
    if "\x00" in text:
        return cannot_read("binary")
    data = text.encode()  # without a byte-order mark
    if _SVG.match(data[:4096]):
        return cannot_read("SVG")
    return _stored(TEXT, data, text)
