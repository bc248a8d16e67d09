"""The built-in demo model: streams the user's words back, whitespace and all.

It needs no network, so it is the offline default and the engine of the fast tests
and the benchmarks. Words are released on a fixed schedule (start + i * delay), not
by sleeping a delay after each one, so a busy server shows up as lateness instead of
silently stretching the answer. Its usage counts words as tokens: in, the words of
every turn it was given; out, the words it gave back.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence

from hxchat import loops
from hxchat.domain import AgentEvent, Role, TextDelta, Turn, Usage

_WORD = re.compile(r"\s*\S+\s*|\s+")


def words(text: str) -> list[str]:
    """Split text into words that keep their whitespace: "".join(words(t)) == t."""
    return _WORD.findall(text)


class EchoModel:
    name = "echo"

    def __init__(self, delay: float = 0.03) -> None:
        self.delay = delay
        self._ticks: loops.Ticks | None = None  # shared by its streams on one loop

    async def stream(
        self, history: Sequence[Turn], *, instructions: str = ""
    ) -> AsyncIterator[AgentEvent]:
        """The user's last message again, word by word (instructions change nothing;
        nor does the echo model write titles: the first message stays the title)."""
        prompt = next((t.content for t in reversed(history) if t.role is Role.USER), "")
        loop = asyncio.get_running_loop()
        ticks = self._ticks = loops.ticks_on(loop, self._ticks)
        start = loop.time()
        delay = self.delay
        for index, word in enumerate(words(prompt)):
            due = start + index * delay
            if due > loop.time():  # a late word goes at once, without a trip round the loop
                await ticks.until(due)  # hxchat/loops.py
            yield TextDelta(word)
        read = sum(len(turn.content.split()) for turn in history)
        yield Usage(input_tokens=read, output_tokens=len(prompt.split()))

    async def close(self) -> None:
        return None
