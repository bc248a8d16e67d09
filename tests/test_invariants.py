"""The timing chain, asserted on the constants themselves (docs/architecture.md,
"The timing chain").

Several timeouts in different modules only work together: the Redis batch's retries
must end inside the command timeout, a live worker must renew its lease well within
the lease, the runner's retries at the end of an answer must outlast the outages they
are meant to ride out and end long before a running log would be dropped. Each test
below is one link; changing a constant the wrong way fails it.
"""

from __future__ import annotations

from hxchat import answering, supervision
from hxchat.backoff import Backoff
from hxchat.broker import follow, memory, redis_batch, redis_follow, redis_streams
from hxchat.domain import FRAME_INTERVAL
from hxchat.store import engine

LEASE = supervision.LEASE_SECONDS
CHECKPOINT = supervision.CHECKPOINT_SECONDS
SWEEP = supervision.SWEEP_SECONDS
COMMAND_TIMEOUT = redis_streams.COMMAND_TIMEOUT
# The longest one attempt to store the end may take before it fails: connecting to
# PostgreSQL, or waiting for SQLite's write lock.
STORE_CALL_SECONDS = max(engine.PG_CONNECT_TIMEOUT_S, engine.SQLITE_BUSY_TIMEOUT_MS / 1000)
END_BACKOFF = Backoff(*answering.END_BACKOFF)


def total_wait(backoff: Backoff, attempts: int) -> float:
    """How long `retrying` waits in all when every one of `attempts` tries fails."""
    probe = Backoff(backoff.first, backoff.most)
    return sum(probe.next() for _ in range(attempts - 1))


# The waits between the tries of storing the end and of appending the final event.
STORE_END_WAIT = total_wait(END_BACKOFF, answering.STORE_END_ATTEMPTS)
FINAL_EVENT_WAIT = total_wait(END_BACKOFF, answering.FINAL_EVENT_ATTEMPTS)


# -- the Redis event log -----------------------------------------------------------


def test_a_redis_batch_gives_up_before_its_caller_does() -> None:
    """A batch whose connection was lost is sent again for RETRY_SECONDS, "within the
    callers' 5 s": every log call is bounded by COMMAND_TIMEOUT, and the batch must
    settle its commands (the caller then knows the append is uncertain) before that
    bound cuts the caller off in the middle of a re-send."""
    assert redis_batch.RETRY_SECONDS < COMMAND_TIMEOUT


# -- leases ------------------------------------------------------------------------


def test_a_quiet_writers_stream_is_read_again_before_its_readers_ask_the_store() -> None:
    """A worker's shared read skips a stream whose writer is that worker while it
    appends; quiet for `FED`, the stream is read again, so another worker's final event
    (a sweeper's) reaches its readers before they give up waiting and ask the store."""
    assert redis_follow.FED < follow.QUIET_CHECK
    assert redis_follow.FED >= 10 * FRAME_INTERVAL  # never between two merged deltas


def test_a_live_worker_renews_its_lease_well_within_it() -> None:
    """The maintenance loop checkpoints every CHECKPOINT_SECONDS and, in the same task,
    sweeps; a sweep's broker call may hold the next checkpoint up to COMMAND_TIMEOUT.
    A live worker must still renew before its lease runs out, or the others take its
    running answers for dead ones."""
    assert CHECKPOINT < LEASE
    assert CHECKPOINT + COMMAND_TIMEOUT < LEASE


def test_a_dead_workers_answer_is_swept_soon_after_its_lease() -> None:
    """A dead worker's answer becomes `interrupted` within a lease and a sweep; sweeping
    less often than a lease lasts would let that double."""
    assert SWEEP < LEASE


def test_storing_the_end_is_retried_for_longer_than_a_lease() -> None:
    """The end is stored before the final event, and while it is retried the answer is
    no longer checkpointed. The runner keeps trying for longer than a lease, so a
    database outage that other workers cannot yet take for a death costs the answer
    nothing (its real ending is stored once the database is back); "about 35 s"."""
    assert STORE_END_WAIT > LEASE


# -- the final event and the readers -----------------------------------------------


def test_the_final_event_outlasts_a_redis_restart() -> None:
    """The final event is retried "for about a minute and a half" (docs/deployment.md),
    far beyond the batch's own RETRY_SECONDS: a Redis restart or failover of a minute
    still gets the answer's own final event into the log."""
    assert FINAL_EVENT_WAIT >= 60
    assert FINAL_EVENT_WAIT > redis_batch.RETRY_SECONDS + COMMAND_TIMEOUT


def test_once_redis_is_back_the_final_event_comes_before_readers_give_up_on_it() -> None:
    """A reader that resumes after an outage ends from the store only when the store
    has said twice, QUIET_CHECK apart, that the answer is over. The runner's next try
    after Redis is back comes at most one backoff step later; keeping that step within
    two quiet checks lets readers usually get the log's own final event (whose id a
    reconnect turns into 204) rather than the one rebuilt from the store."""
    assert END_BACKOFF.most <= 2 * follow.QUIET_CHECK


def test_the_end_lands_long_before_a_running_log_is_dropped() -> None:
    """A running generation's log lives RUNNING_TTL on Redis (renewed by each append)
    and STALE_AFTER in memory without an event. Storing the end and then appending the
    final event, every attempt failing as slowly as it can, must end long before
    that, or the final event would come to a log that is gone."""
    worst = (
        STORE_END_WAIT
        + answering.STORE_END_ATTEMPTS * STORE_CALL_SECONDS
        + FINAL_EVENT_WAIT
        + answering.FINAL_EVENT_ATTEMPTS * COMMAND_TIMEOUT
    )
    assert worst * 100 < redis_streams.RUNNING_TTL
    assert worst * 100 < memory.STALE_AFTER


def test_a_quiet_stream_asks_the_store_before_its_next_ping() -> None:
    """A reader waits on the log for min(QUIET_CHECK, PING_SECONDS): the store check
    comes every QUIET_CHECK only while that is not longer than the ping interval."""
    assert follow.QUIET_CHECK <= follow.PING_SECONDS


def test_pings_come_before_a_proxy_closes_an_idle_stream() -> None:
    """A `: ping` after PING_SECONDS of silence keeps a stream open through proxies
    whose idle read timeout is the common 60 s (nginx's default)."""
    assert follow.PING_SECONDS < 60
