"""Two users of one app see nothing of each other: every route that takes an id answers
404 to the other, exactly as for an id that does not exist (password mode, on the same
worker; the owner checks are the store's, the same in every mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hxchat.config import Settings
from tests.helpers import (
    events,
    new_conversation,
    running_app,
    send,
    signed_in,
)

pytestmark = pytest.mark.usefixtures("cheap_hashing")


async def test_two_users_see_nothing_of_each_other(
    make_settings: Callable[..., Settings],
) -> None:

    settings = make_settings(auth="password", echo_delay_ms=20)
    async with (
        running_app(settings) as app,
        signed_in(app, "alice") as alice,
        signed_in(app, "bob") as bob,
    ):
        cid = await new_conversation(alice)
        started = await send(alice, cid, " ".join(f"w{i}" for i in range(60)))
        gid = started["generation_id"]
        token = (await alice.post("/api/tokens", json={"name": "ci"})).json()["id"]
        question, answer = (await alice.get(f"/api/conversations/{cid}")).json()["messages"]
        q, a = question["id"], answer["id"]
        notes = {"file": ("notes.txt", b"alice's notes", "text/plain")}
        fid = (await alice.post("/api/files", files=notes)).json()["id"]
        htmx = {"HX-Request": "true"}
        page = f"/c/{cid}/messages"

        foreign: list[tuple[str, str, dict[str, Any]]] = [
            ("GET", f"/api/conversations/{cid}", {}),
            ("GET", f"/c/{cid}", {}),
            ("GET", f"/api/generations/{gid}/events", {}),
            ("GET", f"/generations/{gid}/stream", {}),
            ("GET", f"/generations/{gid}/suggestions", {}),
            ("POST", f"/api/conversations/{cid}/messages", {"json": {"content": "hi"}}),
            ("POST", f"/api/conversations/{cid}/retry", {}),
            ("POST", f"/c/{cid}/retry", {"headers": htmx}),
            ("POST", "/send", {"data": {"content": "hi", "conversation_id": cid}}),
            ("POST", f"/api/generations/{gid}/cancel", {}),
            ("POST", f"/generations/{gid}/cancel", {}),
            # versions, feedback, the library, files, shares, export (#10, #11, #12):
            # refused as missing, also while an answer runs (never a 409 that tells)
            ("POST", f"/api/messages/{q}/edit", {"json": {"content": "x"}}),
            ("POST", f"/api/messages/{a}/regenerate", {}),
            ("POST", f"/api/messages/{a}/select", {}),
            ("PUT", f"/api/messages/{a}/feedback", {"json": {"rating": "up"}}),
            ("GET", f"{page}/{q}", {}),
            ("GET", f"{page}/{q}/edit", {}),
            ("POST", f"{page}/{q}/edit", {"data": {"content": "x"}}),
            ("POST", f"{page}/{a}/regenerate", {}),
            ("POST", f"{page}/{a}/select", {}),
            ("POST", f"{page}/{a}/feedback", {"data": {"rating": "up"}}),
            ("PATCH", f"/api/conversations/{cid}", {"json": {"title": "bob's"}}),
            ("POST", f"/c/{cid}/rename", {"data": {"title": "bob's"}}),
            ("POST", f"/c/{cid}/pin", {}),
            ("POST", f"/c/{cid}/instructions", {"data": {"instructions": "x"}}),
            ("GET", f"/c/{cid}/title", {}),
            ("GET", f"/api/conversations/{cid}/export", {}),
            ("POST", f"/api/conversations/{cid}/share", {}),
            ("DELETE", f"/api/conversations/{cid}/share", {}),
            ("POST", f"/c/{cid}/share", {}),
            ("POST", f"/c/{cid}/share/stop", {}),
            ("GET", f"/api/files/{fid}", {}),
            ("DELETE", f"/api/files/{fid}", {}),
            ("POST", f"/c/{cid}/delete", {}),
            ("DELETE", f"/api/conversations/{cid}", {}),
            ("DELETE", f"/c/{cid}", {}),
            ("DELETE", f"/api/tokens/{token}", {}),
            ("POST", f"/settings/tokens/{token}/revoke", {}),
        ]
        for method, path, extra in foreign:
            answer = await bob.request(method, path, **extra)
            assert answer.status_code == 404, (method, path, answer.status_code)
        assert (await bob.get("/api/conversations")).json() == []
        assert (await bob.get("/api/tokens")).json() == []
        assert cid not in (await bob.get("/")).text

        # alice's answer ran on untouched, and her token is still there
        status, evs = await events(alice, started["events_url"])
        assert status == 200 and evs[-1].json()["status"] == "complete"
        assert [t["id"] for t in (await alice.get("/api/tokens")).json()] == [token]
        # and her conversation, its versions, feedback, settings and file are as they were
        kept = (await alice.get(f"/api/conversations/{cid}")).json()
        assert kept["title"] != "bob's" and not kept["pinned"] and kept["instructions"] == ""
        assert [m["id"] for m in kept["messages"]] == [q, a]
        assert [len(m["versions"]) for m in kept["messages"]] == [1, 1]
        assert kept["messages"][1]["feedback"] is None
        assert (await alice.get(f"/api/files/{fid}")).status_code == 200
