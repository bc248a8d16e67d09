"""Attachments below the API (#11): the same storage code on a local folder and on a
real S3 API (moto's standalone server on loopback), what the model gets, the sweep,
and migration 0009 (files) from 0005 with real rows on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from alembic import command
from fastapi import FastAPI
from PIL import ExifTags, Image
from sqlalchemy import insert, inspect, update
from sqlalchemy.engine import Connection

from hxchat.app import create_app
from hxchat.config import Settings
from hxchat.domain import Role
from hxchat.files.storage import FileStorage, open_storage
from hxchat.store.engine import make_engine
from hxchat.store.migrate import alembic_config, upgrade
from hxchat.store.sql import open_store
from hxchat.store.tables import conversations, files, messages, utcnow
from tests import hostile_files as hostile
from tests.helpers import ScriptedModel, client_for, events, new_conversation, running_app
from tests.html_tree import parse
from tests.s3_server import BUCKET, s3_environment, s3_server
from tests.servers import free_port


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API: moto's standalone server, on loopback, for this module."""
    with s3_server() as endpoint:
        yield endpoint


def storage_endpoint() -> str:
    return os.environ["AWS_ENDPOINT_URL"]


@pytest.fixture(params=["folder", "s3"])
def files_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    if request.param == "folder":
        return f"file:{tmp_path / 'files'}"
    for name, value in s3_environment(request.getfixturevalue("s3_endpoint")).items():
        monkeypatch.setenv(name, value)
    return f"s3://{BUCKET}/{tmp_path.name}"


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel(["Seen."])


@pytest.fixture
async def app(
    make_settings: Callable[..., Settings], files_url: str, model: ScriptedModel
) -> AsyncIterator[FastAPI]:
    application = create_app(make_settings(files_url=files_url), model)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


async def test_the_storage_puts_gets_and_deletes(files_url: str, tmp_path: Path) -> None:
    storage = open_storage(files_url)
    assert await storage.get("owner/none") is None
    await storage.put("owner/abc", b"bytes")
    assert await storage.get("owner/abc") == b"bytes"
    if files_url.startswith("s3://"):  # really in the bucket, under the prefix
        listing = httpx.get(f"{storage_endpoint()}/{BUCKET}?list-type=2").text
        assert f"<Key>{tmp_path.name}/owner/abc</Key>" in listing
    else:
        assert (tmp_path / "files" / "owner" / "abc").read_bytes() == b"bytes"
    await storage.delete(["owner/abc", "owner/never-there"])
    assert await storage.get("owner/abc") is None


@pytest.fixture
def unreachable(
    monkeypatch: pytest.MonkeyPatch, make_settings: Callable[..., Settings]
) -> Settings:
    """Settings whose S3 file storage is at a port nothing listens on."""
    for name, value in s3_environment(f"http://127.0.0.1:{free_port()}").items():
        monkeypatch.setenv(name, value)
    return make_settings(files_url=f"s3://{BUCKET}/away")


async def test_an_unreachable_store_is_a_readable_503(
    unreachable: Settings,
) -> None:
    async with running_app(unreachable) as app, client_for(app) as client:
        response = await client.post("/api/files", files={"file": ("a.txt", b"text")})
    assert response.status_code == 503
    assert response.json()["detail"] == (
        f"The file storage (bucket {BUCKET}) cannot be reached right now; "
        "please try again in a moment."
    )


async def test_on_the_page_an_unreachable_store_is_an_error_beside_the_composer(
    unreachable: Settings,
) -> None:
    async with running_app(unreachable) as app, client_for(app) as client:
        response = await client.post(
            "/send",
            data={"content": "my long careful question", "conversation_id": ""},
            files=[("file", (f"{i}.txt", b"text", "text/plain")) for i in range(3)],
        )
        with_htmx = await client.post(
            "/send",
            data={"content": "again"},
            files=[("file", ("a.txt", b"text", "text/plain"))],
            headers={"HX-Request": "true"},
        )
        listed = (await client.get("/api/conversations")).json()
    assert with_htmx.status_code == 503
    assert with_htmx.headers["hx-retarget"] == "#composer-error"
    assert with_htmx.text.startswith(f"The file storage (bucket {BUCKET}) cannot be reached")
    assert response.status_code == 503
    form = parse(response.text).find("form", id="composer")
    assert form.find("textarea").text == "my long careful question"
    assert form.find(id="composer-error").text == (
        f"The file storage (bucket {BUCKET}) cannot be reached right now; "
        "please try again in a moment."
    )
    assert listed == []  # nothing was sent


async def test_the_model_gets_the_files_of_every_user_message_on_the_path(
    client: httpx.AsyncClient, model: ScriptedModel
) -> None:
    photo = (
        await client.post("/api/files", files={"file": ("p.jpg", hostile.jpeg_with_gps())})
    ).json()
    report = (await client.post("/api/files", files={"file": ("r.pdf", hostile.pdf())})).json()
    notes = (await client.post("/api/files", files={"file": ("n.md", b"# milk")})).json()
    cid = await new_conversation(client)
    for content, ids in (("look", [photo["id"], report["id"]]), ("and this", [notes["id"]])):
        sent = await client.post(
            f"/api/conversations/{cid}/messages", json={"content": content, "files": ids}
        )
        assert sent.status_code == 202, sent.text
        await events(client, sent.json()["events_url"])

    history = model.seen[-1]
    users = [turn for turn in history if turn.role is Role.USER]
    assert [[a.name for a in t.attachments] for t in users] == [["p.jpg", "r.pdf"], ["n.md"]]
    image, pdf = users[0].attachments
    assert image.media_type == "image/jpeg" and image.text is None
    assert not Image.open(io.BytesIO(image.data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert pdf.media_type == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert pdf.text is not None
    assert users[1].attachments[0].text == "# milk"
    assert [t.attachments for t in history if t.role is Role.ASSISTANT] == [()]


async def test_unused_files_are_swept_after_a_day_and_their_contents_go(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    old = (await client.post("/api/files", files={"file": ("old.txt", b"old")})).json()
    new = (await client.post("/api/files", files={"file": ("new.txt", b"new")})).json()
    store = app.state.store

    def age(connection: Connection) -> None:
        connection.execute(
            update(files)
            .where(files.c.id == old["id"])
            .values(created_at=utcnow() - timedelta(days=1, minutes=1))
        )

    await store.run(True, age)
    stored = await app.state.files.find(_owner(app, client), old["id"])
    await app.state.files.sweep()

    assert (await client.get(f"/api/files/{old['id']}")).status_code == 404
    assert (await client.get(f"/api/files/{new['id']}")).text == "new"
    storage: FileStorage = app.state.files.storage
    from hxchat.files.storage import content_key

    assert await storage.get(content_key(stored.owner, stored.sha256)) is None


def _owner(app: FastAPI, client: httpx.AsyncClient) -> str:
    return str(app.state.signer.unsign(client.cookies["hxchat_session"]).decode())


# -- migration 0009 (files)----------------------------------------------------------------


async def test_upgrade_from_0005_keeps_the_rows_and_files_work_on_them(
    database_url: str, tmp_path: Path
) -> None:
    def rows_at_0005(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), "0005")
        now = utcnow()
        connection.execute(
            insert(conversations).values(
                id="c1",
                owner="u1",
                title="Old",
                created_at=now,
                updated_at=now,
                active_generation_id=None,
                current_leaf_id=None,
            )
        )
        for role, content in (("user", "hello"), ("assistant", "hi there")):
            connection.execute(
                insert(messages).values(
                    conversation_id="c1",
                    role=role,
                    content=content,
                    status="complete",
                    sources="[]",
                    created_at=now,
                    updated_at=now,
                    parent_id=None if role == "user" else 1,
                )
            )
        connection.execute(update(conversations).values(current_leaf_id=2))

    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(rows_at_0005)
    finally:
        await engine.dispose()

    await upgrade(database_url)
    store = await open_store(database_url)
    try:
        old = await store.get_conversation("u1", "c1")
        assert old is not None and [m.content for m in old.messages] == ["hello", "hi there"]
        assert [m.files for m in old.messages] == [(), ()]
        from hxchat.store import files as file_queries

        added = await store.run(True, file_queries.add, "u1", "a.txt", "text/plain", 3, "ab" * 32)
        started = await store.start_turn("u1", "c1", "with a file", "g1", "w", 60, files=[added.id])
        assert started.history_files[-1] == (added,)
        shown = await store.get_conversation("u1", "c1")
        assert shown is not None and shown.messages[-2].files == (added,)
    finally:
        await store.close()

    def downgrade_to_0005(connection: Connection) -> set[str]:
        command.downgrade(alembic_config(connection), "0005")
        return set(inspect(connection).get_table_names())

    engine = make_engine(database_url)
    try:
        async with engine.begin() as conn:
            tables = await conn.run_sync(downgrade_to_0005)
    finally:
        await engine.dispose()
    assert not tables & {"files", "file_contents", "message_files"}
    assert "messages" in tables
