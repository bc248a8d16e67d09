"""What an OpenAI-compatible model receives of a user's files (#11).

The real `openai` SDK against the scripted server on loopback; the models are built
as `hxchat serve` builds them (`build_model`, with `HXCHAT_VISION_MODELS`), and each
test reads the recorded request the way the model does (`received_parts`): the image
itself for a vision model, a note naming it for the others, a PDF's extracted text, a
text file's text, each headed by the file's name; and the history budget, files
counted, dropping the oldest turns first.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hxchat.config import Settings
from hxchat.domain import Role, Turn
from hxchat.providers.base import ChatModel
from hxchat.providers.history import trim_history, turn_cost
from hxchat.providers.registry import build_model
from tests.helpers import run, text_of
from tests.model_files import answered, document, image, png, said, text_file
from tests.scripted_openai import ScriptedOpenAI, Text, received_parts

VISION = "openai:gpt-4o"  # matches HXCHAT_VISION_MODELS below
TEXT_ONLY = "openai:gpt-3.5-turbo"


@pytest.fixture
def server() -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI([Text(["Seen."])]) as scripted:
        yield scripted


@pytest.fixture
async def models(
    server: ScriptedOpenAI, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., ChatModel]]:
    """`models(spec, **settings)`: a model on the scripted server; closed afterwards."""
    built: list[ChatModel] = []
    env = {"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-test-not-secret"}

    def build(spec: str, **overrides: Any) -> ChatModel:
        settings = make_settings(
            model=VISION, vision_models="openai:gpt-4o*", search="none", **overrides
        )
        model = build_model(settings, env, spec)
        built.append(model)
        return model

    yield build
    for model in built:
        await model.close()


def last_message(server: ScriptedOpenAI) -> dict[str, Any]:
    message: dict[str, Any] = server.bodies[-1]["messages"][-1]
    return message


async def test_a_vision_model_gets_the_image_itself_with_its_name(
    models: Callable[..., ChatModel], server: ScriptedOpenAI
) -> None:
    shot = image("screen shot.png", png(8, 6, (10, 120, 250)))
    events, error = await run(models(VISION), [said("What is in it?", shot)])
    assert error is None
    assert text_of(events) == "Seen."
    assert received_parts(last_message(server)) == [
        ("text", '<file name="screen shot.png">'),
        ("image", "image/png", shot.data),
        ("text", "</file>\n\nWhat is in it?"),
    ]


async def test_a_model_without_vision_gets_a_note_naming_the_image_and_no_pixels(
    models: Callable[..., ChatModel], server: ScriptedOpenAI
) -> None:
    shot = image("diagram.png")
    events, error = await run(models(TEXT_ONLY), [said("What is in it?", shot)])
    assert error is None
    assert text_of(events) == "Seen."
    [(kind, text)] = received_parts(last_message(server))
    assert kind == "text"
    assert text.startswith('<file name="diagram.png">(The user attached an image here that you ')
    assert "cannot see" in text
    assert text.endswith("</file>\n\nWhat is in it?")
    sent = server.requests[-1].body
    assert b"image_url" not in sent
    assert base64.b64encode(shot.data) not in sent


@pytest.mark.parametrize("spec", [VISION, TEXT_ONLY])
async def test_pdfs_go_as_their_text_and_text_files_as_text_headed_by_their_names(
    models: Callable[..., ChatModel], server: ScriptedOpenAI, spec: str
) -> None:
    files = [
        document("report.pdf", "Revenue grew 12%."),
        document("scan.pdf", None),
        text_file("notes.md", "# Notes\nBuy milk."),
        text_file("data.csv", "a,b\n1,2"),
    ]
    _, error = await run(models(spec), [said("Summarise.", *files)])
    assert error is None
    [(kind, text)] = received_parts(last_message(server))
    assert kind == "text"
    blocks = text.split("\n\n")
    assert blocks[0] == '<file name="report.pdf">\nRevenue grew 12%.\n</file>'
    assert blocks[1].startswith('<file name="scan.pdf">(The user attached a PDF here, but no text')
    assert blocks[2:] == [
        '<file name="notes.md">\n# Notes\nBuy milk.\n</file>',
        '<file name="data.csv">\na,b\n1,2\n</file>',
        "Summarise.",
    ]
    assert b"JVBERi0" not in server.requests[-1].body  # no PDF bytes (base64 of "%PDF-")


async def test_a_message_of_files_only_is_sent(
    models: Callable[..., ChatModel], server: ScriptedOpenAI
) -> None:
    _, error = await run(models(TEXT_ONLY), [said("", text_file("todo.txt", "water plants"))])
    assert error is None
    assert received_parts(last_message(server)) == [
        ("text", '<file name="todo.txt">\nwater plants\n</file>')
    ]


async def test_files_of_earlier_messages_are_sent_again(
    models: Callable[..., ChatModel], server: ScriptedOpenAI
) -> None:
    shot = image("cat.png")
    history = [said("Look.", shot), answered("A red cat."), said("Sure?")]
    _, error = await run(models(VISION), history)
    assert error is None
    messages = server.bodies[-1]["messages"]
    assert [message["role"] for message in messages] == ["system", "user", "assistant", "user"]
    assert ("image", "image/png", shot.data) in received_parts(messages[1])
    assert received_parts(messages[3]) == [("text", "Sure?")]


async def test_the_budget_counts_files_and_drops_the_oldest_turns_first(
    models: Callable[..., ChatModel], server: ScriptedOpenAI
) -> None:
    history = [
        said("Read this log.", text_file("log.txt", "x" * 8_000)),
        answered("Done."),
        said("And these?", image("a.png"), image("b.png")),  # 2 x 4,000
        answered("Two cats."),
        said("Which is bigger?"),
    ]
    _, error = await run(models(VISION, history_budget_chars=10_000), history)
    assert error is None
    messages = server.bodies[-1]["messages"][1:]
    assert [message["role"] for message in messages] == ["user", "assistant", "user"]
    assert [part[:2] for part in received_parts(messages[0])] == [
        ("text", '<file name="a.png">'),
        ("image", "image/png"),
        ("text", '</file>\n\n<file name="b.png">'),
        ("image", "image/png"),
        ("text", "</file>\n\nAnd these?"),
    ]
    assert b"log.txt" not in server.requests[-1].body


async def test_images_cost_budget_even_without_text(
    models: Callable[..., ChatModel], server: ScriptedOpenAI
) -> None:
    history = []
    for number in range(5):
        history += [said("", image(f"{number}.png")), answered(f"Photo {number}.")]
    history.append(said("Which one was red?"))
    _, error = await run(models(TEXT_ONLY, history_budget_chars=10_000), history)
    assert error is None
    sent = [message["content"] for message in server.bodies[-1]["messages"][1:]]
    # Each photo costs 4,000 characters: the two newest fit in 10,000 with their answers.
    assert [content.partition(">")[0] for content in sent[::2]] == [
        '<file name="3.png"',
        '<file name="4.png"',
        "Which one was red?",
    ]


files = st.lists(
    st.one_of(
        st.just(image()),
        st.builds(text_file, st.just("f.txt"), st.text(max_size=300)),
        st.builds(document, st.just("d.pdf"), st.one_of(st.none(), st.text(max_size=300))),
    ),
    max_size=3,
)
turns = st.lists(
    st.builds(Turn, st.sampled_from(list(Role)), st.text(max_size=60), files.map(tuple)),
    max_size=20,
)


@given(history=turns, budget=st.integers(min_value=0, max_value=20_000))
def test_the_newest_turns_that_fit_are_kept_files_and_all(history: list[Turn], budget: int) -> None:
    trimmed = trim_history(history, budget)
    sent = [turn for turn in history if turn.content.strip() or turn.attachments]
    assert trimmed == sent[len(sent) - len(trimmed) :]  # a tail: the oldest went first
    users = [index for index, turn in enumerate(sent) if turn.role is Role.USER]
    if not users:
        return
    newest = len(sent) - users[-1]  # the newest user turn, and what follows it
    assert trimmed[0].role is Role.USER
    assert trimmed[-newest:] == sent[users[-1] :]
    if len(trimmed) > newest:
        assert sum(turn_cost(turn) for turn in trimmed) <= budget
    if len(trimmed) < len(sent):  # the turn before did not fit
        before = sent[len(sent) - len(trimmed) - 1]
        assert sum(turn_cost(turn) for turn in [before, *trimmed]) > budget or (
            before.role is Role.ASSISTANT
        )
