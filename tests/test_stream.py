"""The event streams: proxy-safe headers, resume rules, and the browser's HTML frames."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from hxchat.broker import follow
from hxchat.config import Settings
from hxchat.render import render_markdown
from tests import html_tree, sse
from tests.helpers import MIXED, client_for, events, new_conversation, running_app, send, shown_body


async def browser_stream(client: httpx.AsyncClient, cid: str, content: str) -> list[sse.Event]:
    started = await send(client, cid, content)
    response = await client.get(f"/generations/{started['generation_id']}/stream")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache, no-transform"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["content-security-policy"] == "default-src 'none'"
    return sse.parse(response.text)


async def test_json_stream_is_proxy_safe(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    started = await send(client, cid, "hi")
    response = await client.get(started["events_url"])
    assert response.headers["cache-control"] == "no-cache, no-transform"
    assert response.headers["x-accel-buffering"] == "no"


async def test_browser_frames_snapshot_appends_and_end(
    make_settings: Callable[..., Settings],
) -> None:
    async with running_app(make_settings(echo_delay_ms=15)) as app, client_for(app) as client:
        cid = await new_conversation(client)
        content = MIXED * 6
        frames = await browser_stream(client, cid, content)
    assert frames[-1].event == "end"
    assert frames[0].event == "frame"  # a snapshot first: replaying it is harmless
    assert html_tree.parse(frames[0].data).find(hx_swap_oob="innerHTML")
    assert {f.event for f in frames} <= {"frame", "b", "r", "s", "message", "end"}
    assert "b" in {f.event for f in frames}, "finished blocks should stream"
    assert {"r", "message"} & {f.event for f in frames}, "the open block should stream"
    assert all(f.id for f in frames)
    final = html_tree.parse(frames[-1].data).find("article")
    assert final.attrs["data-status"] == "complete"
    assert final.attrs["hx-swap-oob"] == "true"
    expected = html_tree.parse(render_markdown(content))
    shown = html_tree.parse(shown_body(frames))
    assert shown.text.split() == expected.text.split()  # line breaks between tags: spaces
    assert len(shown.find_all("table")) == len(expected.find_all("table")) > 0


async def test_frames_are_coalesced(make_settings: Callable[..., Settings]) -> None:
    async with running_app(make_settings(echo_delay_ms=5)) as app, client_for(app) as client:
        cid = await new_conversation(client)
        frames = await browser_stream(client, cid, "word " * 200)  # about one second
    # 200 words in ~1 s: at most ~20 frames a second, not one per word
    assert 2 <= len(frames) <= 40


@pytest.mark.parametrize("shape", ["mixed", "code"])
async def test_bytes_on_the_browser_stream_stay_linear(
    make_settings: Callable[..., Settings], shape: str
) -> None:
    if shape == "mixed":
        content = MIXED * 40
    else:
        content = "```python\n" + "".join(f"x_{i} = compute({i}) + 1\n" for i in range(800))
        content += "```\n"
    async with (
        running_app(make_settings(echo_delay_ms=1, max_message_chars=100_000)) as app,
        client_for(app) as client,
    ):
        cid = await new_conversation(client)
        frames = await browser_stream(client, cid, content)
    final_html = render_markdown(content)
    sent = sum(len(f.data.encode()) for f in frames)
    assert sent <= 3 * len(final_html.encode()) + 4_000


async def test_reconnect_after_the_end_is_204(client: httpx.AsyncClient) -> None:
    cid = await new_conversation(client)
    started = await send(client, cid, "short")
    url = f"/generations/{started['generation_id']}/stream"
    frames = sse.parse((await client.get(url)).text)
    again = await client.get(url, headers={"Last-Event-ID": frames[-1].id or ""})
    assert again.status_code == 204


async def test_a_reader_after_the_end_gets_the_finished_article(
    client: httpx.AsyncClient,
) -> None:
    cid = await new_conversation(client)
    started = await send(client, cid, "done *already*")
    await events(client, started["events_url"])
    frames = sse.parse((await client.get(f"/generations/{started['generation_id']}/stream")).text)
    assert [f.event for f in frames] == ["end"]
    assert html_tree.parse(frames[0].data).find("em").text == "already"


async def test_lifetime_cap_cuts_without_a_final_event_and_resume_completes(
    make_settings: Callable[..., Settings],
) -> None:
    async with (
        running_app(make_settings(echo_delay_ms=40, stream_lifetime=0.3)) as app,
        client_for(app) as client,
    ):
        cid = await new_conversation(client)
        started = await send(client, cid, "w " * 30)
        url = started["events_url"]
        collected: list[sse.Event] = []
        last = None
        for _ in range(50):
            status, evs = await events(client, url, last)
            if status == 204:
                break
            collected += evs
            if evs:
                last = evs[-1].id
            if collected and collected[-1].event == "done":
                break
        assert collected[-1].event == "done"
        text = "".join(e.json()["text"] for e in collected if e.event == "delta")
        assert text == "w " * 30
        assert len({e.id for e in collected}) == len(collected)


async def test_idle_stream_gets_ping_comments(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(follow, "PING_SECONDS", 0.05)
    async with running_app(make_settings(echo_delay_ms=300)) as app, client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, "slow words")
        response = await client.get(started["events_url"])
    assert ": ping" in sse.comments(response.text)


async def test_a_running_answer_streams_to_its_owner_only(
    make_settings: Callable[..., Settings],
) -> None:
    """While the answer is being written on this worker, its streams are found without
    the store; someone else still gets 404, never a byte of it."""
    async with (
        running_app(make_settings(echo_delay_ms=100)) as app,
        client_for(app) as client,
        client_for(app) as other,
    ):
        cid = await new_conversation(client)
        started = await send(client, cid, "private words " * 5)
        gid = started["generation_id"]
        for path in (f"/generations/{gid}/stream", started["events_url"]):
            assert (await other.get(path)).status_code == 404
        response = await client.get(started["events_url"])
        assert sse.parse(response.text)[-1].event == "done"
        assert "private" in response.text


async def test_every_browser_event_carries_its_own_id(
    make_settings: Callable[..., Settings],
) -> None:
    """The browser's stream follows the JSON stream's id rules (docs/api.md), so each
    event block names its id itself (not only through the id it inherits)."""
    async with running_app(make_settings(echo_delay_ms=15)) as app, client_for(app) as client:
        cid = await new_conversation(client)
        started = await send(client, cid, MIXED * 2)
        response = await client.get(f"/generations/{started['generation_id']}/stream")
    blocks = [b for b in response.text.split("\n\n") if b.strip() and not b.startswith(":")]
    assert {f.event for f in sse.parse(response.text)} >= {"frame", "b", "r", "message", "end"}
    assert all(any(line.startswith("id: ") for line in b.split("\n")) for b in blocks)


def test_compacted_html_is_the_same_document() -> None:
    """Line breaks between tags cost a `data: ` line each on the wire; made spaces,
    they change nothing, except inside <pre>, which is kept as it is."""
    from hxchat.web.sse import compact_html

    html = render_markdown(MIXED + "*a*\n**b**\n\n```\nx\n<y>\n\n```\n\n> quote\n")
    compact = compact_html(html)
    assert compact.count("\n") < html.count("\n") / 3
    assert compact.replace(">\n", "> ").split() == html.replace(">\n", "> ").split()
    pre = [p.split("</pre>")[0] for p in html.split("<pre")[1:]]
    assert pre and all(p in compact for p in pre)  # code keeps its lines
    assert "<em>a</em> <strong>b</strong>" in compact  # a soft break is still a space


async def test_a_client_that_accepts_nothing_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A send that does not complete within `SEND_TIMEOUT` ends the stream with
    `TimeoutError`; sends that complete keep it going longer than that."""
    import asyncio
    from collections.abc import AsyncGenerator
    from typing import Any

    from hxchat.metrics import Metrics
    from hxchat.web import sse as wire

    monkeypatch.setattr(wire, "SEND_TIMEOUT", 0.2)
    sent: list[bytes] = []

    async def chunks() -> AsyncGenerator[bytes, None]:
        for i in range(6):
            await asyncio.sleep(0.05)  # 0.3 s in all: longer than the limit
            yield b"x%d" % i

    async def send(message: Any) -> None:
        sent.append(message.get("body", b""))
        if len(sent) == 6:  # the fifth chunk: never accepted
            await asyncio.Event().wait()

    response = wire.EventStreamResponse(chunks(), Metrics(), "json")
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await response.stream_response(send)
    waited = asyncio.get_running_loop().time() - started
    assert sent[1:] == [b"x%d" % i for i in range(5)]
    assert 0.4 <= waited < 1.0  # 0.25 s of chunks, then the limit (0.2 s)
