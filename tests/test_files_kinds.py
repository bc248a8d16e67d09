"""What each accepted kind of file becomes (#11): the type is found from the bytes,
whatever the name or the declared type says; WebP stays WebP, a GIF keeps its first
frame, and every kind of UTF-8 text is text."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image

from tests import hostile_files as hostile


def picture(output_format: str, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, output_format)
    return out.getvalue()


def two_frame_gif() -> bytes:
    frames = [Image.new("RGB", (40, 30), c) for c in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


async def kept(client: httpx.AsyncClient, name: str, data: bytes, declared: str) -> httpx.Response:
    response = await client.post("/api/files", files={"file": (name, data, declared)})
    assert response.status_code == 201, response.text
    served = await client.get(f"/api/files/{response.json()['id']}")
    assert served.status_code == 200
    return served


async def test_a_webp_is_kept_as_a_webp_shown_inline(client: httpx.AsyncClient) -> None:
    served = await kept(client, "leaf.webp", picture("WEBP", (0, 160, 0)), "image/webp")
    assert served.headers["content-type"] == "image/webp"
    assert served.headers["content-disposition"] == "inline"
    assert Image.open(io.BytesIO(served.content)).format == "WEBP"


async def test_a_gif_keeps_its_first_frame_only(client: httpx.AsyncClient) -> None:
    served = await kept(client, "blink.gif", two_frame_gif(), "image/gif")
    image = Image.open(io.BytesIO(served.content))
    assert getattr(image, "n_frames", 1) == 1
    assert image.convert("RGB").getpixel((20, 15)) == (255, 0, 0)  # the first, red


async def test_a_png_named_pdf_is_judged_a_png(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/files", files={"file": ("report.pdf", hostile.png(), "application/pdf")}
    )
    assert (response.status_code, response.json()["type"]) == (201, "image/png")
    assert response.json()["name"] == "report.pdf"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("table.csv", "name,price\ncafé,2.50\n"),
        ("data.json", '{"a": [1, 2]}\n'),
        ("main.py", "def main() -> None:\n    print('hi')\n"),
        ("notes.md", "# Title\n\n- a point\n"),
    ],
)
async def test_utf8_text_of_any_kind_is_text(
    client: httpx.AsyncClient, name: str, text: str
) -> None:
    served = await kept(client, name, text.encode(), "application/octet-stream")
    assert served.headers["content-type"] == "text/plain; charset=utf-8"
    assert served.headers["content-disposition"].startswith("attachment;")
    assert served.text == text
