"""Hostile and ordinary files for the attachment tests, made here from scratch (#11).

Each function returns the bytes of one file; none of them is read from disk, so the
corpus cannot drift from what the tests say it is.
"""

from __future__ import annotations

import io
import zipfile

from PIL import ExifTags, Image
from pypdf import PdfWriter
from pypdf.actions import JavaScript

GPS_LATITUDE = (48.0, 51.0, 24.0)


def png(width: int = 64, height: int = 48, mode: str = "RGB") -> bytes:
    image = Image.new(mode, (width, height))
    for x in range(min(width, 64)):  # some pixels, so that the file is not trivial
        image.putpixel((x, x % height), (x * 4, 255 - x * 4, 128) if mode == "RGB" else 1)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps(width: int = 3000, height: int = 1000) -> bytes:
    """A photo whose EXIF says where it was taken, with a comment."""
    image = Image.new("RGB", (width, height), (200, 120, 40))
    exif = image.getexif()
    exif[ExifTags.Base.Make] = "hxchat-test-camera"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_LATITUDE
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"secret comment")
    return out.getvalue()


def decompression_bomb() -> bytes:
    """A PNG of a few kilobytes that decodes to 100 million pixels."""
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG", optimize=True)
    return out.getvalue()


def huge_jpeg_header() -> bytes:
    """A small JPEG whose frame header claims 30000 x 30000 pixels."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (30_000).to_bytes(2, "big") * 2  # height, width
    return bytes(data)


def truncated_png() -> bytes:
    image = Image.effect_noise((400, 400), 64).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    whole = out.getvalue()
    return whole[: len(whole) // 2]


SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>document.title='svg-ran'</script></svg>"
)
HTML_PAGE = b"<!doctype html><html><body><script>document.title='html-ran'</script></body></html>"


def gif_js_polyglot() -> bytes:
    """A GIF whose header doubles as the start of a JavaScript comment."""
    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "GIF")
    data = bytearray(out.getvalue())
    data[6:8] = b"/*"  # the logical screen width: `GIF89a/*` opens a comment
    return bytes(data) + b"*/=document.title='gif-ran';//"


def pdf(text: str = "", javascript: str | None = None, password: str | None = None) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(200, 200)
    if javascript is not None:
        writer.add_open_action(JavaScript(javascript))
    if password is not None:
        writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("inside.txt", "hello")
    return out.getvalue()


UTF16_TEXT = "hello, world".encode("utf-16")
BINARY = bytes(range(256)) * 8
