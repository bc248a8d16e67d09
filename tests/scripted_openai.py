"""A scripted OpenAI Chat Completions server on loopback, for tests and demos.

The real `openai` SDK talks to it over HTTP, so tests cover the wire protocol, the
SDK's errors and our timeouts. Each `POST /v1/chat/completions` gets the next reply
of a script (streamed text or `tool_calls`, an HTTP error, a cut, a stall); every
request is recorded (`server.requests`, `server.bodies`, `GET /_requests`), and
`received_parts` reads a recorded message the way the model does (text, images). A request
with `stream_options: {"include_usage": true}` gets a last chunk with its usage, words
as tokens; with `refuse_stream_options` set (`--refuse-stream-options`), the server
answers such a request 400, as servers that do not know the option do.

    with ScriptedOpenAI([Text(["Hel", "lo"]), Status(500)]) as server:  # in a thread
        ...  # OPENAI_BASE_URL=server.base_url

    python tests/scripted_openai.py --port 0 --script search  # "listening on <base_url>"

`ScriptedHTTPServer`, the tiny HTTP/1.1 server underneath (one request per
connection), also serves `scripted_searxng.py` and `scripted_gemini.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol, Self
from urllib.parse import parse_qsl, urlsplit

# -- the HTTP server -----------------------------------------------------------------


@dataclass
class Request:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


class Writer:
    """What a reply may do with the connection: a plain answer, chunks, or a hard cut."""

    def __init__(self, stream: asyncio.StreamWriter) -> None:
        self._stream = stream

    async def send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._head(status, content_type, {"Content-Length": str(len(body)), **(headers or {})})
        self._stream.write(body)
        await self._stream.drain()

    async def send_json(
        self, status: int, value: Any, headers: Mapping[str, str] | None = None
    ) -> None:
        await self.send(status, json.dumps(value).encode(), headers=headers)

    async def start_chunks(self, status: int = 200, kind: str = "text/event-stream") -> None:
        self._head(status, kind, {"Transfer-Encoding": "chunked"})
        await self._stream.drain()

    async def chunk(self, data: bytes) -> None:
        self._stream.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self._stream.drain()

    async def end_chunks(self) -> None:
        self._stream.write(b"0\r\n\r\n")
        await self._stream.drain()

    def cut(self) -> None:
        """Drop the connection at once, mid-message (a TCP reset)."""
        self._stream.transport.abort()

    def _head(self, status: int, content_type: str, extra: Mapping[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
        lines += [f"Content-Type: {content_type}", "Connection: close", "Cache-Control: no-cache"]
        lines += [f"{name}: {value}" for name, value in extra.items()]
        self._stream.write(("\r\n".join(lines) + "\r\n\r\n").encode())


class ScriptedHTTPServer:
    """A loopback HTTP server whose `handle` a subclass scripts; records every request."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[Request] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:  # what a client is configured with
        return self.origin

    async def handle(self, request: Request, writer: Writer) -> None:
        raise NotImplementedError

    # -- running: in this loop (`serve`) or in a thread of its own (`start`/`stop`) --

    async def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve until `stop()` is called (or the task is cancelled)."""
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = server.sockets[0].getsockname()[1]
        if on_ready:
            on_ready()
        try:
            async with server:
                await self._stopping.wait()
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def start(self) -> Self:
        """Serve in a daemon thread; returns once the port is bound."""

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(self.serve(self._ready.set))
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the scripted server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already ended
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _connection(self, reader: asyncio.StreamReader, stream: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await _read_request(reader)
            self.requests.append(request)
            await self.handle(request, Writer(stream))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            # The client went away (as some tests make it), or the server is stopping:
            # ending normally also spares asyncio's stream callback a noisy report.
            pass
        finally:
            self._tasks.discard(task)
            stream.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await stream.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> Request:
    head = await reader.readuntil(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    pairs = (line.partition(":") for line in header_lines if ":" in line)
    headers = {name.strip().lower(): value.strip() for name, _, value in pairs}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    parts = urlsplit(target)
    return Request(method, parts.path, dict(parse_qsl(parts.query)), headers, body)


# -- Chat Completions replies --------------------------------------------------------


class Reply(Protocol):
    async def send(self, request: Request, writer: Writer) -> None: ...


def _chunk(delta: Mapping[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": dict(delta), "finish_reason": finish}
    payload = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0}
    payload |= {"model": "scripted", "choices": [choice]}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def _stream_text(writer: Writer, parts: Sequence[str], delay: float) -> None:
    await writer.chunk(_chunk({"role": "assistant", "content": ""}))
    for part in parts:
        if delay:
            await asyncio.sleep(delay)
        await writer.chunk(_chunk({"content": part}))


def _words(text: str | None) -> int:
    return len((text or "").split())


def _usage_chunk(request: Request, answered: int) -> bytes:
    """The usage chunk OpenAI sends last when the request asked for it (no choices):
    the words of the messages sent, and the words answered; else nothing."""
    body = request.json()
    if not (body.get("stream_options") or {}).get("include_usage"):
        return b""
    sent = body.get("messages", ())
    prompt = sum(_words(m.get("content")) for m in sent if isinstance(m.get("content"), str))
    usage = {"prompt_tokens": prompt, "completion_tokens": answered}
    usage["total_tokens"] = prompt + answered
    payload = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0}
    payload |= {"model": "scripted", "choices": [], "usage": usage}
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def _finish_text(
    writer: Writer, parts: Sequence[str], error: str | None = None, usage: bytes = b""
) -> None:
    for part in parts:
        await writer.chunk(_chunk({"content": part}))
    if error is None:
        await writer.chunk(_chunk({}, "stop") + usage + b"data: [DONE]\n\n")
    else:
        await writer.chunk(b"data: " + json.dumps({"error": {"message": error}}).encode() + b"\n\n")
    await writer.end_chunks()


@dataclass
class Text:
    """Streamed text deltas, `finish_reason: stop`, then `[DONE]`; or, with `error`,
    an error event in the stream instead of the finish (as some servers send)."""

    parts: Sequence[str]
    delay: float = 0.0
    error: str | None = None

    async def send(self, request: Request, writer: Writer) -> None:
        await writer.start_chunks()
        await _stream_text(writer, self.parts, self.delay)
        usage = _usage_chunk(request, _words("".join(self.parts)))
        await _finish_text(writer, (), self.error, usage)


@dataclass
class Completion:
    """A whole chat completion as one JSON answer (a request without `stream`), after
    `delay` seconds: what a title request gets."""

    text: str
    delay: float = 0.0

    async def send(self, request: Request, writer: Writer) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        message = {"role": "assistant", "content": self.text}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        payload = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0}
        await writer.send_json(200, payload | {"model": "scripted", "choices": [choice]})


@dataclass
class ToolCalls:
    """Streamed `tool_calls`: each call's arguments split over `pieces` chunks."""

    calls: Sequence[tuple[str, str]]  # (function name, raw JSON arguments)
    pieces: int = 3
    with_ids: bool = True

    async def send(self, request: Request, writer: Writer) -> None:
        await writer.start_chunks()
        await writer.chunk(_chunk({"role": "assistant", "content": None}))
        for index, (name, arguments) in enumerate(self.calls):
            head: dict[str, Any] = {"index": index, "type": "function"}
            if self.with_ids:
                head["id"] = f"call_{index}"
            head["function"] = {"name": name, "arguments": ""}
            await writer.chunk(_chunk({"tool_calls": [head]}))
            size = max(1, -(-len(arguments) // self.pieces))
            for start in range(0, len(arguments), size):
                piece = {"index": index, "function": {"arguments": arguments[start : start + size]}}
                await writer.chunk(_chunk({"tool_calls": [piece]}))
        await writer.chunk(_chunk({}, "tool_calls"))
        await writer.chunk(_usage_chunk(request, len(self.calls)) + b"data: [DONE]\n\n")
        await writer.end_chunks()


@dataclass
class Status:
    """An HTTP error with OpenAI's error body."""

    code: int
    message: str = "scripted failure"

    async def send(self, request: Request, writer: Writer) -> None:
        error = {"message": self.message, "type": "scripted_error", "code": str(self.code)}
        await writer.send_json(self.code, {"error": error})


@dataclass
class Cut:
    """A few text deltas, then the connection drops without finishing the response."""

    parts: Sequence[str] = ("Partial ", "answer ")

    async def send(self, request: Request, writer: Writer) -> None:
        await writer.start_chunks()
        await _stream_text(writer, self.parts, 0.0)
        await asyncio.sleep(0.05)  # let the client read what was sent
        writer.cut()


@dataclass
class Stall:
    """Silence for `seconds`, then the rest. With `parts=None` not even the headers
    come first (a server that hangs); otherwise the headers and these deltas do."""

    seconds: float
    parts: Sequence[str] | None = None
    rest: Sequence[str] = ("late",)

    async def send(self, request: Request, writer: Writer) -> None:
        if self.parts is not None:
            await writer.start_chunks()
            await _stream_text(writer, self.parts, 0.0)
        await asyncio.sleep(self.seconds)
        if self.parts is None:
            await writer.start_chunks()
            await _stream_text(writer, (), 0.0)
        answered = _words("".join([*(self.parts or ()), *self.rest]))
        await _finish_text(writer, self.rest, usage=_usage_chunk(request, answered))


@dataclass
class Respond:
    """A reply chosen from the request body (the JSON of the chat completion request)."""

    choose: Callable[[dict[str, Any]], Reply]

    async def send(self, request: Request, writer: Writer) -> None:
        await self.choose(request.json()).send(request, writer)


# -- what the model received ---------------------------------------------------------


def received_parts(message: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """A recorded message's content as the model reads it: `("text", str)` for text
    (a plain string content is one text part) and `("image", media_type, bytes)` for
    an `image_url` data URL, decoded."""
    content = message.get("content")
    if isinstance(content, str):
        return [("text", content)]
    parts: list[tuple[Any, ...]] = []
    for part in content or ():
        if part["type"] == "text":
            parts.append(("text", part["text"]))
        elif part["type"] == "image_url":
            head, _, data = part["image_url"]["url"].partition(",")
            media_type = head.removeprefix("data:").removesuffix(";base64")
            parts.append(("image", media_type, base64.b64decode(data, validate=True)))
        else:
            parts.append((part["type"], part))
    return parts


# -- replies that read the conversation (for end-to-end tests and demos) -----------


def _echo(body: dict[str, Any]) -> Reply:
    """The newest message's text back, word by word (with content parts: their text)."""
    parts = received_parts(body["messages"][-1])
    words = "".join(part[1] for part in parts if part[0] == "text").split(" ")
    return Text([word + " " for word in words[:-1]] + words[-1:], delay=0.02)


def _search_then_answer(body: dict[str, Any]) -> Reply:
    """Search for the user's words; once the tool has answered, cite result [1]."""
    last = body["messages"][-1]
    if last.get("role") == "tool":
        return Text(["According to ", "the search ", "[1], ", "here is the answer."], delay=0.02)
    query = str(last.get("content") or "")
    return ToolCalls([("web_search", json.dumps({"query": query}))])


SCRIPTS: dict[str, Callable[[], list[Reply]]] = {
    "hello": lambda: [Text(["Hello", ", ", "world", "!"], delay=0.02)],
    "echo": lambda: [Respond(_echo)],
    "search": lambda: [Respond(_search_then_answer)],
    "error500": lambda: [Status(500, "the scripted server failed")],
    "unauthorized": lambda: [Status(401, "Incorrect API key provided: sk-scr***ted")],
    "cut": lambda: [Cut()],
    "stall": lambda: [Stall(3600, ["Thinking "])],
    "fail-then-hello": lambda: [Status(500), Text(["Hello", " again"])],
}


class ScriptedOpenAI(ScriptedHTTPServer):
    """Answers `POST …/chat/completions` with the script's replies, in turn (and, with
    `cycle`, the default, over again: a server process serves any number of requests);
    `GET …/models` lists `models` (or answers `models_status` when it is not 200). With
    `refuse_stream_options`, a request that has `stream_options` is answered 400 (and
    takes no reply of the script)."""

    def __init__(
        self,
        script: Sequence[Reply],
        *,
        cycle: bool = True,
        refuse_stream_options: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self.script = list(script)
        self.cycle = cycle
        self.refuse_stream_options = refuse_stream_options
        self._next = 0
        self.models: list[str] = ["scripted"]
        self.models_status = 200

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the chat completion requests so far."""
        return [r.json() for r in self.requests if r.path.endswith("/chat/completions")]

    async def handle(self, request: Request, writer: Writer) -> None:
        if request.method == "GET" and request.path == "/_requests":
            await writer.send_json(200, self.bodies)
        elif request.method == "POST" and request.path.endswith("/chat/completions"):
            if self.refuse_stream_options and "stream_options" in request.json():
                refusal = "Unrecognized request argument supplied: stream_options"
                await Status(400, refusal).send(request, writer)
                return
            await self._take().send(request, writer)
        elif request.method == "GET" and request.path.endswith("/models"):
            if self.models_status != 200:
                await Status(self.models_status, "models are not listed now").send(request, writer)
                return
            listed = [{"id": m, "object": "model", "owned_by": "scripted"} for m in self.models]
            await writer.send_json(200, {"object": "list", "data": listed})
        else:
            await writer.send_json(404, {"error": {"message": "no such path"}})

    def _take(self) -> Reply:
        if not self.script or (self._next >= len(self.script) and not self.cycle):
            return Status(500, "the script has run out")
        reply = self.script[self._next % len(self.script)]
        self._next += 1
        return reply


def command_line(
    server_class: Callable[..., ScriptedHTTPServer],
    scripts: Mapping[str, Callable[[], list[Any]]],
    default: str,
) -> None:
    """`--host`, `--port` (0: any free one) and `--script NAME`; serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", default=default, choices=sorted(scripts))
    if server_class is ScriptedOpenAI:
        parser.add_argument("--refuse-stream-options", action="store_true")
    args = parser.parse_args()
    options = {"refuse_stream_options": True} if vars(args).get("refuse_stream_options") else {}
    server = server_class(scripts[args.script](), host=args.host, port=args.port, **options)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(lambda: print(f"listening on {server.base_url}", flush=True)))


if __name__ == "__main__":
    command_line(ScriptedOpenAI, SCRIPTS, "hello")
