"""What Gemini receives of a user's files (#11), through the real ADK `Runner`.

Images and PDFs go as inline parts with their media types, framed by their names;
text files as text headed by their names. A file too big for the request goes
through the Files API: the real google-genai client uploads it to the scripted
Gemini API on loopback (the resumable upload protocol), and the request names the
uploaded file. Nothing leaves loopback.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from hxchat.config import Settings
from hxchat.domain import Attachment
from hxchat.errors import ProviderError, ProviderUnavailable
from hxchat.providers.base import ChatModel
from hxchat.providers.gemini import GeminiModel
from hxchat.providers.gemini_files import INLINE_BUDGET_BYTES
from hxchat.providers.registry import build_model
from tests.helpers import run, text_of
from tests.model_files import answered, document, image, pdf, png, said, text_file
from tests.scripted_gemini import (
    ScriptedGeminiAPI,
    answer,
    body_parts,
    content_parts,
    llm_of,
    scripted_models,
)

GEMINI_ENV = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_CLOUD_PROJECT",
)
KEY = "test-key-not-secret"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(first_token_timeout=10.0, token_timeout=5.0)


@pytest.fixture
async def scripted(settings: Settings) -> AsyncIterator[Callable[..., GeminiModel]]:
    """GeminiModels on a scripted ADK model that answers "Seen."; closed afterwards."""
    async with scripted_models(settings) as make:
        yield lambda **overrides: make(answer(["Seen."]), **overrides)


async def test_images_and_pdfs_go_as_parts_and_text_files_as_text(
    scripted: Callable[..., GeminiModel],
) -> None:
    shot, report, notes = image("cat.png", png(5, 5)), document("report.pdf"), text_file()
    model = scripted()
    events, error = await run(model, [said("Compare them.", shot, report, notes)])
    assert error is None
    assert text_of(events) == "Seen."
    assert content_parts(llm_of(model).requests[0].contents[-1]) == [
        ("text", '<file name="cat.png">'),
        ("inline", "image/png", shot.data),
        ("text", "</file>"),
        ("text", '<file name="report.pdf">'),
        ("inline", "application/pdf", report.data),
        ("text", "</file>"),
        ("text", '<file name="notes.md">\n# Notes\nBuy milk.\n</file>'),
        ("text", "Compare them."),
    ]


async def test_a_gif_gemini_would_refuse_becomes_a_note_and_the_answer_works(
    scripted: Callable[..., GeminiModel],
) -> None:
    gif = Attachment("dance.gif", "image/gif", b"GIF89a" + bytes(20))
    model = scripted()
    events, error = await run(model, [said("What is it?", gif)])
    assert error is None
    assert text_of(events) == "Seen."
    [(kind, note), question] = content_parts(llm_of(model).requests[0].contents[-1])
    assert kind == "text"
    assert note.startswith('<file name="dance.gif">(The user attached a file here in a format')
    assert "image/gif" in note
    assert question == ("text", "What is it?")


async def test_files_of_earlier_messages_reach_gemini_and_the_budget_counts_them(
    scripted: Callable[..., GeminiModel],
) -> None:
    old, shot = text_file("log.txt", "x" * 8_000), image("cat.png")
    history = [
        said("Read this log.", old),
        answered("Done."),
        said("Look.", shot),
        answered("A red cat."),
        said("Sure?"),
    ]
    model = scripted(history_budget_chars=5_000)
    _, error = await run(model, history)
    assert error is None
    contents = llm_of(model).requests[0].contents
    assert [content.role for content in contents] == ["user", "model", "user"]
    assert content_parts(contents[0]) == [
        ("text", '<file name="cat.png">'),
        ("inline", "image/png", shot.data),
        ("text", "</file>"),
        ("text", "Look."),
    ]
    assert content_parts(contents[2]) == [("text", "Sure?")]


# -- the real google-genai client, against the scripted Gemini API ------------------


@pytest.fixture
def gemini_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedGeminiAPI]:
    for name in GEMINI_ENV:
        monkeypatch.delenv(name, raising=False)
    with ScriptedGeminiAPI([answer(["Seen."])]) as server:
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.base_url)
        monkeypatch.setenv("GOOGLE_API_KEY", KEY)
        yield server


@pytest.fixture
async def gemini(
    gemini_api: ScriptedGeminiAPI, make_settings: Callable[..., Settings]
) -> AsyncIterator[ChatModel]:
    """`gemini:gemini-2.5-flash` as `hxchat serve` builds it, on the scripted API."""
    model = build_model(make_settings(model="gemini:gemini-2.5-flash", token_timeout=10))
    yield model
    await model.close()


async def test_the_api_receives_inline_data_with_media_types(
    gemini: ChatModel, gemini_api: ScriptedGeminiAPI
) -> None:
    shot, report = image("cat.png"), document("report.pdf")
    _, error = await run(gemini, [said("What do they show?", shot, report)])
    assert error is None
    assert body_parts(gemini_api.bodies[0]["contents"][-1]) == [
        ("text", '<file name="cat.png">'),
        ("inline", "image/png", shot.data),
        ("text", "</file>"),
        ("text", '<file name="report.pdf">'),
        ("inline", "application/pdf", report.data),
        ("text", "</file>"),
        ("text", "What do they show?"),
    ]
    assert gemini_api.uploads == []


def big_report() -> Attachment:
    """A PDF over what a request may carry inline (padded after its end, as some are)."""
    data = pdf("A long annual report.")
    data += b"%" + b"0" * (INLINE_BUDGET_BYTES + 1024 - len(data)) + b"\n"
    return Attachment("annual report.pdf", "application/pdf", data, "A long annual report.")


async def test_a_file_over_the_inline_limit_goes_through_the_files_api_once(
    gemini: ChatModel, gemini_api: ScriptedGeminiAPI
) -> None:
    report = big_report()
    shot = image("cat.png")
    history = [said("Read this.", report, shot), answered("Read."), said("Summarise it.")]
    for question in (history[:1], history):
        events, error = await run(gemini, question)
        assert error is None
        assert text_of(events) == "Seen."

    [upload] = gemini_api.uploads  # the second answer reused the first upload
    assert upload.done
    assert upload.mime_type == "application/pdf"
    assert upload.display_name == "annual report.pdf"
    assert bytes(upload.data) == report.data
    file_uri = f"{gemini_api.base_url}/v1beta/files/scripted-0"
    for body in gemini_api.bodies:
        assert body_parts(body["contents"][0]) == [
            ("text", '<file name="annual report.pdf">'),
            ("file", "application/pdf", file_uri),
            ("text", "</file>"),
            ("text", '<file name="cat.png">'),
            ("inline", "image/png", shot.data),  # small files stay inline
            ("text", "</file>"),
            ("text", "Read this."),
        ]
    assert all(len(request.body) < 1024 * 1024 for request in gemini_api.requests[-2:])
    assert base64.b64encode(report.data[:3000]) not in gemini_api.requests[-1].body


async def test_a_refused_upload_is_a_readable_error(
    gemini: ChatModel, gemini_api: ScriptedGeminiAPI
) -> None:
    gemini_api.upload_status = 503
    report = big_report()
    events, error = await run(gemini, [said("Read this.", report)])
    assert events == []
    assert isinstance(error, ProviderUnavailable)
    assert error.detail == (
        f"The Gemini API at {gemini_api.base_url} failed (HTTP 503). Please try again in a moment."
    )
    assert gemini_api.bodies == []  # no answer was asked for without the file


async def test_a_file_google_is_still_processing_is_waited_for(
    gemini: ChatModel, gemini_api: ScriptedGeminiAPI
) -> None:
    gemini_api.file_states = ["PROCESSING", "PROCESSING", "ACTIVE"]
    report = big_report()
    events, error = await run(gemini, [said("Read this.", report)])
    assert error is None
    assert text_of(events) == "Seen."
    assert gemini_api.uploads[0].looked_at == 2
    assert ("file", "application/pdf", f"{gemini_api.base_url}/v1beta/files/scripted-0") in (
        body_parts(gemini_api.bodies[0]["contents"][-1])
    )


async def test_a_file_google_could_not_process_is_a_readable_error(
    gemini: ChatModel, gemini_api: ScriptedGeminiAPI
) -> None:
    gemini_api.file_states = ["PROCESSING", "FAILED"]
    report = big_report()
    events, error = await run(gemini, [said("Read this.", report)])
    assert events == []
    assert isinstance(error, ProviderError)
    assert error.detail == "Gemini could not read the file annual report.pdf."
