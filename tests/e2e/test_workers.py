"""Many workers, one service: any request on any worker, no sticky sessions (issue #5).

Four real `hxchat serve` processes (A, B, C and D, which is killed) share one fresh
PostgreSQL database, upgraded with `hxchat db upgrade`, and one Redis database. None of
them is given HXCHAT_SECRET_KEY, so the cookie signing key comes from the database:
a cookie that A set must work on every other worker without a new one being set.
The echo model says a word every 200 ms, so an answer of N words lasts N/5 seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import bindparam, text

from hxchat.providers.echo import words as split_words
from hxchat.supervision import LEASE_SECONDS, SWEEP_SECONDS
from tests.e2e.cluster import (
    MANY_ANSWERS,
    Received,
    postgres_database,
    query,
    session,
    shared_environment,
    words,
    workers,
)
from tests.servers import Server, run_hxchat, serving

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

REDIS_DB = 11
ECHO_DELAY_MS = 200
WORDS_PER_SECOND = 1000 / ECHO_DELAY_MS
WORKERS_OF = text("SELECT DISTINCT worker_id FROM messages WHERE generation_id IN :ids").bindparams(
    bindparam("ids", expanding=True)
)


@dataclass
class Cluster:
    workdir: Path
    database_url: str
    redis_url: str
    a: Server
    b: Server
    c: Server
    d: Server

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "HXCHAT_DATABASE_URL": self.database_url,
            "HXCHAT_REDIS_URL": self.redis_url,
            "HXCHAT_ECHO_DELAY_MS": str(ECHO_DELAY_MS),
            **MANY_ANSWERS,
            **extra,
        }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("workers")
    with (
        shared_environment(workdir, REDIS_DB, ECHO_DELAY_MS) as env,
        workers(workdir, [env] * 4) as servers,
    ):
        yield Cluster(workdir, env["HXCHAT_DATABASE_URL"], env["HXCHAT_REDIS_URL"], *servers)


def assert_once_in_order(received: list[Received]) -> None:
    """Event ids strictly increase across the readings: none twice, none skipped back."""
    ids = [tuple(int(n) for n in str(e.id).split("-")) for r in received for e in r.events]
    assert all(e.id for r in received for e in r.events)
    assert ids == sorted(set(ids)), f"ids repeat or go back: {ids}"


async def test_post_on_a_stream_from_b_resume_on_c(cluster: Cluster) -> None:
    message = words(20)
    async with session() as user:
        cid = await user.new_conversation(cluster.a)
        # The cookie A set is valid on B (the key is shared through the database).
        on_b = await user.request("GET", cluster.b, f"/api/conversations/{cid}")
        assert on_b.status_code == 200, on_b.text
        assert "set-cookie" not in on_b.headers

        started = await user.send(cluster.a, cid, message)
        first = await user.read(cluster.b, started["events_url"], stop_after=4)
        assert first.status == 200
        assert len(first.deltas) == 4 and first.final is None
        rest = await user.read(cluster.c, started["events_url"], first.events[-1].id)
        assert rest.status == 200

        assert_once_in_order([first, rest])
        assert first.text + rest.text == message
        assert rest.final is not None and rest.final.event == "done"
        assert rest.final.json()["status"] == "complete"
        # Reconnecting after the final event tells an EventSource to stop.
        again = await user.read(cluster.b, started["events_url"], rest.final.id)
        assert again.status == 204
        stored = await user.answer(cluster.c, cid)
        assert (stored["status"], stored["content"]) == ("complete", message)
        assert stored["id"] == rest.final.json()["message_id"]


async def test_cancel_from_b_stops_a_generation_running_on_a(cluster: Cluster) -> None:
    message = words(60)
    async with session() as user:
        cid = await user.new_conversation(cluster.a)
        started = await user.send(cluster.a, cid, message)
        reader = asyncio.create_task(user.read(cluster.c, started["events_url"]))
        await asyncio.sleep(1.5)  # Stop in the middle of the 12 s answer
        cancelled = await user.request(
            "POST", cluster.b, f"/api/generations/{started['generation_id']}/cancel"
        )
        assert cancelled.status_code == 202
        received = await reader
        assert received.final is not None and received.final.event == "done"
        assert received.final.json()["status"] == "stopped"
        stored = await user.answer(cluster.b, cid)
        assert stored["status"] == "stopped"
        assert stored["content"] and len(stored["content"]) < len(message)
        assert message.startswith(stored["content"])
        assert stored["content"].startswith(received.text)
        # Stopped within a second or so of the request, not at the end of the answer.
        assert len(split_words(stored["content"])) <= 2.5 * WORDS_PER_SECOND + 1


def test_serve_refuses_a_database_whose_schema_is_behind(cluster: Cluster) -> None:
    with postgres_database() as empty:
        result = run_hxchat(cluster.workdir, cluster.env(HXCHAT_DATABASE_URL=empty), "serve")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "hxchat db upgrade" in lines[0]
    assert "Traceback" not in result.stdout + result.stderr


def test_serve_refuses_several_workers_without_redis(cluster: Cluster) -> None:
    env = cluster.env()
    del env["HXCHAT_REDIS_URL"]
    result = run_hxchat(cluster.workdir, env, "serve", "--workers", "2")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "HXCHAT_REDIS_URL" in lines[0]


async def test_serve_with_two_uvicorn_workers_spreads_requests(cluster: Cluster) -> None:
    message = words(5)
    async with session(keepalive=False) as user:
        # An answer running on A while new workers start: their start-up sweep must
        # leave another live worker's generation alone.
        running = await user.new_conversation(cluster.a)
        await user.send(cluster.a, running, words(40))
        with serving(cluster.workdir, cluster.env(), "--workers", "2") as server:
            server.wait_started(processes=2)
            generations: list[str] = []
            for _round in range(5):  # each connection goes to the process that accepts it
                batch = await asyncio.gather(*(user.new_conversation(server) for _ in range(6)))
                started = await asyncio.gather(*(user.send(server, c, message) for c in batch))
                generations += [s["generation_id"] for s in started]
                rows = await query(cluster.database_url, WORKERS_OF, ids=generations)
                if len(rows) >= 2:
                    break
            assert len(rows) == 2, "every request went to the same worker process"

            readings = await asyncio.gather(
                *(user.read(server, f"/api/generations/{g}/events") for g in generations)
            )
            for received in readings:
                assert received.text == message
                assert received.final is not None and received.final.event == "done"

        settled, _ = await user.settled_answer(cluster.b, running, within=15)
        assert (settled["status"], settled["content"]) == ("complete", words(40))


async def test_a_killed_worker_leaves_its_answer_interrupted(cluster: Cluster) -> None:
    message = words(75)  # 15 s: still running when the survivors notice
    other_message = words(25)
    async with session() as user:
        finished = await user.new_conversation(cluster.d)
        done = await user.send(cluster.d, finished, words(3))
        await user.read(cluster.d, done["events_url"])

        cid = await user.new_conversation(cluster.d)
        started = await user.send(cluster.d, cid, message)
        other = await user.new_conversation(cluster.b)
        other_started = await user.send(cluster.b, other, other_message)
        reader = asyncio.create_task(user.read(cluster.b, started["events_url"], within=40))
        other_reader = asyncio.create_task(user.read(cluster.c, other_started["events_url"]))

        await asyncio.sleep(2.5)  # both answers well under way
        cluster.d.kill()  # SIGKILL: no clean-up at all

        answer, waited = await user.settled_answer(
            cluster.b, cid, within=LEASE_SECONDS + SWEEP_SECONDS + 8
        )
        assert answer["status"] == "interrupted", f"still {answer['status']} after {waited:.1f} s"
        assert waited <= LEASE_SECONDS + SWEEP_SECONDS + 3

        received = await reader
        assert received.final is not None and received.final.event == "error"
        assert received.final.json()["message"]
        assert received.final.id is not None
        delivered = received.text
        stored = answer["content"]
        assert stored and message.startswith(stored)
        assert delivered.startswith(stored)
        behind = len(split_words(delivered[len(stored) :]))
        assert behind <= 1.6 * WORDS_PER_SECOND, f"the checkpoint was {behind} words behind"

        # The conversation is free again, on any surviving worker.
        again = await user.send(cluster.c, cid, words(4))
        after = await user.read(cluster.a, again["events_url"])
        assert after.final is not None and after.final.json()["status"] == "complete"
        assert after.text == words(4)

        # Nothing else was affected: a concurrent answer and an earlier conversation.
        other_received = await other_reader
        assert other_received.text == other_message
        assert other_received.final is not None and other_received.final.event == "done"
        assert (await user.answer(cluster.a, other))["status"] == "complete"
        earlier = await user.answer(cluster.a, finished)
        assert (earlier["status"], earlier["content"]) == ("complete", words(3))
