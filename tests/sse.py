"""A small Server-Sent Events parser for tests, after the WHATWG spec's rules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    id: str | None
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def parse(text: str) -> list[Event]:
    """Events in a whole stream body; comments are skipped, ids carry over."""
    events: list[Event] = []
    last_id: str | None = None
    name, data = "", list[str]()
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":
            if data:
                events.append(Event(last_id, name or "message", "\n".join(data)))
            name, data = "", list[str]()
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id":
            last_id = value
    return events


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(":")]
