"""The names of the browser stream's events, and which element swaps each.

One definition for the places that must agree: the stream that sends the events
(`web/browser_stream.py`, and `render/view.py` for the sink it writes into the tail),
and the templates whose elements swap them in (`sse-swap`, `sse-close` in
`templates/_message.html`), which get them as the `wire` global: `{{ wire.BODY }}`.
The frequent ones have one-letter names: every frame carries them.

In the order of an answer:

- `FRAME` (`frame`): out-of-band swaps (`hx-swap-oob`): the snapshot of the answer so
  far that starts every connection, then the activity line and the sources when they
  change. The answer's `.answer` element listens, with `hx-swap="none"`.
- `BODY` (`b`): finished blocks, rendered once: appended to the body (`#body-N`).
- `TAIL` (`r`): a new tail (the unfinished last block): replaces the tail's content
  (`#tail-N`), through a hidden listener that targets it.
- `SINK` (`s`): new text for the sink of a plain-text tail, replacing the sink's text,
  through a hidden listener that targets the sink: the sink's markup is not sent again.
- `APPEND` (`message`): new text, escaped, appended to the tail's sink, the one
  element in the tail with this `sse-swap` (it inherits `hx-swap="beforeend"` from the
  tail). The most frequent event, so it is sent unnamed: without an `event:` field,
  which SSE reads as `message`.
- `END` (`end`): the finished article, swapped out of band by the `.answer` element,
  which then closes the connection (`sse-close`).
"""

from __future__ import annotations

from enum import StrEnum


class BrowserEvent(StrEnum):
    FRAME = "frame"
    BODY = "b"
    TAIL = "r"
    SINK = "s"
    APPEND = "message"
    END = "end"

    @property
    def field(self) -> str | None:
        """The `event:` field that names it on the wire: none for `message`."""
        return None if self is BrowserEvent.APPEND else self.value
