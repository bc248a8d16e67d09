"""`hxchat users …` and `hxchat tokens add`: one readable line, exit 0 or 1, never a
traceback; and what `hxchat serve` refuses or warns about for the sign-in modes."""

from __future__ import annotations

import io
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from hxchat import cli
from hxchat.config import Settings, load_settings
from tests.helpers import (
    PASSWORD,
    add_user,
    client_for,
    eventually,
    new_conversation,
    running_app,
    sign_in,
)
from tests.servers import run_hxchat, serving

pytestmark = pytest.mark.usefixtures("cheap_hashing")


def hxchat(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *args: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    return status, out.strip(), err.strip()


def test_the_users_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:

    def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        return hxchat(capsys, monkeypatch, *args, stdin=stdin)

    assert run("users", "list")[1].startswith("hxchat: there are no users yet")
    added = run(
        "users",
        "add",
        "alice",
        "--admin",
        "--email",
        "a@example.org",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert added == (0, "hxchat: added admin user 'alice'.", "")
    assert run("users", "add", "bob", "--password-stdin", stdin=PASSWORD)[0] == 0
    assert run("users", "add", "alice", "--password-stdin", stdin=PASSWORD) == (
        1,
        "",
        "hxchat: That username is taken.",
    )
    assert run("users", "add", "carol", "--password-stdin", stdin="short") == (
        1,
        "",
        "hxchat: A password needs at least 8 characters.",
    )
    status, listed, _ = run("users", "list")
    assert status == 0 and listed.splitlines()[0].startswith("alice\tpassword, admin")

    token = run("tokens", "add", "alice", "ci")
    assert token[0] == 0 and token[1].startswith("hxc_") and "\n" not in token[1]
    assert run("tokens", "add", "zed", "ci") == (1, "", "hxchat: There is no user 'zed'.")

    assert run("users", "disable", "bob")[1].startswith("hxchat: disabled 'bob'")
    assert "disabled" in run("users", "list")[1].splitlines()[1]
    assert run("users", "enable", "bob") == (0, "hxchat: enabled 'bob'.", "")
    assert run("users", "enable", "zed")[0] == 1
    changed = run("users", "set-password", "bob", "--password-stdin", stdin="another password")
    assert changed[0] == 0 and "sign-ins have ended" in changed[1]
    assert run("users", "set-password", "zed", "--password-stdin", stdin=PASSWORD)[0] == 1
    assert run("users", "delete", "bob") == (
        0,
        "hxchat: deleted 'bob' with their conversations.",
        "",
    )
    assert run("users", "delete", "bob")[0] == 1
    assert [line.split("\t")[0] for line in run("users", "list")[1].splitlines()] == ["alice"]
    assert run("users", "adopt", "zed", "0123") == (1, "", "hxchat: There is no user 'zed'.")
    assert run("users", "adopt", "alice", "0123") == (
        0,
        "hxchat: 'alice' now has 0 more conversations.",
        "",
    )


async def test_a_user_adopts_the_conversations_of_mode_none(
    make_settings: Callable[..., Settings],
) -> None:
    """Switching a single-user install to accounts: `hxchat users adopt` gives the
    anonymous browser's conversations to a user."""
    async with running_app(make_settings()) as before, client_for(before) as browser:
        cid = await new_conversation(browser)
        owner = (await browser.get("/api/me")).json()["id"]
    async with running_app(make_settings(auth="password")) as after, client_for(after) as alice:
        accounts = after.state.accounts
        await add_user(after, "alice")
        await sign_in(alice, "alice")
        assert (await alice.get("/api/conversations")).json() == []
        assert await accounts.store.adopt("alice", owner) == 1
        assert [c["id"] for c in (await alice.get("/api/conversations")).json()] == [cid]


def test_a_prompted_password_must_be_typed_twice_alike(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([PASSWORD, "something else"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    status, _, err = hxchat(capsys, monkeypatch, "users", "add", "dave")
    assert (status, err) == (1, "hxchat: The two passwords differ; nothing was changed.")


def test_a_bad_setting_or_database_is_one_line_and_status_1(tmp_path: Path) -> None:
    bad = run_hxchat(tmp_path, {"HXCHAT_DATABASE_URL": "mysql://x"}, "users", "list")
    assert bad.returncode == 1 and bad.stderr.startswith("hxchat: HXCHAT_DATABASE_URL: ")
    away = run_hxchat(
        tmp_path,
        {"HXCHAT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/no/such/dir.db"},
        "users",
        "list",
    )
    assert away.returncode == 1 and len(away.stderr.strip().splitlines()) == 1
    assert "Traceback" not in away.stderr


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"HXCHAT_AUTH": "password,oidc", "HXCHAT_OIDC_ISSUER": "https://id.example"},
            "HXCHAT_OIDC_CLIENT_ID: is required with HXCHAT_AUTH=password,oidc",
        ),
        ({"HXCHAT_AUTH": "oidc"}, "HXCHAT_OIDC_ISSUER: is required with HXCHAT_AUTH=oidc"),
        (
            {"HXCHAT_AUTH": "header", "HXCHAT_TRUSTED_PROXIES": "10.0.0.0/33"},
            "HXCHAT_TRUSTED_PROXIES: ",
        ),
        ({"HXCHAT_AUTH": "ldap"}, "HXCHAT_AUTH: use none, password"),
    ],
)
def test_serve_refuses_what_it_cannot_do_in_one_line(
    tmp_path: Path, env: dict[str, str], says: str
) -> None:
    result: subprocess.CompletedProcess[str] = run_hxchat(tmp_path, env, "serve")
    assert result.returncode == 2
    assert result.stderr.startswith(f"hxchat: {says}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_uvicorns_proxy_headers_agree_with_the_mode() -> None:
    """uvicorn rewrites the client address from X-Forwarded-For for peers it trusts:
    never in header mode (the header is believed by the TCP peer), and trusting
    exactly HXCHAT_TRUSTED_PROXIES in the other modes with accounts."""
    header = load_settings(auth="header", trusted_proxies="10.1.0.0/16")
    assert cli.proxy_options(header) == {"proxy_headers": False}
    password = load_settings(auth="password", trusted_proxies="10.1.0.0/16,::1/128")
    assert cli.proxy_options(password) == {
        "proxy_headers": True,
        "forwarded_allow_ips": "10.1.0.0/16,::1/128",
    }
    assert cli.proxy_options(load_settings()) == {"proxy_headers": True}  # as before


def test_the_start_up_warnings() -> None:
    none, password = load_settings(), load_settings(auth="password")
    for host in ("127.0.0.1", "::1", "[::1]", "localhost"):
        assert cli.exposure_warning(none, host) is None
        assert cli.exposure_warning(password, host) is None
    open_warning = cli.exposure_warning(none, "0.0.0.0")
    assert open_warning and "anyone who reaches this port" in open_warning
    https_warning = cli.exposure_warning(password, "example.org")
    assert https_warning and "HTTPS" in https_warning


async def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """`hxchat serve` behind a proxy that ends TLS: the sign-in cookie is `Secure` when
    the trusted proxy (here 127.0.0.1, the default) sends `X-Forwarded-Proto: https`,
    and only then."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'hxchat.db'}"
    async with running_app(make_settings(auth="password", database_url=url)) as app:
        await add_user(app, "alice")
    env = {"HXCHAT_DATABASE_URL": url, "HXCHAT_AUTH": "password"}
    with serving(tmp_path, env) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            form = {"username": "alice", "password": PASSWORD, "next": "/"}
            for headers, secure in (({"X-Forwarded-Proto": "https"}, True), ({}, False)):
                signed = await client.post("/login", data=form, headers=headers)
                assert signed.status_code == 303
                cookie = signed.headers["set-cookie"]
                assert cookie.startswith("hxchat_login=") and ("; Secure" in cookie) is secure


async def test_a_deleted_user_is_signed_out_everywhere_within_a_second(
    make_settings: Callable[..., Settings],
) -> None:
    """What `hxchat users delete` does to someone signed in: their session and their
    API token stop working on the running app within a second, and their conversations
    are gone."""
    async with running_app(make_settings(auth="password")) as app, client_for(app) as alice:
        await add_user(app, "alice")
        await sign_in(alice, "alice")
        cid = await new_conversation(alice)
        token = (await alice.post("/api/tokens", json={"name": "ci"})).json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert (await alice.get("/api/me", headers=bearer)).status_code == 200
        assert await app.state.accounts.store.delete_user("alice")  # what the CLI calls

        async def out() -> None:
            assert (await alice.get("/api/me")).status_code == 401
            assert (await alice.get("/api/me", headers=bearer)).status_code == 401

        started = time.monotonic()
        await eventually(out, within=3)
        assert time.monotonic() - started < 1.5
        await add_user(app, "alice")  # the same name again is a new person
        await sign_in(alice, "alice")
        assert (await alice.get(f"/api/conversations/{cid}")).status_code == 404
