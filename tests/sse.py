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


class Parser:
    """Line by line: `line()` returns an event when a blank line completes one."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.name = ""
        self.data: list[str] = []

    def line(self, line: str) -> Event | None:
        if line == "":
            event = Event(self.last_id, self.name or "message", "\n".join(self.data))
            complete = bool(self.data)
            self.name, self.data = "", []
            return event if complete else None
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self.data.append(value)
        elif field == "event":
            self.name = value
        elif field == "id":
            self.last_id = value
        return None


def parse(text: str) -> list[Event]:
    """Events in a whole stream body; comments are skipped, ids carry over."""
    parser = Parser()
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [e for e in map(parser.line, lines) if e is not None]


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(":")]
