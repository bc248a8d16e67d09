"""How much of a conversation a model is shown.

A long conversation must keep working instead of failing on the model's context
limit, so every provider sends a trimmed history: the oldest turns go first, the
user's newest message always stays. Counting characters (not tokens) keeps this free
of tokenizers and equally rough for every model; the budget is a setting.

A turn's files count too (`attachments.cost`): an image a fixed `IMAGE_COST_CHARS`,
a text file or a PDF the text a model gets for it. A turn goes whole or stays whole,
with its files: an old screenshot is dropped with the question it came with.
"""

from __future__ import annotations

from collections.abc import Sequence

from hxchat.domain import Role, Turn
from hxchat.providers.attachments import cost


def turn_cost(turn: Turn) -> int:
    """What a turn costs in the budget, in characters: its text and its files."""
    return len(turn.content) + sum(cost(attachment) for attachment in turn.attachments)


def trim_history(turns: Sequence[Turn], budget_chars: int) -> list[Turn]:
    """The newest turns whose content fits `budget_chars`, oldest dropped first.

    The last user turn is always kept whole (its length is capped by
    HXCHAT_MAX_MESSAGE_CHARS and its files by HXCHAT_MAX_FILES_PER_MESSAGE anyway),
    even when it alone exceeds the budget. Turns without text or files are left out
    (a stopped answer that wrote nothing tells the model nothing), and the result
    does not start with an assistant turn when a user turn can start it.
    """
    kept = [turn for turn in turns if turn.content.strip() or turn.attachments]
    last_user = next(
        (index for index in range(len(kept) - 1, -1, -1) if kept[index].role is Role.USER),
        None,
    )
    if last_user is None:
        start, used = len(kept), 0  # no user turn at all: the newest turns that fit
    else:
        # The last user turn, and whatever follows it (normally nothing), stay.
        start, used = last_user, sum(turn_cost(turn) for turn in kept[last_user:])
    while start > 0 and used + turn_cost(kept[start - 1]) <= budget_chars:
        start -= 1
        used += turn_cost(kept[start])
    result = kept[start:]
    while len(result) > 1 and result[0].role is Role.ASSISTANT and _has_user(result[1:]):
        result = result[1:]
    return result


def _has_user(turns: Sequence[Turn]) -> bool:
    return any(turn.role is Role.USER for turn in turns)
