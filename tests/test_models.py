"""Several models at once (#10): what is offered (`HXCHAT_MODELS`, `openai:*` read from
the endpoint's `/v1/models`), the model a message names or the conversation goes on
with, what each model was sent, and what each answer records; through the real app
against the scripted OpenAI-compatible server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from hxchat.app import create_app
from hxchat.config import Settings, load_settings
from hxchat.errors import ConfigError
from hxchat.providers.catalogue import Catalogue
from tests import html_tree
from tests.helpers import ScriptedModel, client_for, events, eventually, new_conversation
from tests.scripted_openai import Respond, ScriptedOpenAI, Text


def _named(body: dict[str, Any]) -> Text:
    """An answer that says which model it was asked as."""
    return Text([f"I am {body['model']}."])


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedOpenAI]:
    with ScriptedOpenAI([Respond(_named)]) as s:
        s.models = ["gpt-b", "gpt-a"]
        monkeypatch.setenv("OPENAI_BASE_URL", s.base_url)
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        yield s


@pytest.fixture
async def several(
    make_settings: Callable[..., Settings], server: ScriptedOpenAI
) -> AsyncIterator[FastAPI]:
    """echo (the default) and every model the scripted endpoint lists."""
    app = create_app(make_settings(models="openai:*", search="none"))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(several: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(several) as c:
        yield c


async def say(
    client: httpx.AsyncClient, cid: str, content: str, model: str | None = None
) -> dict[str, Any]:
    """Send a message (naming `model`, when given) and wait for its answer."""
    body: dict[str, Any] = {"content": content}
    if model is not None:
        body["model"] = model
    response = await client.post(f"/api/conversations/{cid}/messages", json=body)
    assert response.status_code == 202, response.text
    _, evs = await events(client, response.json()["events_url"])
    assert evs[-1].event == "done", evs
    conversation: dict[str, Any] = (await client.get(f"/api/conversations/{cid}")).json()
    return conversation


def answers(server: ScriptedOpenAI) -> list[dict[str, Any]]:
    """The requests for answers (streamed); a first answer's title request is not."""
    return [body for body in server.bodies if body.get("stream")]


# -- what is offered ------------------------------------------------------------------


async def test_one_model_is_offered_by_default(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    async with app.router.lifespan_context(app), client_for(app) as c:
        response = await c.get("/api/models")
        assert response.status_code == 200
        assert response.json() == [
            {"id": "echo", "label": "echo", "default": True, "vision": False}
        ]
        page = html_tree.parse((await c.get("/")).text)
        assert page.find_all("select") == []  # no choice to make: the page is as before


async def test_the_endpoints_models_are_offered_beside_the_default(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/models")
    assert response.json() == [
        {"id": "echo", "label": "echo", "default": True, "vision": False},
        {"id": "openai:gpt-a", "label": "gpt-a (openai)", "default": False, "vision": False},
        {"id": "openai:gpt-b", "label": "gpt-b (openai)", "default": False, "vision": False},
    ]


async def test_vision_comes_from_the_setting_and_gemini_always_has_it(
    make_settings: Callable[..., Settings], server: ScriptedOpenAI
) -> None:
    settings = make_settings(models="openai:*", vision_models="openai:gpt-a*", search="none")
    catalogue = Catalogue(settings)
    await catalogue.open()
    try:
        assert {m.id: m.vision for m in catalogue.models} == {
            "echo": False,
            "openai:gpt-a": True,
            "openai:gpt-b": False,
        }
    finally:
        await catalogue.close()
    assert Catalogue(make_settings(model="gemini:gemini-2.5-flash")).models[0].vision


# -- the model of a message, and of a conversation -------------------------------------


async def test_each_answer_records_its_model_and_the_conversation_remembers_it(
    client: httpx.AsyncClient, server: ScriptedOpenAI
) -> None:
    cid = await new_conversation(client)
    assert (await client.get(f"/api/conversations/{cid}")).json()["model"] == "echo"
    conversation = await say(client, cid, "first", "openai:gpt-b")
    assert conversation["model"] == "openai:gpt-b"
    assert conversation["messages"][-1]["content"] == "I am gpt-b."
    assert conversation["messages"][-1]["model"] == "openai:gpt-b"
    assert conversation["messages"][0]["model"] is None  # a user's message has none

    conversation = await say(client, cid, "second")  # no model named: the conversation's
    assert conversation["messages"][-1]["content"] == "I am gpt-b."
    conversation = await say(client, cid, "third", "echo")
    assert conversation["model"] == "echo"
    assert [m["model"] for m in conversation["messages"] if m["role"] == "assistant"] == [
        "openai:gpt-b",
        "openai:gpt-b",
        "echo",
    ]
    # What each model was sent: the right model name, and only for the OpenAI ones.
    assert [body["model"] for body in answers(server)] == ["gpt-b", "gpt-b"]
    # A new conversation starts with the default.
    other = await new_conversation(client)
    assert (await say(client, other, "hello"))["messages"][-1]["model"] == "echo"


async def test_edit_and_regenerate_may_name_another_model(
    client: httpx.AsyncClient, server: ScriptedOpenAI
) -> None:
    cid = await new_conversation(client)
    conversation = await say(client, cid, "question", "openai:gpt-a")
    question, answer = conversation["messages"]
    response = await client.post(
        f"/api/messages/{answer['id']}/regenerate", json={"model": "openai:gpt-b"}
    )
    assert response.status_code == 202, response.text
    await events(client, response.json()["events_url"])
    shown = (await client.get(f"/api/conversations/{cid}")).json()
    assert shown["messages"][-1]["content"] == "I am gpt-b."
    assert shown["model"] == "openai:gpt-b"

    response = await client.post(
        f"/api/messages/{question['id']}/edit", json={"content": "again", "model": "echo"}
    )
    assert response.status_code == 202, response.text
    await events(client, response.json()["events_url"])
    shown = (await client.get(f"/api/conversations/{cid}")).json()
    assert [m["content"] for m in shown["messages"]] == ["again", "again"]
    assert shown["messages"][-1]["model"] == "echo"
    # Without a model, a regeneration goes on with the conversation's (now echo).
    response = await client.post(f"/api/messages/{answer['id']}/regenerate")
    assert response.status_code == 202
    await events(client, response.json()["events_url"])
    shown = (await client.get(f"/api/conversations/{cid}")).json()
    assert shown["messages"][-1]["model"] == "echo"
    assert [body["model"] for body in answers(server)] == ["gpt-a", "gpt-b"]


@pytest.mark.parametrize("model", ["nope", "openai:gpt-c", "<img src=x onerror=alert(1)>"])
async def test_a_model_not_offered_is_422_and_nothing_is_stored(
    client: httpx.AsyncClient, model: str
) -> None:
    cid = await new_conversation(client)
    response = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "hi", "model": model}
    )
    assert response.status_code == 422
    assert response.json() == {"detail": f"Unknown model: {model}."}
    assert (await client.get(f"/api/conversations/{cid}")).json()["messages"] == []
    # The page's form says the same, escaped.
    page = await client.post(
        "/send",
        data={"content": "hi", "conversation_id": cid, "model": model},
        headers={"HX-Request": "true"},
    )
    assert page.status_code == 422
    assert "<img" not in page.text
    assert "Unknown model:" in page.text


async def test_a_model_id_with_markup_is_escaped_everywhere(
    make_settings: Callable[..., Settings], server: ScriptedOpenAI
) -> None:
    hostile = 'openai:"><img src=x onerror=alert(1)>'
    app = create_app(make_settings(models=hostile, search="none"))
    async with app.router.lifespan_context(app), client_for(app) as c:
        assert [m["id"] for m in (await c.get("/api/models")).json()] == ["echo", hostile]
        cid = await new_conversation(c)
        conversation = await say(c, cid, "hi", hostile)
        assert conversation["messages"][-1]["model"] == hostile
        text = (await c.get(f"/c/{cid}")).text
        assert "<img" not in text
        page = html_tree.parse(text)
        article = page.find("article", data_role="assistant")
        assert article.attrs["data-model"] == hostile
        assert page.find("option", selected=None).attrs["value"] == hostile
        assert '"><img src=x onerror=alert(1)> (openai)' in article.find("footer").text


# -- the page ---------------------------------------------------------------------------


async def test_the_composer_offers_the_models_and_shows_the_conversations(
    client: httpx.AsyncClient,
) -> None:
    page = html_tree.parse((await client.get("/")).text)
    select = page.find("form", id="composer").find("select", name="model")
    assert page.find("label", for_=select.attrs["id"]).text.strip() == "Model"
    options = select.find_all("option")
    assert [o.attrs["value"] for o in options] == ["echo", "openai:gpt-a", "openai:gpt-b"]
    assert [o.attrs["value"] for o in options if "selected" in o.attrs] == ["echo"]

    # Without JavaScript: the form posts, and the conversation's page shows its model.
    response = await client.post("/send", data={"content": "hi", "model": "openai:gpt-a"})
    assert response.status_code == 303
    location = response.headers["location"]
    cid = location.rsplit("/", 1)[-1]
    await answered(client, cid)
    page = html_tree.parse((await client.get(location)).text)
    assert page.find("option", selected=None).attrs["value"] == "openai:gpt-a"
    article = page.find("article", data_role="assistant")
    assert article.attrs["data-model"] == "openai:gpt-a"
    assert "gpt-a (openai)" in article.find("footer").text


async def test_regenerate_offers_the_models_and_asks_the_one_chosen(
    client: httpx.AsyncClient, server: ScriptedOpenAI
) -> None:
    """Each finished answer's Regenerate form has a select of the models (its own model
    shown first), a plain field of that form: without JavaScript it posts, and the new
    version is written by the model chosen; a model not offered is 422."""
    cid = await new_conversation(client)
    conversation = await say(client, cid, "who are you?", "openai:gpt-a")
    answer = conversation["messages"][-1]
    page = html_tree.parse((await client.get(f"/c/{cid}")).text)
    article = page.find("article", id=f"msg-{answer['id']}")
    (form,) = [
        f for f in article.find_all("form") if str(f.attrs["action"]).endswith("/regenerate")
    ]
    assert form.find("button", class_="regenerate").text.strip() == "Regenerate"
    select = form.find("select", name="model")
    assert page.find("label", for_=select.attrs["id"]).text.strip() == "Regenerate with"
    options = [o.attrs["value"] for o in select.find_all("option")]
    assert options == ["openai:gpt-a", "echo", "openai:gpt-b"]  # its own model first
    assert not [o for o in select.find_all("option") if "selected" in o.attrs]

    action = str(form.attrs["action"])
    refused = await client.post(action, data={"model": "openai:nope"})
    assert refused.status_code == 422
    response = await client.post(action, data={"model": "openai:gpt-b"})
    assert response.status_code == 303 and response.headers["location"] == f"/c/{cid}"
    await answered(client, cid)
    messages = (await client.get(f"/api/conversations/{cid}")).json()["messages"]
    assert messages[-1]["model"] == "openai:gpt-b"
    assert messages[-1]["content"] == "I am gpt-b."
    assert messages[-1]["versions"] == [answer["id"], messages[-1]["id"]]
    assert server.bodies[-1]["model"] == "gpt-b"


async def answered(client: httpx.AsyncClient, cid: str) -> None:
    """Wait until the conversation's last answer has ended."""

    async def ended() -> None:
        messages = (await client.get(f"/api/conversations/{cid}")).json()["messages"]
        assert messages[-1]["status"] == "complete", messages

    await eventually(ended)


# -- clients: built once, closed with the app; a failing model as before --------------


async def test_each_model_is_built_once_and_closed_with_the_app(
    make_settings: Callable[..., Settings],
) -> None:
    default, second = ScriptedModel(["one"]), ScriptedModel(["two"], fail_after=0)
    app = create_app(make_settings(), default, models={"openai:second": second})
    async with app.router.lifespan_context(app), client_for(app) as c:
        catalogue: Catalogue = app.state.models
        assert catalogue.model("openai:second") is second
        cid = await new_conversation(c)
        conversation = await say(c, cid, "a")
        assert conversation["messages"][-1]["content"] == "one"
        response = await c.post(
            f"/api/conversations/{cid}/messages", json={"content": "b", "model": "openai:second"}
        )
        _, evs = await events(c, response.json()["events_url"])
        assert evs[-1].event == "error"  # a model that fails: a readable error, as before
        shown = (await c.get(f"/api/conversations/{cid}")).json()
        assert shown["messages"][-1]["status"] == "error"
        assert shown["messages"][-1]["model"] == "openai:second"
        assert len(default.seen) == 1 and len(second.seen) == 1
    assert default.closed and second.closed


# -- reading the endpoint's list ---------------------------------------------------------


async def test_an_endpoint_that_does_not_answer_is_left_out_and_comes_back(
    make_settings: Callable[..., Settings],
    server: ScriptedOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    catalogue = Catalogue(make_settings(models="openai:*,openai:fixed", search="none"))
    server.models_status = 503
    with caplog.at_level(logging.WARNING, logger="hxchat.providers.catalogue"):
        await catalogue.open()  # not a failed start
        await catalogue.refresh()  # still down: no second warning
    try:
        assert [m.id for m in catalogue.models] == ["echo", "openai:fixed"]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "openai:*" in warnings[0].getMessage()
        server.models_status = 200
        await catalogue.refresh()  # what the app does every 10 minutes
        assert [m.id for m in catalogue.models] == [
            "echo",
            "openai:fixed",
            "openai:gpt-a",  # sorted
            "openai:gpt-b",
        ]
        server.stop()  # an endpoint that is gone altogether
        await catalogue.refresh()
        assert [m.id for m in catalogue.models] == ["echo", "openai:fixed"]
    finally:
        await catalogue.close()


async def test_an_app_starts_with_its_endpoint_down(
    make_settings: Callable[..., Settings], server: ScriptedOpenAI
) -> None:
    server.models_status = 500
    app = create_app(make_settings(models="openai:*", search="none"))
    async with app.router.lifespan_context(app), client_for(app) as c:
        assert [m["id"] for m in (await c.get("/api/models")).json()] == ["echo"]
        server.models_status = 200
        await app.state.models.refresh()
        assert len((await c.get("/api/models")).json()) == 3


# -- settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"models": "gpt-4o"}, "HXCHAT_MODELS"),
        ({"models": "echo,openai:"}, "HXCHAT_MODELS"),
        ({"models": "gemini:*"}, "HXCHAT_MODELS"),
        ({"model": "openai:*"}, "HXCHAT_MODEL"),
        ({"vision_models": "gpt-4o*"}, "HXCHAT_VISION_MODELS"),
    ],
)
def test_a_bad_models_setting_names_its_variable(overrides: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None, **overrides)
    assert caught.value.variable == variable


def test_the_default_comes_first_and_is_always_offered() -> None:
    settings = load_settings(
        _env_file=None, model="ollama:llama3", models=" openai:*, ollama:llama3 ,echo"
    )
    assert settings.model_specs == ("ollama:llama3", "openai:*", "echo")
