"""The event log's interface.

One log per generation. The writer (the generation runner) appends events whose ids
are monotonic; readers replay from a cursor and then follow live until the final
event (`done` or `error`). A finished log expires after a while; then readers fall
back to the stored message. Cancel is signalled through the log so that any worker
can stop a generation that runs on another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any, Protocol

from hxchat.domain import EventKind, LogEvent


def plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `data` as plain JSON data: what readers of the Redis log get, and out of
    reach of a caller that mutates its mapping later. Flat data (a text delta) is
    copied as it is; anything nested goes through a JSON round trip."""
    for value in data.values():  # a loop, not all(): this runs for every word
        if type(value) not in _FLAT:
            return dict(json.loads(json.dumps(data)))
    return dict(data)


_FLAT = frozenset({str, int, float, bool, type(None)})


class Position(Enum):
    """Where a reader with a cursor stands in a log."""

    MISSING = "missing"  # no such log: never created, or expired
    READABLE = "readable"  # there are (or will be) events after the cursor
    AT_END = "at_end"  # the log is finished and the cursor is at or past its final event


class EventLog(Protocol):
    async def create(self, generation_id: str) -> None:
        """Open an empty log, so that readers who come before the first event wait."""

    async def append(self, generation_id: str, kind: EventKind, data: Mapping[str, Any]) -> str:
        """Append one event and return its id. A final kind (`done`, `error`) finishes
        the log: it expires after the configured TTL."""

    async def read_batch(
        self, generation_id: str, after: str | None, timeout: float
    ) -> list[LogEvent] | None:
        """Every event after the cursor that is there now, waiting up to `timeout`
        seconds for the first one: [] when none came, None when the log is missing (or
        gone while waiting). What stream readers use: a batch per wake-up, no task.
        A malformed cursor counts as none."""

    async def position(self, generation_id: str, after: str | None = None) -> Position: ...

    async def request_cancel(self, generation_id: str) -> None:
        """Ask the worker that runs the generation, wherever it is, to stop it."""

    async def wait_cancelled(self, generation_id: str) -> None:
        """Return once a cancel was requested (also one requested before this call)."""

    async def ping(self) -> None:
        """Raise `BrokerUnavailable` unless the broker answers."""

    async def close(self) -> None: ...
