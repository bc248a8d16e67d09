"""Finished answers keep their rendered HTML (#10, `store/rendered.py`): exactly what
rendering gives, made only by the server's renderer, rendered again when the renderer
changes; and migration 0011 adds it over a database of 0010 with real rows, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from alembic import command
from sqlalchemy import insert, inspect, text
from sqlalchemy.engine import Connection

from hxchat.config import Settings
from hxchat.render import render_markdown
from hxchat.render.cache import RenderedAnswers
from hxchat.render.markdown import RENDERER
from hxchat.store.migrate import alembic_config, head_revision, upgrade
from hxchat.store.sql import open_store
from hxchat.store.tables import conversations, messages
from hxchat.web import answer_html
from tests.helpers import MIXED, client_for, events, new_conversation, running_app, send
from tests.store_helpers import on_connection, stored_revision

OLD = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ANSWER = "An *old* answer with `code`:\n\n```python\nprint('hi')\n```\n"


def kept_html(database_url: str) -> Callable[[Connection], dict[int, tuple[Any, Any]]]:
    def read(connection: Connection) -> dict[int, tuple[Any, Any]]:
        rows = connection.execute(
            text("SELECT id, rendered_html, rendered_by FROM messages WHERE role = 'assistant'")
        )
        return {row.id: (row.rendered_html, row.rendered_by) for row in rows}

    return read


def shows(page: str, html: str) -> bool:
    """Whether the page shows exactly `html` as an answer's body."""
    return f'<div class="md">{html}</div>' in page


# -- 0011 over a database of 0010 -------------------------------------------------------


def rows_at_0008(connection: Connection) -> None:
    """A database of 0008: a finished answer in Markdown, and one still streaming."""
    command.upgrade(alembic_config(connection), "0010")
    connection.execute(
        insert(conversations),
        [{"id": "c1", "owner": "alice", "title": "Old", "created_at": OLD, "updated_at": OLD}],
    )
    common = {
        "conversation_id": "c1",
        "sources": "[]",
        "status": "complete",
        "created_at": OLD,
        "updated_at": OLD,
    }
    connection.execute(
        insert(messages),
        [
            {**common, "id": 1, "parent_id": None, "role": "user", "content": "q1"},
            {**common, "id": 2, "parent_id": 1, "role": "assistant", "content": ANSWER},
            {**common, "id": 3, "parent_id": 2, "role": "user", "content": "q2"},
            {**common, "id": 4, "parent_id": 3, "role": "assistant", "content": "half"}
            | {"status": "streaming"},
        ],
    )
    connection.execute(text("UPDATE conversations SET current_leaf_id = 4"))


async def test_upgrade_from_0010_leaves_old_answers_to_render_once_and_keeps_them(
    database_url: str,
) -> None:
    """Answers written before 0011 have no HTML (NULL); the first page that shows one
    renders it and keeps exactly that; an answer still streaming keeps none; the
    downgrade drops the columns and keeps every text."""
    await on_connection(database_url, rows_at_0008)
    await upgrade(database_url)
    assert await on_connection(database_url, stored_revision) == head_revision()
    assert await on_connection(database_url, kept_html(database_url)) == {
        2: (None, None),
        4: (None, None),
    }
    store = await open_store(database_url)
    try:
        conversation = await store.get_conversation("alice", "c1")
        assert conversation is not None
        assert [m.rendered for m in conversation.messages] == [None] * 4
        shown, fresh = answer_html.fill(conversation, RenderedAnswers())
        assert [k.message_id for k in fresh] == [2]  # not the streaming one
        assert shown.messages[1].rendered is not None
        assert shown.messages[1].rendered.html == render_markdown(ANSWER)
        await answer_html.keep(store, fresh)
        again = await store.get_conversation("alice", "c1")
        assert again is not None
        assert answer_html.current_html(again.messages[1]) == render_markdown(ANSWER)
        assert answer_html.fill(again, RenderedAnswers())[1] == []  # nothing to render
    finally:
        await store.close()
    assert await on_connection(database_url, kept_html(database_url)) == {
        2: (render_markdown(ANSWER), RENDERER),
        4: (None, None),
    }

    def columns(connection: Connection) -> set[str]:
        return {c["name"] for c in inspect(connection).get_columns("messages")}

    def contents(connection: Connection) -> list[str]:
        return [r.content for r in connection.execute(text("SELECT content FROM messages"))]

    kept = await on_connection(database_url, contents)
    await on_connection(database_url, lambda c: command.downgrade(alembic_config(c), "0010"))
    assert not {"rendered_html", "rendered_by"} & await on_connection(database_url, columns)
    assert await on_connection(database_url, contents) == kept
    await upgrade(database_url)
    assert {"rendered_html", "rendered_by"} <= await on_connection(database_url, columns)


# -- the app ----------------------------------------------------------------------------


async def test_a_page_keeps_what_it_rendered_and_a_restart_renders_nothing(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """The page shows exactly the rendering and keeps it; after a restart (a worker
    with nothing in memory) the page shows the kept HTML as it is; HTML kept by
    another renderer is rendered again and replaced."""
    await upgrade(database_url)
    settings = make_settings(database_url=database_url)
    async with running_app(settings) as app, client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, MIXED)
        await events(client, started["events_url"])  # the JSON stream renders nothing
        kept = await on_connection(database_url, kept_html(database_url))
        [answer] = kept  # the one answer
        assert kept[answer] == (None, None)
        page = (await client.get(f"/c/{cid}")).text
        assert shows(page, render_markdown(MIXED))
        kept = await on_connection(database_url, kept_html(database_url))
        assert kept[answer] == (render_markdown(MIXED), RENDERER)
        cookies = dict(client.cookies)

    marked = render_markdown("*Kept* by this renderer.")
    await on_connection(
        database_url,
        lambda c: c.execute(
            text("UPDATE messages SET rendered_html = :html WHERE id = :id"),
            {"html": marked, "id": answer},
        ),
    )
    async with running_app(settings) as app, client_for(app) as client:
        client.cookies.update(cookies)
        page = (await client.get(f"/c/{cid}")).text
        assert shows(page, marked)  # shown as kept: nothing rendered after the restart
        assert not shows(page, render_markdown(MIXED))

        await on_connection(
            database_url,
            lambda c: c.execute(text("UPDATE messages SET rendered_by = 'an older renderer'")),
        )
        page = (await client.get(f"/c/{cid}")).text
        assert shows(page, render_markdown(MIXED))
        kept = await on_connection(database_url, kept_html(database_url))
        assert kept[answer] == (render_markdown(MIXED), RENDERER)


async def test_the_browser_stream_keeps_the_html_it_ends_with(
    make_settings: Callable[..., Settings],
) -> None:
    """An answer read to its end on the page's stream has its HTML kept at once: the
    next page load renders nothing."""
    settings = make_settings()
    async with running_app(settings) as app, client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, MIXED)
        response = await client.get(f"/generations/{started['generation_id']}/stream")
        assert response.status_code == 200 and "event: end" in response.text
        url = settings.database_url
        kept = await on_connection(url, kept_html(url))
        assert list(kept.values()) == [(render_markdown(MIXED), RENDERER)]


async def test_html_in_an_imported_file_is_never_kept(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """HTML comes from hxchat's renderer only: an import that carries some (as keys of
    its messages) stores none of it, and the page renders the text."""
    await upgrade(database_url)
    async with (
        running_app(make_settings(database_url=database_url)) as app,
        client_for(app) as client,
    ):
        cid = await new_conversation(client)
        await events(client, (await send(client, cid, "plain *text*"))["events_url"])
        exported = (await client.get(f"/api/conversations/{cid}/export?format=json")).json()
        assert "rendered" not in json.dumps(exported)
        hostile = "<script>alert(1)</script><p>not ours</p>"
        carried = [
            message
            for conversation in exported.get("conversations", [exported])
            for message in conversation["messages"]
        ]
        assert len(carried) == 2
        for message in carried:
            message.update(rendered_html=hostile, rendered_by=RENDERER, html=hostile)
        body = json.dumps(exported).encode()
        response = await client.post(
            "/api/import", files={"file": ("hxchat-export.json", body, "application/json")}
        )
        assert response.status_code == 201, response.text
        kept = await on_connection(database_url, kept_html(database_url))
        assert {html for html, _ in kept.values()} == {None}
        listed = (await client.get("/api/conversations")).json()
        imported = next(c["id"] for c in listed if c["id"] != cid)
        page = (await client.get(f"/c/{imported}")).text
        assert "not ours" not in page and "<script>alert" not in page
        assert shows(page, render_markdown("plain *text*"))


async def test_a_hostile_answer_is_kept_as_the_renderer_sanitised_it(
    make_settings: Callable[..., Settings],
) -> None:
    """What a model writes to attack the page is kept as nh3 left it, and shown so
    after a restart: the kept HTML is the renderer's, never the answer's own markup."""
    hostile = (
        "<script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>\n\n"
        "```html\n<script>alert(4)</script>\n```\n"
    )
    settings = make_settings()
    async with running_app(settings) as app, client_for(app) as client:
        cid = await new_conversation(client)
        await events(client, (await send(client, cid, hostile))["events_url"])
        assert (await client.get(f"/c/{cid}")).status_code == 200
        cookies = dict(client.cookies)
    url = settings.database_url
    [(html, renderer)] = (await on_connection(url, kept_html(url))).values()
    assert (html, renderer) == (render_markdown(hostile), RENDERER)
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    async with running_app(settings) as app, client_for(app) as client:
        client.cookies.update(cookies)
        page = (await client.get(f"/c/{cid}")).text
        assert shows(page, html)
        assert "<script>alert" not in page
