"""`/admin` through the real app: the users with what they have used, disabling and
enabling them with plain forms (cross-site refused like every form), 404 for anyone
but an admin. docs/api.md#accounts describes what is checked here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI

from hxchat.config import Settings
from hxchat.store.migrate import upgrade
from tests import html_tree
from tests.helpers import (
    client_for,
    new_conversation,
    running_app,
    send,
    sign_in,
    signed_in,
)

pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
async def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    """On SQLite and PostgreSQL (upgraded, as `hxchat db upgrade` does): the usage is
    counted by the database."""
    await upgrade(database_url)
    return make_settings(auth="password", database_url=database_url)


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(app, "root", admin=True) as c:
        yield c


@pytest.fixture
async def alice(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with signed_in(app, "alice") as c:
        yield c


def rows(page: str) -> dict[str, list[str]]:
    table = html_tree.parse(page).find("tbody")
    out = {}
    for row in table.find_all("tr"):
        name = row.find("th").text.strip()
        out[name] = [cell.text.strip() for cell in row.find_all("td")]
    return out


async def test_admin_lists_users_and_their_usage(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    cid = await new_conversation(alice)
    started = await send(alice, cid, "hello")
    assert (await alice.get(started["events_url"])).status_code == 200
    await new_conversation(alice)
    await alice.post("/api/tokens", json={"name": "laptop"})
    page = await admin.get("/admin")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    found = rows(page.text)
    assert set(found) == {"alice", "root (admin)"}
    method, created, seen, conversations, answers, used, tokens, status, _ = found["alice"]
    assert (method, conversations, answers, tokens, status) == ("password", "2", "1", "1", "active")
    usage = (await alice.get(f"/api/conversations/{cid}")).json()["messages"][-1]["usage"]
    assert used == str(usage["input_tokens"] + usage["output_tokens"])  # the model's tokens
    assert found["root (admin)"][4:6] == ["0", "0"]  # no answers, no tokens used
    assert created.endswith("UTC") and seen.endswith("UTC")
    chat = html_tree.parse((await admin.get("/")).text)
    assert chat.find("a", href="/admin").text == "Admin"


async def test_disable_and_enable_end_and_allow_sign_ins(
    app: FastAPI, admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:

    alice_id = (await alice.get("/api/me")).json()["id"]
    token = (await alice.post("/api/tokens", json={"name": "t"})).json()["token"]
    done = await admin.post(f"/admin/users/{alice_id}/disable")
    assert (done.status_code, done.headers["location"]) == (303, "/admin")
    app.state.identities._cache.clear()  # what a second does
    assert (await alice.get("/api/me")).status_code == 401
    async with client_for(app) as program:
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await program.get("/api/me", headers=bearer)).status_code == 401
    assert rows((await admin.get("/admin")).text)["alice"][7] == "disabled"
    assert (await sign_in(alice, "alice")).status_code == 401
    assert (await admin.post(f"/admin/users/{alice_id}/enable")).status_code == 303
    assert (await sign_in(alice, "alice")).status_code == 303
    assert rows((await admin.get("/admin")).text)["alice"][7] == "active"


async def test_an_admin_cannot_disable_themselves(admin: httpx.AsyncClient) -> None:
    me = (await admin.get("/api/me")).json()["id"]
    page = await admin.post(f"/admin/users/{me}/disable")
    assert page.status_code == 409
    assert "cannot disable your own account" in html_tree.parse(page.text).find(role="alert").text
    assert (await admin.get("/api/me")).status_code == 200


async def test_admin_is_404_for_anyone_else(
    app: FastAPI, admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    root_id = (await admin.get("/api/me")).json()["id"]
    assert (await alice.get("/admin")).status_code == 404
    assert (await alice.post(f"/admin/users/{root_id}/disable")).status_code == 404
    assert (await admin.get("/api/me")).status_code == 200
    chat = html_tree.parse((await alice.get("/")).text)
    assert chat.find_all("a", href="/admin") == []
    assert (await admin.post("/admin/users/nobody/disable")).status_code == 404
    assert (await admin.post(f"/admin/users/{root_id}/delete")).status_code == 404
    async with client_for(app) as nobody:
        assert (await nobody.get("/admin")).headers["location"] == "/login?next=%2Fadmin"


async def test_cross_site_admin_posts_are_refused(
    admin: httpx.AsyncClient, alice: httpx.AsyncClient
) -> None:
    alice_id = (await alice.get("/api/me")).json()["id"]
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = await admin.post(f"/admin/users/{alice_id}/disable", headers=headers)
        assert refused.status_code == 403
    assert (await alice.get("/api/me")).status_code == 200


async def test_no_admin_in_mode_none(make_settings: Callable[..., Settings]) -> None:
    async with running_app(make_settings()) as app, client_for(app) as client:
        assert (await client.get("/admin")).status_code == 404
        assert (await client.post("/admin/users/x/disable")).status_code == 404
