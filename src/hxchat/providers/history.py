"""How much of a conversation a model is shown.

A long conversation must keep working instead of failing on the model's context
limit, so every provider sends a trimmed history: the oldest turns go first, the
user's newest message always stays. Counting characters (not tokens) keeps this free
of tokenizers and equally rough for every model; the budget is a setting.
"""

from __future__ import annotations

from collections.abc import Sequence

from hxchat.domain import Role, Turn


def trim_history(turns: Sequence[Turn], budget_chars: int) -> list[Turn]:
    """The newest turns whose content fits `budget_chars`, oldest dropped first.

    The last user turn is always kept whole (its length is capped by
    HXCHAT_MAX_MESSAGE_CHARS anyway), even when it alone exceeds the budget. Turns
    without text are left out (a stopped answer that wrote nothing tells the model
    nothing), and the result does not start with an assistant turn when a user turn
    can start it.
    """
    kept = [turn for turn in turns if turn.content.strip()]
    last_user = next(
        (index for index in range(len(kept) - 1, -1, -1) if kept[index].role is Role.USER),
        None,
    )
    if last_user is None:
        start, used = len(kept), 0  # no user turn at all: the newest turns that fit
    else:
        # The last user turn, and whatever follows it (normally nothing), stay.
        start, used = last_user, sum(len(turn.content) for turn in kept[last_user:])
    while start > 0 and used + len(kept[start - 1].content) <= budget_chars:
        start -= 1
        used += len(kept[start].content)
    result = kept[start:]
    while len(result) > 1 and result[0].role is Role.ASSISTANT and _has_user(result[1:]):
        result = result[1:]
    return result


def _has_user(turns: Sequence[Turn]) -> bool:
    return any(turn.role is Role.USER for turn in turns)
