"""Choose the event log from the settings: in memory unless `HXCHAT_REDIS_URL` is set.

Kept apart from both implementations so that the memory-only path never imports
redis-py's client, and the app's lifespan has one call to make.
"""

from __future__ import annotations

from hxchat.broker.base import EventLog
from hxchat.config import Settings

# A delta carries at least one character and the runner stops an answer at
# `max_answer_chars`; the rest leaves room for tool calls, results and the final event.
EVENT_HEADROOM = 1_000
DEFAULT_MAX_EVENTS = 200_000


def build_event_log(settings: Settings) -> EventLog:
    """The in-process log for one worker, or Redis Streams when a Redis URL is given."""
    max_events = max(DEFAULT_MAX_EVENTS, settings.max_answer_chars + EVENT_HEADROOM)
    if settings.redis_url is None:
        from hxchat.broker.memory import MemoryEventLog

        return MemoryEventLog(max_events=max_events)
    from hxchat.broker.redis_streams import RedisEventLog

    return RedisEventLog(settings.redis_url, maxlen=max_events)
