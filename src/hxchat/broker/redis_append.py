"""The Redis log's append: one Lua script, and its command packed for the wire.

An append is atomic in Redis (`APPEND`: already finished? too many events? this very
append retried? then the writes). It is the hot path of a worker on Redis, one per
merged delta of every answer, so its command is packed here in Redis's protocol
(RESP) rather than by redis-py's generic packer, and what is the same at every append
of a generation (its four keys) or of the log (the limits) is packed once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from hxchat.broker.redis_batch import bulk
from hxchat.domain import EventKind

TOO_MANY = "HXCHAT_TOO_MANY_EVENTS"
# What the script answers for a log that is already finished, before the final event's
# id: the append was ignored (the id is not this event's).
FINISHED = "finished "
KEYS_KEPT = 10_000  # generations whose keys are kept packed (then all are made again)

# KEYS: stream, open marker, end marker, cancel flag
# ARGV: kind, data, token, final (1/0), maxlen, ttl ms, running ttl ms
APPEND = f"""
local final_id = redis.call('GET', KEYS[3])
if final_id then return '{FINISHED}' .. final_id end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if last then
  local fields = last[2]
  for i = 1, #fields, 2 do
    if fields[i] == 't' and fields[i + 1] == ARGV[3] then return last[1] end
  end
end
local maxlen = tonumber(ARGV[5])
if ARGV[4] == '0' and redis.call('XLEN', KEYS[1]) >= maxlen then
  return redis.error_reply('HXCHAT_TOO_MANY_EVENTS')
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen + 1, '*',
                      'kind', ARGV[1], 'data', ARGV[2], 't', ARGV[3])
if ARGV[4] == '1' then
  redis.call('SET', KEYS[3], id, 'PX', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[7])
end
return id
"""
APPEND_SHA = hashlib.sha1(APPEND.encode(), usedforsecurity=False).hexdigest()


# `EVALSHA <sha> 4` in Redis's protocol (RESP), the head of every append: an append
# packs only its own 11 values (`bulk`), for a fraction of redis-py's packer.
_EVALSHA_APPEND = bulk("EVALSHA") + bulk(APPEND_SHA) + bulk(4)
# `json.dumps` with arguments builds an encoder per call; this one is made once.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

_KINDS = {kind: bulk(kind.value) for kind in EventKind}
_FINAL = {True: bulk("1"), False: bulk("0")}

Command = tuple[Any, ...]  # the script's keys and arguments


def event_of(command: Command) -> tuple[str, str]:
    """An append command's event: its kind and its data as JSON (the script's first two
    arguments, after its four keys: `Appends.command`)."""
    return command[4], command[5]


def packed_append(command: Command) -> bytes:
    """`EVALSHA <sha> 4 *command` in RESP (an append sent again; `Appends` packs new
    ones with what it has packed already)."""
    values = b"".join(map(bulk, command))
    return b"*%d\r\n%b%b" % (3 + len(command), _EVALSHA_APPEND, values)


class Appends:
    """The append commands of one log, each as arguments (kept to be sent again, or
    sent whole with EVAL) and packed."""

    def __init__(
        self,
        stream: Callable[[str], str],
        cancel_flag: Callable[[str], str],
        maxlen: int,
        ttl_ms: int,
        running_ttl_ms: int,
    ) -> None:
        self._stream = stream
        self._cancel_flag = cancel_flag
        self._limits = (maxlen, ttl_ms, running_ttl_ms)
        self._packed_limits = b"".join(map(bulk, self._limits))
        self._keys: dict[str, tuple[Command, bytes]] = {}
        # An append's token only has to differ from the one before it in its stream:
        # a random prefix per instance and a counter (no system call per word).
        self._token_prefix = secrets.token_hex(6)
        self._tokens = itertools.count()

    def command(
        self, generation_id: str, kind: EventKind, data: Mapping[str, Any]
    ) -> tuple[Command, bytes]:
        final = kind.is_final
        keys, packed_keys = self._keys_of(generation_id, final)
        data_json = _JSON(data)
        token = f"{self._token_prefix}{next(self._tokens):x}"
        command = (*keys, kind.value, data_json, token, "1" if final else "0", *self._limits)
        packed = b"*%d\r\n%b%b%b%b%b%b%b" % (
            3 + len(command),
            _EVALSHA_APPEND,
            packed_keys,
            _KINDS[kind],
            bulk(data_json),
            bulk(token),
            _FINAL[final],
            self._packed_limits,
        )
        return command, packed

    def _keys_of(self, generation_id: str, final: bool) -> tuple[Command, bytes]:
        """A generation's four keys and the same packed: made at its first append and
        forgotten at its final one (or with all the others past `KEYS_KEPT`: a
        generation whose final event never came costs memory until then, no more)."""
        known = self._keys.pop(generation_id, None) if final else self._keys.get(generation_id)
        if known is None:
            stream = self._stream(generation_id)
            keys = (stream, f"{stream}:open", f"{stream}:end", self._cancel_flag(generation_id))
            known = (keys, b"".join(map(bulk, keys)))
            if not final:
                if len(self._keys) >= KEYS_KEPT:
                    self._keys.clear()
                self._keys[generation_id] = known
        return known
