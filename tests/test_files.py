"""Attachments through the JSON API (#11): upload, what is kept, how it is served,
who may see it, and the hostile corpus (tests/hostile_files.py), each a test."""

from __future__ import annotations

import io
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from PIL import ExifTags, Image

from hxchat.config import Settings
from hxchat.errors import NotFound
from hxchat.files.names import clean_name
from hxchat.files.storage import content_key
from tests import hostile_files as hostile
from tests.helpers import (
    add_user,
    cheap_password_hashing,
    client_for,
    events,
    new_conversation,
    running_app,
    sign_in,
)

FILE_POLICY = "sandbox; default-src 'none'"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(max_file_mb=1)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    async with running_app(settings) as a:
        yield a


async def upload(
    client: httpx.AsyncClient, name: str, data: bytes, declared: str = "application/octet-stream"
) -> httpx.Response:
    return await client.post("/api/files", files={"file": (name, data, declared)})


async def uploaded(client: httpx.AsyncClient, name: str, data: bytes) -> dict[str, Any]:
    response = await upload(client, name, data)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# -- what is accepted, kept and served -----------------------------------------------


async def test_an_image_is_kept_re_encoded_and_served_inline(client: httpx.AsyncClient) -> None:
    body = await uploaded(client, "photo.png", hostile.png(3000, 1000))
    assert set(body) == {"id", "name", "type", "size"}
    assert body["name"] == "photo.png" and body["type"] == "image/png"

    served = await client.get(f"/api/files/{body['id']}")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-disposition"] == "inline"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"] == FILE_POLICY
    assert "private" in served.headers["cache-control"]
    assert len(served.content) == body["size"]
    assert Image.open(io.BytesIO(served.content)).size == (2048, 683)  # longest side 2,048


async def test_the_jpegs_exif_and_gps_are_gone_from_what_is_stored(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    original = hostile.jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    body = await uploaded(client, "where.jpg", original)
    assert body["type"] == "image/jpeg"

    served = (await client.get(f"/api/files/{body['id']}")).content
    stored = Image.open(io.BytesIO(served))
    assert not stored.getexif() and not stored.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert b"hxchat-test-camera" not in served and b"secret comment" not in served
    # What the model gets is the same stored bytes.
    attachment = await app.state.files.attachment(
        await app.state.files.find(_owner(app, client), body["id"])
    )
    assert attachment.data == served and attachment.text is None


def _owner(app: FastAPI, client: httpx.AsyncClient) -> str:
    cookie = client.cookies["hxchat_session"]
    return str(app.state.signer.unsign(cookie).decode())


async def test_etag_and_not_modified(client: httpx.AsyncClient) -> None:
    body = await uploaded(client, "notes.md", b"# Notes\n")
    first = await client.get(f"/api/files/{body['id']}")
    etag = first.headers["etag"]
    again = await client.get(f"/api/files/{body['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag


async def test_a_text_file_is_a_download_with_its_name(client: httpx.AsyncClient) -> None:
    body = await uploaded(client, "résumé.md", "café\n".encode())
    assert body["type"] == "text/plain"
    served = await client.get(f"/api/files/{body['id']}")
    assert served.headers["content-type"] == "text/plain; charset=utf-8"
    disposition = served.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "r%C3%A9sum%C3%A9.md" in disposition
    assert served.text == "café\n"


async def test_a_pdf_with_javascript_is_only_ever_a_sandboxed_download(
    client: httpx.AsyncClient,
) -> None:
    body = await uploaded(client, "report.pdf", hostile.pdf(javascript="app.alert(1)"))
    assert body["type"] == "application/pdf"
    served = await client.get(f"/api/files/{body['id']}")
    assert served.headers["content-disposition"].startswith("attachment;")
    assert served.headers["content-security-policy"] == FILE_POLICY
    assert served.headers["x-content-type-options"] == "nosniff"


async def test_html_named_png_is_judged_as_text_and_never_served_inline(
    client: httpx.AsyncClient,
) -> None:
    body = await uploaded(client, "cat.png", hostile.HTML_PAGE)
    assert body["type"] == "text/plain"
    served = await client.get(f"/api/files/{body['id']}")
    assert served.headers["content-type"] == "text/plain; charset=utf-8"
    assert served.headers["content-disposition"].startswith("attachment;")
    assert served.headers["content-security-policy"] == FILE_POLICY


async def test_the_gif_js_polyglot_is_stored_as_a_png_without_its_script(
    client: httpx.AsyncClient,
) -> None:
    body = await uploaded(client, "anim.gif", hostile.gif_js_polyglot())
    assert body["type"] == "image/png"
    served = (await client.get(f"/api/files/{body['id']}")).content
    assert served.startswith(b"\x89PNG") and b"gif-ran" not in served


# -- what is refused ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make", "status", "detail"),
    [
        ("bomb.png", hostile.decompression_bomb, 413, None),
        ("huge.jpg", hostile.huge_jpeg_header, 413, None),
        ("broken.png", hostile.truncated_png, 422, None),
        ("logo.svg", lambda: hostile.SVG_WITH_SCRIPT, 415, "hxchat cannot read SVG files."),
        ("locked.pdf", lambda: hostile.pdf(password="secret"), 422, None),
        ("broken.pdf", lambda: b"%PDF-1.7\n1 0 obj <<", 422, None),
        ("notes.txt", hostile.zip_archive, 415, "hxchat cannot read ZIP files."),
        ("wide.txt", lambda: hostile.UTF16_TEXT, 415, "hxchat cannot read UTF-16 text files."),
        ("data.txt", lambda: hostile.BINARY, 415, "hxchat cannot read binary files."),
        ("empty.txt", lambda: b"", 422, "The file is empty."),
    ],
)
async def test_hostile_files_are_refused_with_a_sentence(
    client: httpx.AsyncClient,
    name: str,
    make: Callable[[], bytes],
    status: int,
    detail: str | None,
) -> None:
    response = await upload(client, name, make(), "image/png")
    assert response.status_code == status, response.text
    sentence = response.json()["detail"]
    assert sentence.endswith(".") and len(sentence) < 120
    if detail is not None:
        assert sentence == detail


async def test_the_size_limit_just_under_and_just_over(client: httpx.AsyncClient) -> None:
    limit = 1_048_576
    assert (await upload(client, "under.txt", b"a" * limit)).status_code == 201
    over = await upload(client, "over.txt", b"a" * (limit + 1))
    assert over.status_code == 413
    assert over.json()["detail"] == "The file is larger than 1 MB."


async def test_a_body_far_over_the_limit_is_refused_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'
        for _ in range(200):  # 200 MiB if it were all read
            sent += 1
            yield b"a" * 1_048_576

    response = await client.post(
        "/api/files",
        content=body(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert response.status_code == 413
    assert sent < 10  # refused as the file passed its limit, not at the body's end
    assert not uploads_on_disk()  # its temporary file went with it


def uploads_on_disk() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("hxchat-upload-*"))


async def test_a_malformed_body_is_a_readable_refusal(client: httpx.AsyncClient) -> None:
    broken = await client.post(
        "/api/files",
        content=b"--b\r\nContent-Disposition: form-data; name=file\r\n\r\nabc\r\n--x-- junk",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert broken.status_code == 422
    as_json = await client.post("/api/files", json={"file": "abc"})
    assert as_json.status_code == 422
    assert as_json.json()["detail"] == "Send the file as multipart/form-data."


# -- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("a\x00b.txt", "ab.txt"),
        ("invoice\u202egnp.exe", "invoicegnp.exe"),
        ("<img src=x onerror=alert(1)>.txt", "<img src=x onerror=alert(1)>.txt"),
        ("x" * 300, "x" * 255),
        ("../", "file"),
        ("", "file"),
    ],
)
def test_names_are_cleaned(given: str, kept: str) -> None:
    assert clean_name(given) == kept


async def test_a_hostile_name_is_kept_cleaned_and_sent_back_quoted(
    client: httpx.AsyncClient,
) -> None:
    body = await uploaded(client, "../../<i>\u202eevil.txt", b"text")
    assert body["name"] == "<i>evil.txt"
    served = await client.get(f"/api/files/{body['id']}")
    assert served.headers["content-disposition"].startswith('attachment; filename="<i>evil.txt"')


# -- owners, messages, deletion ------------------------------------------------------------


async def test_another_owners_file_is_404_everywhere(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient
) -> None:
    body = await uploaded(client, "mine.txt", b"mine")
    assert (await other_client.get(f"/api/files/{body['id']}")).status_code == 404
    assert (await other_client.delete(f"/api/files/{body['id']}")).status_code == 404
    cid = await new_conversation(other_client)
    response = await other_client.post(
        f"/api/conversations/{cid}/messages", json={"content": "hi", "files": [body["id"]]}
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "There is no such file."
    assert (await other_client.get(f"/api/conversations/{cid}")).json()["messages"] == []
    assert (await client.get(f"/api/files/{body['id']}")).status_code == 200


async def test_a_message_with_files_only_shows_them_and_the_model_gets_them(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    image = await uploaded(client, "chart.png", hostile.png())
    notes = await uploaded(client, "notes.txt", b"remember the milk")
    cid = await new_conversation(client)
    response = await client.post(
        f"/api/conversations/{cid}/messages",
        json={"content": "", "files": [image["id"], notes["id"]]},
    )
    assert response.status_code == 202, response.text
    await events(client, response.json()["events_url"])

    shown = (await client.get(f"/api/conversations/{cid}")).json()
    assert shown["title"] == "chart.png, notes.txt"  # no text: titled by its files
    messages = shown["messages"]
    assert messages[0]["files"] == [image, notes]
    assert messages[1]["files"] == []
    exported = (await client.get(f"/api/conversations/{cid}/export?format=json")).json()
    assert [m["files"] for m in exported["messages"]] == [[image, notes], []]  # metadata only
    # The history the next answer is written from carries them, contents read back.
    store, files = app.state.store, app.state.files
    history_files = [
        f for f in (await store.get_conversation(_owner(app, client), cid)).messages[0].files
    ]
    turns = await files.attach([await _first_turn(store, cid)], [history_files])
    assert [a.name for a in turns[0].attachments] == ["chart.png", "notes.txt"]
    assert turns[0].attachments[1].text == "remember the milk"
    assert turns[0].attachments[0].media_type == "image/png"


async def _first_turn(store: Any, cid: str) -> Any:
    return (await store.history(cid, 2**31 - 1))[0]


async def test_eleven_files_on_one_message_are_refused(client: httpx.AsyncClient) -> None:
    ids = [(await uploaded(client, f"{i}.txt", f"file {i}".encode()))["id"] for i in range(11)]
    cid = await new_conversation(client)
    response = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "all", "files": ids}
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "At most 10 files can be attached to one message."


async def test_delete_a_file_no_message_uses_but_not_one_in_use(client: httpx.AsyncClient) -> None:
    loose = await uploaded(client, "loose.txt", b"loose")
    used = await uploaded(client, "used.txt", b"used")
    cid = await new_conversation(client)
    sent = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "x", "files": [used["id"]]}
    )
    await events(client, sent.json()["events_url"])
    assert (await client.delete(f"/api/files/{loose['id']}")).status_code == 204
    assert (await client.get(f"/api/files/{loose['id']}")).status_code == 404
    assert (await client.delete(f"/api/files/{used['id']}")).status_code == 409
    assert (await client.get(f"/api/files/{used['id']}")).status_code == 200


async def test_deleting_a_conversation_removes_its_files_but_shared_contents_stay(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    first = await uploaded(client, "a.txt", b"same bytes")
    second = await uploaded(client, "b.txt", b"same bytes")  # the same content, kept once
    conversations = []
    for file_id in (first["id"], second["id"]):
        cid = await new_conversation(client)
        sent = await client.post(
            f"/api/conversations/{cid}/messages", json={"content": "x", "files": [file_id]}
        )
        await events(client, sent.json()["events_url"])
        conversations.append(cid)

    assert (await client.delete(f"/api/conversations/{conversations[0]}")).status_code == 204
    assert (await client.get(f"/api/files/{first['id']}")).status_code == 404
    assert (await client.get(f"/api/files/{second['id']}")).text == "same bytes"

    await client.delete(f"/api/conversations/{conversations[1]}")
    assert (await client.get(f"/api/files/{second['id']}")).status_code == 404
    folder = app.state.files.storage.where.removeprefix("folder ")
    from pathlib import Path

    assert not [p for p in Path(folder).rglob("*") if p.is_file()]


async def test_an_edited_message_keeps_its_files(client: httpx.AsyncClient) -> None:
    notes = await uploaded(client, "notes.txt", b"notes")
    cid = await new_conversation(client)
    sent = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "first", "files": [notes["id"]]}
    )
    await events(client, sent.json()["events_url"])
    edited = await client.post(
        f"/api/messages/{sent.json()['message_id']}/edit", json={"content": "second"}
    )
    assert edited.status_code == 202, edited.text
    await events(client, edited.json()["events_url"])
    question = (await client.get(f"/api/conversations/{cid}")).json()["messages"][0]
    assert question["content"] == "second" and question["files"] == [notes]


async def test_deleting_a_user_deletes_their_files(make_settings: Callable[..., Settings]) -> None:
    async with running_app(make_settings(auth="password")) as app, client_for(app) as client:
        with cheap_password_hashing():
            user = await add_user(app, "ann")
            assert (await sign_in(client, "ann")).status_code == 303
        body = await uploaded(client, "a.txt", b"ann's notes")
        stored = await app.state.files.find(user.id, body["id"])

        assert await app.state.accounts.store.delete_user("ann")
        await app.state.files.sweep()  # the next housekeeping round

        with pytest.raises(NotFound):
            await app.state.files.find(user.id, body["id"])
        assert await app.state.files.storage.get(content_key(user.id, stored.sha256)) is None
