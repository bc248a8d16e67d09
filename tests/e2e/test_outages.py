"""Redis or PostgreSQL going away for a few seconds, and coming back (issue #5).

Two real `hxchat serve` processes reach Redis and PostgreSQL through TCP proxies
(`tcp_proxy`) that a test cuts (every connection reset, new ones refused) and
restores, so the shared servers themselves are never touched. While a dependency is
away, requests that need it answer 503 with a sentence and `/healthz` names the one
that is down; once it is back, service resumes by itself; an answer that was being
written when it went away is never left `streaming`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from hxchat.supervision import LEASE_SECONDS, SWEEP_SECONDS
from tests.e2e.cluster import (
    Received,
    Session,
    postgres_database,
    redis_database,
    session,
    words,
    workers,
)
from tests.e2e.tcp_proxy import TcpProxy
from tests.helpers import eventually
from tests.servers import Server, run_hxchat

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

REDIS_DB = 12
ECHO_DELAY_MS = 200
OUTAGE_SECONDS = 3.0
RECOVERY_SECONDS = 15.0  # from the end of an outage to /healthz 200 on every worker


@dataclass
class Setup:
    redis: TcpProxy
    postgres: TcpProxy
    w1: Server
    w2: Server


def through(proxy: TcpProxy, url: str) -> str:
    """`url` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{credentials}{at}127.0.0.1:{proxy.port}"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    workdir = tmp_path_factory.mktemp("outages")
    with postgres_database() as database_url, redis_database(REDIS_DB) as redis_url:
        redis_parts, pg_parts = urlsplit(redis_url), urlsplit(database_url)
        redis = TcpProxy(redis_parts.hostname or "127.0.0.1", redis_parts.port or 6379)
        postgres = TcpProxy(pg_parts.hostname or "127.0.0.1", pg_parts.port or 5432)
        try:
            env = {
                "HXCHAT_DATABASE_URL": through(postgres, database_url),
                "HXCHAT_REDIS_URL": through(redis, redis_url),
                "HXCHAT_ECHO_DELAY_MS": str(ECHO_DELAY_MS),
                "HXCHAT_SECRET_KEY": "e2e-outages-shared-secret",
            }
            upgraded = run_hxchat(workdir, env, "db", "upgrade")
            assert upgraded.returncode == 0, upgraded.stderr
            with workers(workdir, [env, env]) as (w1, w2):
                yield Setup(redis, postgres, w1, w2)
        finally:
            redis.close()
            postgres.close()


@pytest.fixture(autouse=True)
def _restored(setup: Setup) -> Iterator[None]:
    """Whatever a test did, the next one starts with both services reachable."""
    yield
    for proxy in (setup.redis, setup.postgres):
        if proxy.is_cut:
            proxy.restore()


async def healthz(user: Session, worker: Server) -> tuple[int, dict[str, Any]]:
    response = await user.request("GET", worker, "/healthz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def until_healthy(user: Session, *servers: Server) -> float:
    """Seconds until every worker's /healthz answers 200 (fails after RECOVERY_SECONDS)."""
    began = time.monotonic()

    async def healthy() -> None:
        for worker in servers:
            status, body = await healthz(user, worker)
            assert status == 200, f"{worker.url} still {status}: {body}"

    await eventually(healthy, within=RECOVERY_SECONDS, interval=0.2)
    return time.monotonic() - began


def assert_sentence(response: httpx.Response) -> str:
    """A 503 whose JSON body is {"detail": one readable sentence}."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail.endswith(".") and "\n" not in detail
    return str(detail)


async def assert_works(user: Session, worker: Server, reader: Server, cid: str) -> None:
    """A new message is answered and streams to `done`, as if nothing had happened."""
    message = words(6)
    started = await user.send(worker, cid, message)
    received = await user.read(reader, started["events_url"])
    assert received.text == message
    assert received.final is not None and received.final.event == "done"


async def test_redis_away_then_back(setup: Setup) -> None:
    async with session() as user:
        cid = await user.new_conversation(setup.w1)
        setup.redis.cut()
        cut_at = time.monotonic()

        posted = await user.request(
            "POST", setup.w1, f"/api/conversations/{cid}/messages", json={"content": "hello"}
        )
        assert "event broker" in assert_sentence(posted).lower()
        # What needs only the database still works: the history and its page.
        history = await user.request("GET", setup.w2, f"/api/conversations/{cid}")
        assert history.status_code == 200
        page = await user.request("GET", setup.w1, f"/c/{cid}")
        assert page.status_code == 200 and 'role="log"' in page.text
        for worker in (setup.w1, setup.w2):
            status, body = await healthz(user, worker)
            assert status == 503
            assert body["status"] == "unavailable"
            assert body["checks"]["store"] == "ok"
            assert "Redis" in body["checks"]["broker"]

        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
        setup.redis.restore()
        await until_healthy(user, setup.w1, setup.w2)
        await assert_works(user, setup.w1, setup.w2, cid)


async def test_postgres_away_then_back(setup: Setup) -> None:
    async with session() as user:
        cid = await user.new_conversation(setup.w1)
        setup.postgres.cut()
        cut_at = time.monotonic()

        posted = await user.request(
            "POST", setup.w2, f"/api/conversations/{cid}/messages", json={"content": "hello"}
        )
        assert "database" in assert_sentence(posted).lower()
        listed = await user.request("GET", setup.w1, "/api/conversations")
        assert_sentence(listed)
        for worker in (setup.w1, setup.w2):
            status, body = await healthz(user, worker)
            assert status == 503
            assert body["status"] == "unavailable"
            assert body["checks"]["broker"] == "ok"
            assert "database" in body["checks"]["store"].lower()

        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
        setup.postgres.restore()
        await until_healthy(user, setup.w1, setup.w2)
        await assert_works(user, setup.w2, setup.w1, cid)


@dataclass
class Outcome:
    """An answer that was being written while a service went away and came back."""

    user: Session
    conversation_id: str
    message: str
    events_url: str
    first: Received  # what a reader got before the outage
    answer: dict[str, Any]  # the stored answer, once it settled


@contextlib.asynccontextmanager
async def outage_during_an_answer(setup: Setup, proxy: TcpProxy) -> AsyncIterator[Outcome]:
    """Cut `proxy` while an answer is being written on w1, then restore it.

    The answer (3 s) ends during the outage; the outcome is what is stored once it
    has settled (at most a lease and a sweep after the outage).
    """
    message = words(15)
    async with session() as user:
        cid = await user.new_conversation(setup.w1)
        started = await user.send(setup.w1, cid, message)
        first = await user.read(setup.w2, started["events_url"], stop_after=3)
        proxy.cut()
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage
        proxy.restore()
        await until_healthy(user, setup.w1, setup.w2)
        answer, _ = await user.settled_answer(
            setup.w2, cid, within=LEASE_SECONDS + SWEEP_SECONDS + 5
        )
        yield Outcome(user, cid, message, started["events_url"], first, answer)


def assert_kept(outcome: Outcome, *statuses: str) -> None:
    """The answer ended with one of `statuses`, its text kept (all of it if complete)."""
    content, status = outcome.answer["content"], outcome.answer["status"]
    assert status in statuses
    assert content.startswith(outcome.first.text) and outcome.message.startswith(content)
    if status == "complete":
        assert content == outcome.message


async def assert_resumed_reader_sees_the_end(outcome: Outcome, reader: Server) -> None:
    """A reader that resumes after the outage gets the rest, then how the answer ended."""
    user, first = outcome.user, outcome.first
    rest = await user.read(reader, outcome.events_url, first.events[-1].id, within=12)
    assert rest.status == 200
    assert rest.final is not None, f"no final event within 12 s, only {rest.events}"
    expected = "done" if outcome.answer["status"] == "complete" else "error"
    assert rest.final.event == expected
    assert first.text + rest.text == outcome.answer["content"]


async def test_redis_away_while_an_answer_is_written(setup: Setup) -> None:
    async with outage_during_an_answer(setup, setup.redis) as outcome:
        assert_kept(outcome, "error", "interrupted", "complete")
        await assert_works(outcome.user, setup.w2, setup.w1, outcome.conversation_id)


async def test_redis_away_while_an_answer_is_written_its_reader_sees_the_end(
    setup: Setup,
) -> None:
    async with outage_during_an_answer(setup, setup.redis) as outcome:
        await assert_resumed_reader_sees_the_end(outcome, setup.w2)


async def test_postgres_away_while_an_answer_is_written(setup: Setup) -> None:
    async with outage_during_an_answer(setup, setup.postgres) as outcome:
        # The model never needed the database: the answer completes, stored late.
        assert_kept(outcome, "complete")
        await assert_resumed_reader_sees_the_end(outcome, setup.w2)
        await assert_works(outcome.user, setup.w2, setup.w1, outcome.conversation_id)
