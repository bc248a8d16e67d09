"""A scripted Gemini, two ways: an ADK `BaseLlm`, and Google's HTTP API on loopback.

`ScriptedGemini` (a `BaseLlm` subclass) answers from a script in-process: hxchat's
real `GeminiModel` runs the real ADK `Runner` and `Agent` (with the `google_search`
tool) on top of it; only the call to Google is replaced. It streams the way ADK
does under `StreamingMode.SSE`: `partial` responses with new text, then one final
response with the whole text, grounding metadata and the Search Suggestions chip;
or it fails mid-stream. Every `LlmRequest` is recorded::

    llm = ScriptedGemini(turns=[answer(["Paris ", "is the capital."], grounded())])
    model = GeminiModel(settings, llm=llm)
    llm.requests[0].contents  # what ADK sent: earlier turns, then the new message

(`scripted_models` makes such models for a test and closes them after it.)

Its name is a Gemini model name ("gemini-2.5-flash") because ADK's `google_search`
tool refuses models whose name is not Gemini's.

`ScriptedGeminiAPI` speaks `models/{model}:streamGenerateContent?alt=sse` over HTTP,
so even a real `hxchat serve` process can use it with nothing but google-genai's own
variables (no test hook in the product)::

    GOOGLE_GEMINI_BASE_URL=<api.base_url> GOOGLE_API_KEY=test HXCHAT_MODEL=gemini:gemini-2.5-flash

    python tests/scripted_gemini.py --port 0 --script grounded   # prints "listening on …"

It records the request bodies (`api.bodies`, and `GET /_requests` from another process).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.adk.models import LlmCapabilities
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import Field

if not __package__:  # run as `python tests/scripted_gemini.py`: find the `tests` package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hxchat.config import Settings
from hxchat.providers.gemini import GeminiModel
from tests.scripted_openai import Request, ScriptedHTTPServer, Writer, command_line

CHIP_HTML = (
    "<style>.container{display:flex}.chip{border-radius:16px;padding:4px 12px}</style>"
    '<div class="container"><a class="chip" href="https://www.google.com/search?q=capital+of+france"'
    ' target="_blank">capital of France</a></div>'
)


# -- what one model call does, step by step -----------------------------------------


@dataclass(frozen=True)
class Partial:
    """A streamed chunk: `partial=True`, only the new text."""

    text: str


@dataclass(frozen=True)
class Final:
    """The final response: the whole text again, with optional grounding."""

    text: str
    grounding: types.GroundingMetadata | None = None


@dataclass(frozen=True)
class Raise:
    """Raise mid-stream (as a failing HTTP call inside Gemini's client would)."""

    error: BaseException


@dataclass(frozen=True)
class ErrorResponse:
    """A response with `error_code`/`error_message` (e.g. a blocked answer)."""

    code: str
    message: str = ""


@dataclass(frozen=True)
class Sleep:
    """Send nothing for a while."""

    seconds: float


Step = Partial | Final | Raise | ErrorResponse | Sleep


def grounded(
    queries: Sequence[str] = ("capital of France",),
    pages: Sequence[tuple[str, str]] = (
        ("Paris - Wikipedia", "https://en.wikipedia.org/wiki/Paris"),
        ("France facts", "https://example.org/france"),
    ),
    chip: str | None = CHIP_HTML,
) -> types.GroundingMetadata:
    """Grounding metadata as Google Search grounding returns it."""
    return types.GroundingMetadata(
        web_search_queries=list(queries),
        grounding_chunks=[
            types.GroundingChunk(web=types.GroundingChunkWeb(title=title, uri=uri))
            for title, uri in pages
        ],
        search_entry_point=types.SearchEntryPoint(rendered_content=chip) if chip else None,
    )


def answer(parts: Sequence[str], grounding: types.GroundingMetadata | None = None) -> list[Step]:
    """A normal streamed answer: the parts as partials, then the final whole text."""
    return [*(Partial(part) for part in parts), Final("".join(parts), grounding)]


def echo(request: LlmRequest) -> list[Step]:
    """Stream the newest user message back, word by word."""
    text = "".join(part.text or "" for part in request.contents[-1].parts or ())
    words = text.split(" ")
    return answer([word + " " for word in words[:-1]] + words[-1:])


Turn = Sequence[Step] | Callable[[LlmRequest], Sequence[Step]]


class ScriptedGemini(BaseLlm):
    """Each model call plays the next turn of `turns` (starting over when they run out)."""

    model: str = "gemini-2.5-flash"
    turns: list[Any] = Field(default_factory=lambda: [answer(["Hello ", "from ", "Gemini."])])
    delay: float = 0.0
    requests: list[LlmRequest] = Field(default_factory=list)

    @property
    def capabilities(self) -> LlmCapabilities:
        return LlmCapabilities(output_schema_and_tools=False)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        self.requests.append(llm_request)
        turn = self.turns[(len(self.requests) - 1) % len(self.turns)]
        steps = turn(llm_request) if callable(turn) else turn
        for step in steps:
            if self.delay:
                await asyncio.sleep(self.delay)
            match step:
                case Partial(text):
                    yield LlmResponse(content=_model_text(text), partial=True)
                case Final(text, grounding):
                    yield LlmResponse(
                        content=_model_text(text),
                        grounding_metadata=grounding,
                        partial=False,
                        turn_complete=True,
                        finish_reason=types.FinishReason.STOP,
                        usage_metadata=usage_of(prompt_words(llm_request), text),
                    )
                case Raise(error):
                    raise error
                case ErrorResponse(code, message):
                    yield LlmResponse(error_code=code, error_message=message)
                case Sleep(seconds):
                    await asyncio.sleep(seconds)


@asynccontextmanager
async def scripted_models(settings: Settings) -> AsyncIterator[Callable[..., GeminiModel]]:
    """`make(*turns, **setting_overrides)`: a GeminiModel on a `ScriptedGemini` playing
    `turns` (none: its default); every model made is closed at the end."""
    models: list[GeminiModel] = []

    def make(*turns: Any, **overrides: Any) -> GeminiModel:
        llm = ScriptedGemini(turns=list(turns)) if turns else ScriptedGemini()
        model = GeminiModel(settings.model_copy(update=overrides), llm=llm)
        models.append(model)
        return model

    try:
        yield make
    finally:
        for model in models:
            await model.close()


def llm_of(model: GeminiModel) -> ScriptedGemini:
    """The scripted ADK model under `model` (what it was asked)."""
    assert isinstance(model.llm, ScriptedGemini)
    return model.llm


def prompt_words(request: LlmRequest) -> int:
    """What the scripted model reports as its input tokens: the words it was sent."""
    return sum(len(text.split()) for _role, text in request_texts(request))


def usage_of(prompt: int, text: str) -> types.GenerateContentResponseUsageMetadata:
    """Usage metadata as Gemini reports it, with words as tokens: the prompt's, and the
    answer's so far."""
    answered = len(text.split())
    return types.GenerateContentResponseUsageMetadata(
        prompt_token_count=prompt,
        candidates_token_count=answered,
        total_token_count=prompt + answered,
    )


def _model_text(text: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part(text=text)])


def content_parts(content: types.Content) -> list[tuple[Any, ...]]:
    """A content's parts as the model reads them: `("text", str)`, `("inline",
    mime_type, bytes)` for inline data, `("file", mime_type, uri)` for an uploaded file."""
    parts: list[tuple[Any, ...]] = []
    for part in content.parts or ():
        if part.inline_data is not None:
            parts.append(("inline", part.inline_data.mime_type, part.inline_data.data))
        elif part.file_data is not None:
            parts.append(("file", part.file_data.mime_type, part.file_data.file_uri))
        else:
            parts.append(("text", part.text))
    return parts


def body_parts(content: dict[str, Any]) -> list[tuple[Any, ...]]:
    """`content_parts` of a content in a recorded HTTP request body (base64 decoded)."""
    return content_parts(types.Content.model_validate(content))


def request_texts(request: LlmRequest) -> list[tuple[str, str]]:
    """(role, text) of every content in a recorded request, for assertions."""
    return [
        (content.role or "", "".join(part.text or "" for part in content.parts or ()))
        for content in request.contents
    ]


# -- Google's HTTP API on loopback ------------------------------------------------------


@dataclass(frozen=True)
class ApiStatus:
    """An HTTP error with Google's error body."""

    code: int
    status: str = "INTERNAL"
    message: str = "scripted failure"


@dataclass(frozen=True)
class ApiCut:
    """Stream these parts, then drop the connection."""

    parts: Sequence[str]


ApiReply = Sequence[Step] | ApiStatus | ApiCut

#: Named scripts for `ScriptedGeminiAPI`; each is the list of replies it cycles through.
SCRIPTS: dict[str, Callable[[], list[ApiReply]]] = {
    "hello": lambda: [answer(["Hello ", "from ", "Gemini."])],
    "grounded": lambda: [answer(["Paris ", "is the capital ", "of France."], grounded())],
    "error500": lambda: [ApiStatus(500)],
    "forbidden": lambda: [ApiStatus(403, "PERMISSION_DENIED", "Permission denied.")],
    "cut": lambda: [ApiCut(["Paris ", "is "])],
    "stall": lambda: [[Partial("Paris "), Sleep(3600)]],
}


@dataclass
class Upload:
    """A file sent to the scripted Files API: what it was told, and the bytes."""

    mime_type: str
    display_name: str
    data: bytearray = field(default_factory=bytearray)
    done: bool = False
    looked_at: int = 0  # how often its state was asked for


class ScriptedGeminiAPI(ScriptedHTTPServer):
    """Answers `POST /v1beta/models/{model}:streamGenerateContent` with the replies in turn.

    A reply's `Partial` steps become SSE chunks; its `Final` step becomes the last
    chunk, with `finishReason: STOP` and the grounding metadata (Google's API does
    not repeat the text there: ADK aggregates the final response itself).

    It also speaks the Files API's resumable upload as google-genai uses it (`POST
    /upload/v1beta/files` starts one and names its upload URL, chunks follow, the one
    marked `finalize` gets the file back); the uploads are in `uploads`, and
    `upload_status` other than 200 refuses them. An uploaded file goes through
    `file_states` (`GET /v1beta/files/{name}` answers the next one each time).
    """

    def __init__(
        self, replies: Sequence[ApiReply] = (), *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host, port)
        self.replies = list(replies) or SCRIPTS["hello"]()
        self._next = 0
        self.uploads: list[Upload] = []
        self.upload_status = 200
        self.file_states = ["ACTIVE"]

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the generate requests so far."""
        return [r.json() for r in self.requests if "GenerateContent" in r.path]

    async def handle(self, request: Request, writer: Writer) -> None:
        if request.method == "GET" and request.path == "/_requests":
            await writer.send_json(200, self.bodies)
            return
        if request.method == "POST" and request.path.startswith("/upload/"):
            await self._upload(request, writer)
            return
        if request.method == "GET" and request.path.startswith("/v1beta/files/scripted-"):
            upload = self.uploads[int(request.path.rsplit("-", 1)[-1])]
            upload.looked_at += 1
            await writer.send_json(200, self._described(upload))
            return
        if request.method != "POST" or "GenerateContent" not in request.path:
            await writer.send_json(404, {"error": {"code": 404, "status": "NOT_FOUND"}})
            return
        reply = self.replies[self._next % len(self.replies)]
        self._next += 1
        if isinstance(reply, ApiStatus):
            error = {"code": reply.code, "message": reply.message, "status": reply.status}
            await writer.send_json(reply.code, {"error": error})
            return
        await writer.start_chunks()
        sent = _Sent(prompt=_body_words(request.json()))
        if isinstance(reply, ApiCut):
            for part in reply.parts:
                await writer.chunk(sent.sse({"content": _content(part), "index": 0}, part))
            await asyncio.sleep(0.05)  # let the client read what was sent
            writer.cut()
            return
        for step in reply:
            await self._send_step(step, writer, sent)
        await writer.end_chunks()

    async def _upload(self, request: Request, writer: Writer) -> None:
        if self.upload_status != 200:
            error = {"code": self.upload_status, "message": "scripted", "status": "INTERNAL"}
            await writer.send_json(self.upload_status, {"error": error})
            return
        command = request.headers.get("x-goog-upload-command", "")
        if command == "start":
            described = (request.json() or {}).get("file") or {}
            mime_type = request.headers.get("x-goog-upload-header-content-type", "")
            name = described.get("displayName") or described.get("display_name") or ""
            self.uploads.append(Upload(mime_type, name))  # proto JSON: either spelling
            url = f"{self.origin}/upload/session/{len(self.uploads) - 1}"
            await writer.send_json(200, {}, headers={"X-Goog-Upload-URL": url})
            return
        number = int(request.path.rsplit("/", 1)[-1])
        upload = self.uploads[number]
        upload.data += request.body
        if "finalize" not in command:
            await writer.send_json(200, {}, headers={"X-Goog-Upload-Status": "active"})
            return
        upload.done = True
        headers = {"X-Goog-Upload-Status": "final"}
        await writer.send_json(200, {"file": self._described(upload)}, headers=headers)

    def _described(self, upload: Upload) -> dict[str, Any]:
        """The Files API's `File` for an upload, in the state it has reached."""
        number = self.uploads.index(upload)
        return {
            "name": f"files/scripted-{number}",
            "displayName": upload.display_name,
            "mimeType": upload.mime_type,
            "sizeBytes": str(len(upload.data)),
            "uri": f"{self.origin}/v1beta/files/scripted-{number}",
            "state": self.file_states[min(upload.looked_at, len(self.file_states) - 1)],
        }

    async def _send_step(self, step: Step, writer: Writer, sent: _Sent) -> None:
        match step:
            case Partial(text):
                await writer.chunk(sent.sse({"content": _content(text), "index": 0}, text))
            case Final(_text, grounding):
                candidate: dict[str, Any] = {
                    "content": _content(""),
                    "finishReason": "STOP",
                    "index": 0,
                }
                if grounding is not None:
                    candidate["groundingMetadata"] = grounding.model_dump(
                        mode="json", by_alias=True, exclude_none=True
                    )
                await writer.chunk(sent.sse(candidate))
            case Sleep(seconds):
                await asyncio.sleep(seconds)
            case ErrorResponse(code):
                await writer.chunk(sent.sse({"finishReason": code, "index": 0}))
            case Raise():
                writer.cut()


def _content(text: str) -> dict[str, Any]:
    return {"role": "model", "parts": [{"text": text}]}


@dataclass
class _Sent:
    """One streamed reply's usage so far, sent with every chunk as Google's API does
    (words as tokens: the prompt's, and the answer's so far)."""

    prompt: int
    text: str = ""

    def sse(self, candidate: dict[str, Any], text: str = "") -> bytes:
        self.text += text
        usage = usage_of(self.prompt, self.text).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
        payload = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "scripted"}
        return b"data: " + json.dumps(payload).encode() + b"\r\n\r\n"


def _body_words(body: Any) -> int:
    """The words of every text part of a generate request's `contents`."""
    parts = (part for content in body.get("contents", ()) for part in content.get("parts", ()))
    return sum(len(str(part.get("text", "")).split()) for part in parts)


if __name__ == "__main__":
    command_line(ScriptedGeminiAPI, SCRIPTS, "grounded")


def server_error(code: int, status: str, message: str) -> genai_errors.APIError:
    """The error google-genai raises for an HTTP error answer of the Gemini API."""
    body = {"error": {"code": code, "status": status, "message": message}}
    kind = genai_errors.ServerError if code >= 500 else genai_errors.ClientError
    return kind(code, body)
