"""Import refusals (#12): every hostile file (cut off, 50 MB, 100,000 levels deep, ids
twice, another format, a broken tree, over the counts) is a readable 413 or 422, on
SQLite and PostgreSQL, and leaves nothing imported."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from hxchat.library import imported
from tests.chatgpt_export import ChatGptConversation
from tests.import_samples import chatgpt_export, hxchat_document, import_json, refused


async def test_a_truncated_file_is_refused_as_cut_off(api: httpx.AsyncClient) -> None:
    documents, _ = chatgpt_export()
    whole = json.dumps(documents).encode()
    for cut in (len(whole) // 2, len(whole) - 1):
        response = await api.post("/api/import", content=whole[:cut])
        assert "cut off" in await refused(api, response, 422)


async def test_a_50_mb_file_is_refused_before_it_is_read_whole(api: httpx.AsyncClient) -> None:
    chunk = b" " * (1024 * 1024)
    sent = 0

    async def fifty_megabytes() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        nonlocal sent
        yield b"["
        for _ in range(50):
            sent += len(chunk)
            yield chunk
        yield b"]"

    response = await api.post("/api/import", content=fifty_megabytes())
    detail = await refused(api, response, 413)
    assert detail == "The file is too large to import: the limit is 32 MB."
    assert sent < 40 * 1024 * 1024  # the server stopped reading after the limit

    with_length = await api.post(
        "/api/import", files={"file": ("big.json", b"[" + chunk * 50 + b"]", "application/json")}
    )
    assert "too large" in await refused(api, with_length, 413)


async def test_100000_nested_levels_are_refused_readably(api: httpx.AsyncClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    detail = await refused(api, await api.post("/api/import", content=deep), 422)
    assert "64 levels" in detail
    objects = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert "64 levels" in await refused(api, await api.post("/api/import", content=objects), 422)


async def test_an_open_string_before_many_escaped_quotes_is_refused_at_once(
    api: httpx.AsyncClient,
) -> None:
    """A quote left open before a million escaped quotes: the depth check once tried
    every escaped quote again to the end of the file (hours for a few megabytes)."""
    body = b'[{"mapping": {"a": "' + b'\\"' * 1_000_000
    assert "cut off" in await refused(api, await api.post("/api/import", content=body), 422)


async def test_duplicated_ids_are_refused(api: httpx.AsyncClient) -> None:
    documents, _ = chatgpt_export()
    text = json.dumps(documents)
    node = next(iter(documents[1]["mapping"]))  # a node id, named twice in its mapping
    twice = text.replace(f'"{node}": {{', f'"{node}": {{"id": "{node}"}}, "{node}": {{', 1)
    detail = await refused(api, await api.post("/api/import", content=twice.encode()), 422)
    assert node[:20] in detail and "twice" in detail

    same_message = hxchat_document(
        [
            {"id": 1, "parent_id": None, "role": "user", "content": "a"},
            {"id": 1, "parent_id": None, "role": "user", "content": "b"},
        ]
    )
    detail = await refused(api, await import_json(api, same_message), 422)
    assert detail == "Conversation 1: the message id 1 appears twice."

    copied = ChatGptConversation("Copied node")
    first = copied.say(copied.root, "user", "Once")
    second = copied.say(first, "assistant", "Twice")
    copied.mapping[second]["message"]["id"] = first  # two nodes, one message id
    detail = await refused(api, await import_json(api, [copied.as_json(second)]), 422)
    assert detail == f"Conversation 1: the message id {first} appears twice."
    copied.mapping[second]["message"]["id"] = second
    copied.mapping[copied.root]["children"].append(first)  # one child under its parent twice
    detail = await refused(api, await import_json(api, [copied.as_json(second)]), 422)
    assert detail == f"Conversation 1: node {first} is listed as a child twice."

    same_conversation = [*documents, documents[0]]  # the first one again, at the end
    detail = await refused(api, await import_json(api, same_conversation), 422)
    assert "Conversation 4 has the id" in detail


async def test_a_foreign_format_is_refused(api: httpx.AsyncClient) -> None:
    for body in (
        b'{"messages": [{"role": "user", "content": "hi"}]}',
        b"[1, 2, 3]",
        b"title,content\nhello,world\n",
        b"",
        "\u00e9t\u00e9".encode("latin-1"),
    ):
        await refused(api, await api.post("/api/import", content=body), 422)
    detail = await refused(api, await api.post("/api/import", content=b'{"a": 1}'), 422)
    assert "neither an hxchat export nor ChatGPT's conversations.json" in detail


async def test_one_broken_conversation_refuses_the_whole_file(api: httpx.AsyncClient) -> None:
    documents, _ = chatgpt_export()
    broken = ChatGptConversation("Broken")
    orphan = broken.say(broken.root, "user", "Who is my parent?")
    broken.mapping[orphan]["parent"] = "a-node-that-is-not-there"
    detail = await refused(api, await import_json(api, [*documents, broken.as_json(orphan)]), 422)
    assert "Conversation 4" in detail and "not there" in detail

    circle = hxchat_document(
        [
            {"id": 1, "parent_id": 2, "role": "user", "content": "a"},
            {"id": 2, "parent_id": 1, "role": "assistant", "content": "b"},
        ]
    )
    assert "circle" in await refused(api, await import_json(api, circle), 422)


async def test_the_counts_are_limited(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imported, "MAX_CONVERSATIONS", 1)
    documents, _ = chatgpt_export()
    detail = await refused(api, await import_json(api, documents), 422)
    assert detail == "The file holds 2 conversations; at most 1 can be imported at once."
    monkeypatch.setattr(imported, "MAX_MESSAGES_PER_CONVERSATION", 5)
    detail = await refused(api, await import_json(api, documents[:1]), 422)
    assert "at most 5" in detail


async def test_a_form_without_a_file_is_refused(api: httpx.AsyncClient) -> None:
    form_without_a_file = {"note": (None, b"only a text field")}
    response = await api.post("/api/import", files=form_without_a_file)
    assert "Choose a file" in await refused(api, response, 422)


ANSWER_OF = {"id": 2, "parent_id": 1, "role": "assistant", "content": "b"}


@pytest.mark.parametrize(
    ("conversation", "answer", "expected"),
    [
        ({"pinned": "yes"}, {}, "Conversation 2: 'pinned' must be true or false."),
        ({"pinned": 1}, {}, "Conversation 2: 'pinned' must be true or false."),
        ({"instructions": ["Be brief."]}, {}, "Conversation 2: 'instructions' must be text."),
        (
            {"instructions": "x" * 4_001},
            {},
            "Conversation 2: its instructions have 4,001 characters; the limit is 4,000.",
        ),
        (
            {"title_source": "robot"},
            {},
            "Conversation 2: 'title_source' must be message, model or user.",
        ),
        (
            {},
            {"usage": 12},
            "Conversation 2: message 2: 'usage' must be an object of input_tokens "
            "and output_tokens.",
        ),
        (
            {},
            {"usage": {"input_tokens": -1, "output_tokens": 3}},
            "Conversation 2: message 2: 'input_tokens' must be a whole number "
            "from 0 to 2,147,483,647.",
        ),
        (
            {},
            {"usage": {"input_tokens": 3, "output_tokens": 2**31}},
            "Conversation 2: message 2: 'output_tokens' must be a whole number "
            "from 0 to 2,147,483,647.",
        ),
        (
            {},
            {"usage": {"input_tokens": True, "output_tokens": "many"}},
            "Conversation 2: message 2: 'input_tokens' must be a whole number "
            "from 0 to 2,147,483,647.",
        ),
        (
            {},
            {"timing": {"first_text_ms": 10}},
            "Conversation 2: message 2: 'timing' has no total_ms.",
        ),
        (
            {},
            {"timing": {"first_text_ms": 1.5, "total_ms": 20}},
            "Conversation 2: message 2: 'first_text_ms' must be a whole number "
            "from 0 to 2,147,483,647.",
        ),
        (
            {},
            {"timing": "4.2 s"},
            "Conversation 2: message 2: 'timing' must be an object of first_text_ms and total_ms.",
        ),
    ],
)
async def test_a_setting_or_a_cost_the_api_would_refuse_refuses_the_whole_file(
    api: httpx.AsyncClient,
    conversation: dict[str, object],
    answer: dict[str, object],
    expected: str,
) -> None:
    """Checked as PATCH checks them (a value of the wrong type, instructions over the
    limit, a count that does not fit the column), never stored as something else; the
    good conversation before it is not imported either."""
    good = hxchat_document([{"id": 1, "parent_id": None, "role": "user", "content": "a"}])
    bad = hxchat_document(
        [{"id": 1, "parent_id": None, "role": "user", "content": "a"}, ANSWER_OF | answer],
        **conversation,
    )
    document = {**good, "conversations": [*good["conversations"], *bad["conversations"]]}
    document["conversations"][1]["id"] = "c2"
    assert await refused(api, await import_json(api, document), 422) == expected
